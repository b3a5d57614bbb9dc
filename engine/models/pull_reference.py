"""Pull references and the file they mean: ``owner/name``, ``owner/name:QUANT``
or ``owner/name/FILE.gguf`` (``hf.co/`` prefixes allowed), and the one GGUF
file in a repository's listing that such a reference selects."""

import re
from dataclasses import dataclass

from hearth.engine.errors import InvalidArgument, ModelNotFound, PullFailed

DEFAULT_QUANT = "Q4_K_M"
_HOST_PREFIXES = ("https://", "http://")
_HOSTS = ("hf.co/", "huggingface.co/", "www.huggingface.co/")
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SPLIT_PART = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class PullReference:
    repo_id: str
    quant: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path inside the repository
    size: int
    sha256: str  # "" when the hub publishes none


# Longest revision accepted (a branch, a tag or a commit; git allows longer
# names, the hub does not use them) and longest reference.
MAX_REVISION_CHARS = 256
MAX_REFERENCE_CHARS = 1024
# What a git ref name may hold: no spaces, control characters or ~^:?*[\.
_REVISION = re.compile(r"[A-Za-z0-9._/-]+")


def parse_revision(text: str) -> str:
    """The revision to pull ("main" when empty): a branch, tag or commit name."""
    revision = text.strip() or "main"
    if len(revision) > MAX_REVISION_CHARS:
        raise InvalidArgument(
            f"The revision is {len(revision)} characters long; at most {MAX_REVISION_CHARS} are accepted",
            param="revision",
        )
    if not _REVISION.fullmatch(revision) or ".." in revision or revision.startswith(("/", "-")):
        raise InvalidArgument(
            "The revision must be a branch, tag or commit name: letters, digits, '.', '_', '-' and '/'",
            param="revision",
        )
    return revision


def parse_reference(text: str) -> PullReference:
    """``owner/name``, ``owner/name:QUANT`` or ``owner/name/path/FILE.gguf``, optionally
    prefixed with ``hf.co/`` or ``huggingface.co/`` (as Ollama writes them)."""
    reference = text.strip()
    if len(reference) > MAX_REFERENCE_CHARS:
        raise InvalidArgument(
            f"The model reference is {len(reference)} characters long; at most {MAX_REFERENCE_CHARS} are accepted",
            param="reference",
        )
    lowered = reference.lower()
    for scheme in _HOST_PREFIXES:
        if lowered.startswith(scheme):
            reference, lowered = reference[len(scheme) :], lowered[len(scheme) :]
    for host in _HOSTS:
        if lowered.startswith(host):
            reference = reference[len(host) :]
            break
    usage = "use owner/name, owner/name:QUANT or owner/name/FILE.gguf"
    if not reference:
        raise InvalidArgument(f"The model reference is empty; {usage}", param="reference")
    quant = None
    if ":" in reference:
        reference, quant = reference.split(":", 1)
        # Ollama's default tag means "the default file".
        if quant.lower() == "latest":
            quant = None
        elif not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", quant):
            raise InvalidArgument(f"'{quant}' is not a quantization name such as Q4_K_M", param="reference")
    parts = reference.split("/")
    if len(parts) < 2 or any(not _NAME_PART.match(part) or part in (".", "..") for part in parts[:2]):
        raise InvalidArgument(f"'{text}' is not a Hugging Face model reference; {usage}", param="reference")
    repo_id = "/".join(parts[:2])
    if len(parts) == 2:
        return PullReference(repo_id, quant=quant)
    filename = "/".join(parts[2:])
    if quant is not None or not filename.lower().endswith(".gguf") or any(p in ("", ".", "..") for p in parts[2:]):
        raise InvalidArgument(f"'{text}' is not a Hugging Face model reference; {usage}", param="reference")
    return PullReference(repo_id, filename=filename)


def _has_quant(name: str, quant: str) -> bool:
    """Whether the file's name carries the quantization as a whole word (Q4_K is not Q4_K_M)."""
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(quant)}(?![A-Za-z0-9_])"
    return re.search(pattern, name.rsplit("/", 1)[-1], re.IGNORECASE) is not None


def _split_error(repo_id: str, names: list[str]) -> PullFailed:
    return PullFailed(
        f"'{names[0]}' in {repo_id} is split into several files ({len(names)} found); "
        "split GGUF models are not supported yet",
        param="reference",
    )


def _choices(files: list[RemoteFile]) -> str:
    return ", ".join(f.name for f in files)


def select_file(reference: PullReference, files: list[RemoteFile]) -> RemoteFile:
    """The one GGUF file the reference means, or a clear error listing the choices."""
    repo = reference.repo_id
    if reference.filename is not None:
        for f in files:
            if f.name == reference.filename:
                if _SPLIT_PART.search(f.name):
                    raise _split_error(repo, [f.name])
                return f
        for f in files:
            if f.name.lower() == reference.filename.lower():
                if _SPLIT_PART.search(f.name):
                    raise _split_error(repo, [f.name])
                return f
        raise ModelNotFound(f"{repo} has no file '{reference.filename}'", param="reference", model=repo)
    ggufs = [f for f in files if f.name.lower().endswith(".gguf")]
    if not ggufs:
        raise ModelNotFound(f"{repo} holds no .gguf file", param="reference", model=repo)
    # Vision projectors sit next to the model in some repositories; they are not models.
    models = [f for f in ggufs if not f.name.rsplit("/", 1)[-1].lower().startswith("mmproj")] or ggufs
    if reference.quant is not None:
        matches = [f for f in models if _has_quant(f.name, reference.quant)]
        if not matches:
            raise ModelNotFound(
                f"{repo} has no {reference.quant} file; choose one of: {_choices(models)}",
                param="reference",
                model=repo,
            )
    else:
        matches = models if len(models) == 1 else [f for f in models if _has_quant(f.name, DEFAULT_QUANT)]
        if not matches:
            raise InvalidArgument(
                f"{repo} holds several GGUF files; name one with :QUANT or /FILE.gguf: {_choices(models)}",
                param="reference",
            )
    whole = [f for f in matches if not _SPLIT_PART.search(f.name)]
    if not whole:
        raise _split_error(repo, [f.name for f in matches])
    if len(whole) > 1:
        raise InvalidArgument(
            f"{repo} holds several matching files; name one with /FILE.gguf: {_choices(whole)}", param="reference"
        )
    return whole[0]
