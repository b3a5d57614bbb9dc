"""Names of the engine's enums as clients show them: finish reasons in
OpenAI's words, model states and pull phases without their prefixes; and
Ollama's names of the sampling parameters (its options, `hearth run`'s
/set parameter) with the GenerateRequest fields they set."""

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


# Ollama's sampling option -> (GenerateRequest field, the Python type its value must have).
OLLAMA_SAMPLING: dict[str, tuple[str, type]] = {
    "temperature": ("temperature", float),
    "top_p": ("top_p", float),
    "top_k": ("top_k", int),
    "min_p": ("min_p", float),
    "repeat_penalty": ("repeat_penalty", float),
    "presence_penalty": ("presence_penalty", float),
    "frequency_penalty": ("frequency_penalty", float),
}
