"""What a model can be asked for, from its file and configuration."""

from hearth.engine.models.registry import ModelRecord
from hearth.engine.reasoning.formats import NONE, detect

CHAT = "CHAT"
COMPLETION = "COMPLETION"
EMBEDDINGS = "EMBEDDINGS"
TOOLS = "TOOLS"
REASONING = "REASONING"


def reasoning_format(record: ModelRecord) -> str:
    """How the model marks its reasoning ("think", "none"): its config entry's
    word, else what its own template shows (the built-in ones do not reason)."""
    if record.info is None:
        return NONE
    return detect(record.chat_template_override or record.info.chat_template, record.reasoning_override).name


def model_capabilities(record: ModelRecord, template_failed: bool = False) -> tuple[str, ...]:
    """Capability names (proto Capability without its prefix) of a model.

    Every usable model completes text and embeds (pooled hidden states). Chat
    needs a template: every usable model has one (its file's, the config
    file's, or a built-in one by architecture), unless a loaded model's failed
    to compile (``template_failed``). Tools need a template that renders them:
    the built-in ones do; a model's own template must at least mention them."""
    if record.invalid_reason or record.info is None:
        return ()
    capabilities = [COMPLETION, EMBEDDINGS]
    if not template_failed:
        capabilities.insert(0, CHAT)
        own_template = record.chat_template_override or record.info.chat_template
        if own_template is None or "tools" in own_template:
            capabilities.append(TOOLS)
        if reasoning_format(record) != NONE:
            capabilities.append(REASONING)
    return tuple(capabilities)
