"""Ollama model names (``name:tag``) <-> Hearth model ids (file stems like
``gemma-3-270m-q4_k_m``, or aliases such as a pulled model's
``hf.co/owner/repo:Q4_K_M``), and Ollama's way of writing model facts."""

import re

LATEST = ":latest"

# What Hearth can pull: a GGUF repository on Hugging Face, as Ollama names it.
_HF_NAME = re.compile(
    r"^(?:https?://)?(?:hf\.co|huggingface\.co)/(?P<repo>[\w.-]+/[\w.-]+)(?::(?P<tag>[\w.-]+))?$", re.IGNORECASE
)


def listed_name(model_id: str) -> str:
    """How a model is listed to Ollama clients: ids without a tag get ":latest"."""
    return model_id if ":" in model_id else model_id + LATEST


def candidate_ids(name: str) -> list[str]:
    """The ids a requested name may mean, in order: the exact id first, then
    the id without ":latest". Nothing looser: an unknown name is never served
    by another model."""
    candidates = [name]
    if name.endswith(LATEST) and len(name) > len(LATEST):
        candidates.append(name.removesuffix(LATEST))
    return candidates


def new_model_id(name: str) -> str:
    """The id a copy gets: "notes:latest" and "notes" both make "notes"."""
    return name.removesuffix(LATEST) if len(name) > len(LATEST) else name


def pulled_model_id(name: str) -> str | None:
    """The id a model pulled by an Ollama name answers to besides its file's:
    "hf.co/owner/repo:Q4_K_M" (and "hf.co/owner/repo" for ":latest" or no tag,
    listed as "hf.co/owner/repo:latest"), so that the name that pulled it runs it."""
    match = _HF_NAME.match(name.strip())
    if not match:
        return None
    tag = match["tag"]
    return f"hf.co/{match['repo']}" + ("" if tag is None or tag.lower() == "latest" else f":{tag}")


def pull_reference(name: str) -> str | None:
    """The engine's PullModel reference ("owner/repo" or "owner/repo:QUANT")
    for an Ollama name like "hf.co/owner/repo:Q4_K_M"; None for names Hearth
    cannot pull (Ollama's own registry)."""
    match = _HF_NAME.match(name.strip())
    if not match:
        return None
    tag = match["tag"]
    if tag is None or tag.lower() == "latest":
        return match["repo"]
    return f"{match['repo']}:{tag}"


def parameter_size(count: int) -> str:
    """A parameter count as Ollama writes it (format.HumanNumber): "268.10M", "8B", "7.2B"."""
    for unit, scale, decimals in (("B", 1e9, 1), ("M", 1e6, 2)):
        if count >= scale:
            number = count / scale
            return f"{number:.0f}{unit}" if number == int(number) else f"{number:.{decimals}f}{unit}"
    if count >= 1e3:
        return f"{count / 1e3:.0f}K"
    return str(count)
