"""A model's own defaults (its config entry's system prompt and parameters,
as Ollama's Modelfile SYSTEM and PARAMETER) filled into a request where the
request set none, before the request is validated."""

from dataclasses import replace

from hearth.engine.domain import GenerateParams
from hearth.engine.models.registry import ModelRecord

_SYSTEM_ROLES = frozenset({"system", "developer"})


def with_model_defaults(params: GenerateParams, record: ModelRecord) -> GenerateParams:
    """``params`` with the model's defaults where the request left a field
    unset; the system prompt only for chat messages that have none."""
    sampling = {name: value for name, value in record.parameters if name in params.unset}
    changes: dict = {}
    if "max_tokens" in sampling:
        # A default longer than the model may write (its entry's max_output_tokens) is cut to it, not refused.
        changes["max_tokens"] = min(sampling.pop("max_tokens"), record.max_output_tokens)
    if "stop" in sampling:
        changes["stop"] = tuple(sampling.pop("stop"))
    if sampling:
        changes["sampling"] = replace(params.sampling, **sampling)
    messages = params.messages
    if record.system_prompt and messages is not None and not any(m.get("role") in _SYSTEM_ROLES for m in messages):
        changes["messages"] = [{"role": "system", "content": record.system_prompt}, *messages]
    return replace(params, **changes) if changes else params
