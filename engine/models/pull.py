"""Pulling a GGUF file from a Hugging Face repository into the models folder.

Blocking code, run on a worker thread: by the engine for PullModel and by
`hearth pull` when no engine runs. The steps: resolve the reference to one
file with its size and LFS sha256 (the hub's metadata), download it with
huggingface_hub into its cache (HF_ENDPOINT, HF_TOKEN and HF_HOME apply; a
dropped connection resumes with a Range request), check the sha256 and the
GGUF header, then move it into the models folder whole under a dot-name the
registry ignores until os.replace gives it its final name."""

import asyncio
import contextlib
import enum
import functools
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hearth.engine.errors import (
    AlreadyExists,
    ChecksumMismatch,
    EngineError,
    ModelInvalid,
    ModelNotFound,
    PullFailed,
)
from hearth.engine.models.gguf_info import GGUFReadError, read_gguf_info

# Reference parsing and file selection live in pull_reference (PullReference,
# RemoteFile, parse_reference and select_file stay importable from here).
from hearth.engine.models.pull_reference import (
    PullReference,
    RemoteFile,
    parse_reference,
    parse_revision,
    select_file,
)
from hearth.models_folder import folder_lock, move_into_place

log = logging.getLogger(__name__)

# Bytes between progress reports while hashing and copying.
_BLOCK = 1024 * 1024
# Progress reports per second at most (the first and the last always go out).
_REPORTS_PER_SECOND = 10.0
# How long closing a pull waits for its thread to stop and clean up.
_CLEANUP_SECONDS = 30.0


class PullPhase(enum.Enum):
    RESOLVING = "RESOLVING"
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
    DONE = "DONE"


@dataclass(frozen=True)
class PullProgress:
    phase: PullPhase
    file: str = ""
    completed: int = 0
    total: int = 0
    sha256: str = ""


@dataclass(frozen=True)
class PullResult:
    model_id: str
    path: Path
    file: RemoteFile
    # False when the models folder already held the same file.
    downloaded: bool


class PullCancelled(Exception):
    """Raised on the pull's thread once its cancel event is set."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


ProgressCallback = Callable[[PullProgress], None]


def model_id_for(file: RemoteFile) -> str:
    """The id the registry gives the installed file: its name without .gguf."""
    base = file.name.rsplit("/", 1)[-1]
    return base[: -len(".gguf")] if base.lower().endswith(".gguf") else base


class _Reporter:
    """Forwards progress, at most _REPORTS_PER_SECOND a second but always the first and the last."""

    def __init__(self, callback: ProgressCallback, cancel: threading.Event):
        self._callback = callback
        self._cancel = cancel
        self._last_sent = 0.0
        self._last: PullProgress | None = None

    def check(self) -> None:
        if self._cancel.is_set():
            raise PullCancelled()

    def __call__(self, progress: PullProgress, *, force: bool = False) -> None:
        self.check()
        if progress == self._last:
            return
        now = time.monotonic()
        final = progress.total > 0 and progress.completed >= progress.total
        new_phase = self._last is None or progress.phase != self._last.phase
        if force or final or new_phase or now - self._last_sent >= 1 / _REPORTS_PER_SECOND:
            self._last_sent, self._last = now, progress
            self._callback(progress)


class _ByteCounter:
    """Stands in for tqdm inside hf_hub_download: it hands byte counts to the
    pull's reporter, and raising from update() is how a cancelled pull stops
    the download (huggingface_hub then deletes its temporary file)."""

    def __init__(self, *, on_bytes: Callable[[int, int], None], total: int | None = None, initial: int = 0, **_):
        self.n = initial
        self.total = total or 0
        self._on_bytes = on_bytes
        self._on_bytes(self.n, self.total)

    def update(self, n: int | float = 1) -> None:
        # Negative when a server ignored a Range request and the download restarted.
        self.n = max(0, self.n + int(n))
        self._on_bytes(self.n, self.total)

    def close(self) -> None:
        pass

    def __enter__(self) -> "_ByteCounter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@contextlib.contextmanager
def _hub_errors(reference: PullReference, revision: str) -> Iterator[None]:
    """Turns huggingface_hub and network exceptions into typed engine errors."""
    import httpx2
    from huggingface_hub import errors as hub

    repo = reference.repo_id
    token_hint = "set HF_TOKEN to a Hugging Face token that has access"
    try:
        yield
    except (EngineError, PullCancelled):
        raise
    except hub.GatedRepoError as exc:
        raise PullFailed(
            f"{repo} is gated: accept its terms on huggingface.co, then {token_hint}", param="reference"
        ) from exc
    except hub.RepositoryNotFoundError as exc:
        raise ModelNotFound(
            f"The Hugging Face repository '{repo}' does not exist, or it is private ({token_hint})",
            param="reference",
            model=repo,
        ) from exc
    except hub.RevisionNotFoundError as exc:
        raise ModelNotFound(f"{repo} has no revision '{revision}'", param="revision", model=repo) from exc
    except hub.RemoteEntryNotFoundError as exc:
        raise ModelNotFound(f"{repo} has no such file at revision '{revision}'", param="reference", model=repo) from exc
    except hub.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status in (401, 403):
            raise PullFailed(f"Hugging Face refused access to {repo} (HTTP {status}): {token_hint}") from exc
        raise PullFailed(f"Hugging Face answered HTTP {status} for {repo}: {_first_line(exc)}") from exc
    except hub.LocalEntryNotFoundError as exc:
        reason = _first_line(exc.__cause__ or exc)
        raise PullFailed(f"Cannot reach Hugging Face to download from {repo}: {reason}") from exc
    except (httpx2.ConnectError, httpx2.TimeoutException) as exc:
        from huggingface_hub import constants

        raise PullFailed(
            f"Cannot reach Hugging Face at {constants.ENDPOINT} (check the network, or HF_ENDPOINT): {_first_line(exc)}"
        ) from exc
    except (httpx2.HTTPError, OSError, ValueError) as exc:
        raise PullFailed(f"Downloading from {repo} failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def resolve(reference: PullReference, revision: str) -> tuple[str, RemoteFile]:
    """(commit, file): the revision's commit and the file with its size and LFS sha256."""
    from huggingface_hub import HfApi

    with _hub_errors(reference, revision):
        info = HfApi().model_info(reference.repo_id, revision=revision, files_metadata=True)
    files = [
        RemoteFile(
            name=s.rfilename,
            size=(s.lfs.size if s.lfs else s.size) or 0,
            sha256=(s.lfs.sha256 if s.lfs else "") or "",
        )
        for s in info.siblings or []
    ]
    return info.sha or revision, select_file(reference, files)


