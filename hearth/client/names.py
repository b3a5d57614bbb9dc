"""Names of the engine's enums as clients show them: finish reasons in
OpenAI's words, model states and pull phases without their prefixes."""

from hearth.engine.v1 import engine_pb2 as pb

FINISH_REASONS = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
}


def finish_reason_name(reason: int, default: str = "stop") -> str:
    """"stop", "length" or "tool_calls"; ``default`` for an unset reason."""
    return FINISH_REASONS.get(reason, default)


def model_state_name(state: int) -> str:
    """"ready", "unloaded", "loading", "failed", "invalid"."""
    return pb.ModelState.Name(state).removeprefix("MODEL_STATE_").lower()


def pull_phase_name(phase: int) -> str:
    """"RESOLVING", "DOWNLOADING", "VERIFYING", "DONE"."""
    return pb.PullPhase.Name(phase).removeprefix("PULL_PHASE_")
