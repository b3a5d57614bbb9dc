"""The models folder's one lock and its no-clobber install, for every process
that changes the folder (the engine's copy, delete and pull, the desktop's
add-file): each decides and acts while holding the lock, so no interleaving
leaves an alias pointing at a deleted file or one file written over another.
Imports nothing above the standard library."""

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the lock holds between threads of one process only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# A dot-name without the .gguf suffix: the registry never lists it.
LOCK_NAME = ".hearth.lock"

_guard = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


def _thread_lock(folder: Path) -> threading.Lock:
    with _guard:
        return _thread_locks.setdefault(str(folder), threading.Lock())


@contextlib.contextmanager
def folder_lock(models_dir: Path) -> Iterator[None]:
    """Holds the models folder's lock: between this process's threads and, where
    the platform has ``flock``, between processes. A folder where the lock file
    cannot be written (read-only) is locked between threads only."""
    folder = Path(models_dir).absolute()
    with _thread_lock(folder):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.debug("cannot open the lock file in %s (%s): locking between threads only", folder, exc)
            yield
            return
        try:
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
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
