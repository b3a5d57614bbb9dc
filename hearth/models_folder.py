"""The models folder's one lock and its no-clobber install, for every process
that changes the folder (the engine's copy, delete and pull, the desktop's
add-file): each decides and acts while holding the lock, so no interleaving
leaves an alias pointing at a deleted file or one file written over another.
Imports only the standard library and platformdirs."""

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import platformdirs

try:
    import fcntl
except ImportError:  # Windows: the lock holds between threads of one process only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Lock files live outside the models folder (which stays the user's, and may
# be read-only): one per folder, named after its resolved path.
LOCKS_DIR = Path(platformdirs.user_cache_dir("hearth")) / "locks"

_guard = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


def lock_file(models_dir: Path) -> Path:
    """The lock file of a models folder."""
    digest = hashlib.sha256(os.fsencode(Path(models_dir).resolve())).hexdigest()[:24]
    return LOCKS_DIR / f"models-{digest}.lock"


def _thread_lock(folder: Path) -> threading.Lock:
    with _guard:
        return _thread_locks.setdefault(str(folder), threading.Lock())


@contextlib.contextmanager
def folder_lock(models_dir: Path) -> Iterator[None]:
    """Holds the models folder's lock: between this process's threads and, where
    the platform has ``flock``, between processes. Where the lock file cannot
    be written, the folder is locked between threads only."""
    folder = Path(models_dir).resolve()
    with _thread_lock(folder):
        path = lock_file(folder)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.debug("cannot open the lock file %s (%s): locking between threads only", path, exc)
            yield
            return
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX)
                except OSError as exc:  # a file system without flock (some network mounts)
                    log.debug("cannot flock %s (%s): locking between threads only", path, exc)
            yield
        finally:
            os.close(descriptor)  # releases the flock too


def move_into_place(partial: Path, target: Path) -> None:
    """Gives ``partial`` the name ``target`` whole, never replacing a file that
    is there (FileExistsError then, and ``partial`` stays). A hard link makes the
    check and the move one step; on file systems without hard links the caller's
    folder lock keeps the check and the rename together."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists() or target.is_symlink():
            raise FileExistsError(f"{target} already exists") from None
        os.replace(partial, target)
        return
    partial.unlink()