def file_sha256(path: Path, report: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
            done += len(block)
            if report is not None:
                report(done)
    return digest.hexdigest()


def _discard_cached(local: Path) -> None:
    """Removes a download from huggingface_hub's cache (the blob and its snapshot link)."""
    blob = local.resolve()
    for path in (local, blob):
        with contextlib.suppress(OSError):
            path.unlink()


def _install(source: Path, target: Path, reporter: _Reporter) -> None:
    """Puts ``source`` at ``target`` whole: a hard link when both share a file
    system (no second copy of gigabytes), else a copy, under a dot-name first."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        try:
            os.link(source, partial)
        except OSError:
            with source.open("rb") as src, partial.open("wb") as out:
                while block := src.read(_BLOCK):
                    reporter.check()
                    out.write(block)
        reporter.check()
        with folder_lock(target.parent):
            try:
                move_into_place(partial, target)
            except FileExistsError:
                raise AlreadyExists(
                    f"{target.name} appeared in the models folder during the pull; it was left as it is",
                    param="reference",
                    model=target.stem,
                ) from None
    finally:
        partial.unlink(missing_ok=True)


def pull(
    reference_text: str,
    revision: str,
    models_dir: Path,
    *,
    progress: ProgressCallback,
    cancel: threading.Event,
    cache_dir: Path | None = None,
    chunk_bytes: int | None = None,
) -> PullResult:
    """Downloads the referenced file into ``models_dir``; blocking.

    Raises PullCancelled once ``cancel`` is set (within a chunk), and typed
    EngineErrors otherwise; nothing is left in the models folder either way."""
    from huggingface_hub import constants, hf_hub_download

    # huggingface_hub's HTTP client logs every request at INFO; the pull logs its own steps.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    reporter = _Reporter(progress, cancel)
    reference = parse_reference(reference_text)
    revision = parse_revision(revision)
    reporter(PullProgress(PullPhase.RESOLVING), force=True)
    commit, remote = resolve(reference, revision)
    model_id = model_id_for(remote)
    target = models_dir / f"{model_id}.gguf"
    reporter(PullProgress(PullPhase.RESOLVING, remote.name, 0, remote.size, remote.sha256), force=True)

    if target.exists():
        if remote.sha256 and target.is_file() and target.stat().st_size == remote.size:
            if file_sha256(target, lambda done: reporter.check()) == remote.sha256:
                log.info("%s is already in the models folder as %s", remote.name, target)
                return PullResult(model_id, target, remote, downloaded=False)
        # Never replace a user's file, nor what aliases of it point to.
        raise AlreadyExists(
            f"The models folder already has a different {target.name}; delete the model '{model_id}' first",
            param="reference",
            model=model_id,
        )

    def on_bytes(done: int, total: int) -> None:
        reporter(PullProgress(PullPhase.DOWNLOADING, remote.name, done, total or remote.size, remote.sha256))

    if chunk_bytes:
        # huggingface_hub reads the response in chunks of this size (10 MB by
        # default) and reports progress, so can be cancelled, only between them.
        constants.DOWNLOAD_CHUNK_SIZE = chunk_bytes
    # Plain HTTP even for Xet-backed repositories (the hub serves those too):
    # the Xet client reports progress through two bars of its own and cannot be
    # stopped from a progress callback, so it would defeat progress and cancel.
    constants.HF_HUB_DISABLE_XET = True
    log.info("pulling %s from %s at %s", remote.name, reference.repo_id, commit)
    with _hub_errors(reference, revision):
        local = Path(
            hf_hub_download(
                reference.repo_id,
                remote.name,
                revision=commit,
                cache_dir=cache_dir,
                tqdm_class=functools.partial(_ByteCounter, on_bytes=on_bytes),
            )
        )
    reporter(PullProgress(PullPhase.DOWNLOADING, remote.name, remote.size, remote.size, remote.sha256), force=True)

    reporter(PullProgress(PullPhase.VERIFYING, remote.name, 0, remote.size, remote.sha256), force=True)
    if remote.sha256:
        actual = file_sha256(
            local,
            lambda done: reporter(PullProgress(PullPhase.VERIFYING, remote.name, done, remote.size, remote.sha256)),
        )
        if actual != remote.sha256:
            _discard_cached(local)
            raise ChecksumMismatch(
                f"{remote.name} from {reference.repo_id} has sha256 {actual}, but the hub says {remote.sha256}; "
                "the download was discarded, pull again to retry",
                param="reference",
            )
    else:
        log.warning("%s in %s has no published sha256; only its GGUF header is checked", remote.name, reference.repo_id)
    try:
        read_gguf_info(local)
    except GGUFReadError as exc:
        raise ModelInvalid(f"{remote.name} from {reference.repo_id} is not a usable GGUF file: {exc}") from exc

    models_dir.mkdir(parents=True, exist_ok=True)
    _install(local.resolve(), target, reporter)
    # The models folder holds the one copy (a hard link keeps the data): deleting
    # the model then frees the space, and the cache does not grow with every pull.
    _discard_cached(local)
    log.info("installed %s from %s as %s", remote.name, reference.repo_id, target)
    return PullResult(model_id, target, remote, downloaded=True)


async def pull_in_thread(
    reference_text: str,
    revision: str,
    models_dir: Path,
    *,
    cache_dir: Path | None = None,
    chunk_bytes: int | None = None,
) -> AsyncIterator[PullProgress | PullResult]:
    """``pull`` on a thread of its own (a download may take hours: it must not
    hold one of asyncio's shared workers), yielding its progress and then its
    result. Closing the iterator cancels the pull and waits for its thread to
    clean up."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancel = threading.Event()

    def post(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            post(
                pull(
                    reference_text,
                    revision,
                    models_dir,
                    progress=post,
                    cancel=cancel,
                    cache_dir=cache_dir,
                    chunk_bytes=chunk_bytes,
                )
            )
        except PullCancelled as exc:
            log.info("cancelled the pull of %s; nothing was installed", reference_text)
            post(_Failure(exc))
        except BaseException as exc:  # handed to the caller, raised there
            post(_Failure(exc))

    thread = threading.Thread(target=work, name=f"pull {reference_text}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _Failure):
                raise item.error
            yield item
            if isinstance(item, PullResult):
                return
    finally:
        cancel.set()
        deadline = time.monotonic() + _CLEANUP_SECONDS
        while thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if thread.is_alive():
            log.warning("the cancelled pull of %s is still finishing its current chunk", reference_text)
