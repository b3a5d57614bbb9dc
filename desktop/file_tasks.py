"""Long file actions of the Models panel, each on its own worker thread:
installing the default model and copying a model file into the models folder.
They report progress as messages on the outbox, like the engine link does.
Also: opening the models folder in the platform's file manager."""

import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from hearth.desktop import messages as msg
from hearth.models_folder import folder_lock, move_into_place

log = logging.getLogger(__name__)

BLOCK = 1 << 20
# Progress messages at most this often: a fast disk would otherwise flood the queue.
PROGRESS_INTERVAL = 0.05


class _Throttled:
    """Posts TaskProgress for ``task``, no more often than PROGRESS_INTERVAL (except the last)."""

    def __init__(self, outbox: queue.Queue, task: str, label: str):
        self._outbox, self._task, self._label = outbox, task, label
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._outbox.put(msg.TaskProgress(self._task, self._label, done, total))


def _in_thread(name: str, work) -> threading.Thread:
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def install_default_model(models_dir: Path, outbox: queue.Queue) -> threading.Thread:
    task, label = "install-default", "Installing the default model"

    def work() -> None:
        from hearth.default_model import install_default_model as install

        outbox.put(msg.TaskProgress(task, label))
        try:
            path = install(models_dir, progress=_Throttled(outbox, task, label))
        except Exception as exc:  # noqa: BLE001 - pip, disk and checksum errors all end the task the same way
            log.exception("installing the default model failed")
            outbox.put(msg.TaskEnded(task, False, f"Could not install the default model: {exc}"))
            return
        outbox.put(msg.TaskEnded(task, True, f"Default model installed at {path}"))

    return _in_thread("hearth-install-default", work)


def copy_model_file(source: Path, models_dir: Path, outbox: queue.Queue) -> threading.Thread:
    """Copies ``source`` into the folder under its own name, never over an existing file."""
    task, label = f"copy:{source.name}", f"Adding {source.name}"

    def work() -> None:
        target = models_dir / source.name
        # Copied under a name the engine does not list (it lists *.gguf), then moved in whole.
        partial = models_dir / f".{source.name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            if source.suffix.lower() != ".gguf":
                raise ValueError(f"{source.name} is not a .gguf file")
            if target.exists():
                raise FileExistsError(f"{target} already exists")
            models_dir.mkdir(parents=True, exist_ok=True)
            total = source.stat().st_size
            progress = _Throttled(outbox, task, label)
            progress(0, total)
            done = 0
            with source.open("rb") as reader, partial.open("wb") as writer:
                while block := reader.read(BLOCK):
                    writer.write(block)
                    done += len(block)
                    progress(done, total)
            shutil.copystat(source, partial)
            with folder_lock(models_dir):
                move_into_place(partial, target)
        except (OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            outbox.put(msg.TaskEnded(task, False, f"Could not add {source.name}: {exc}"))
            return
        outbox.put(msg.TaskEnded(task, True, f"Added {target.name} to {models_dir}"))

    return _in_thread("hearth-copy-model", work)


def open_folder(folder: Path) -> str | None:
    """Opens ``folder`` in the file manager; returns why it could not, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if sys.platform == "win32":
            os.startfile(folder)  # type: ignore[attr-defined]  # Windows only
            return None
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        if shutil.which(opener) is None:
            return f"{opener} is not installed; the folder is {folder}"
        # Not waited for: the file manager may run as long as it likes.
        subprocess.Popen(
            [opener, str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return f"could not open {folder}: {exc}"
    return None
