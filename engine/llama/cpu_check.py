"""Whether this llama.cpp build's kernels run on this processor: a tiny
generated model decodes a few tokens in a throwaway process before the engine
serves. A build made for another CPU (a cached ``-march=native`` wheel, a
``.venv`` moved to another machine) dies there with SIGILL instead of on the
first request, and the engine stops with a message saying so. The verdict is
kept per build and processor, so later starts skip the check.

``python -m hearth.engine.llama.cpu_check`` runs the check itself (exit 0)."""

import hashlib
import json
import logging
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import platformdirs

from hearth.engine.llama.probe import death_signal, run_throwaway

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 120.0
_TOKENS = 4


def _run_check() -> int:
    import llama_cpp
    from llama_cpp import _internals as internals

    from hearth.engine.llama.backend import load_backends
    from hearth.engine.llama.tiny_model import write_tiny_llama

    load_backends()
    with tempfile.TemporaryDirectory(prefix="hearth-cpu-check-") as folder:
        path = write_tiny_llama(Path(folder) / "check.gguf")
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0
        params.use_extra_bufts = False  # as the engine loads models
        model = internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        context_params = llama_cpp.llama_context_default_params()
        context_params.n_ctx = 64
        context_params.n_batch = 16
        context_params.n_seq_max = 1
        context = internals.LlamaContext(model=model, params=context_params, verbose=False)
        batch = internals.LlamaBatch(n_tokens=16, embd=0, n_seq_max=1, verbose=False)
        tokens = model.tokenize(b"check", True, False)
        batch.set_batch(tokens, n_past=0, logits_all=False)
        context.decode(batch)
        for position in range(len(tokens), len(tokens) + _TOKENS):
            batch.set_batch([3 + position], n_past=position, logits_all=True)
            context.decode(batch)
    return 0


def _build_key() -> str:
    """This build's libraries and this processor, as one digest."""
    import llama_cpp

    parts = [sys.executable, platform.machine()]
    library = Path(llama_cpp.__file__).resolve().parent / "lib"
    for file in sorted(library.glob("*")):
        stat = file.stat()
        parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            parts.extend(line for line in cpuinfo if line.startswith(("flags", "model name", "Features")))
    except OSError:
        parts.append(platform.processor())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _verdict_file() -> Path:
    return Path(platformdirs.user_cache_dir("hearth")) / "cpu-check.json"


def check_build_runs_here() -> str | None:
    """Why this llama.cpp build cannot run on this machine, or None when it can."""
    key = _build_key()
    verdict_file = _verdict_file()
    try:
        if json.loads(verdict_file.read_text()).get("ok") == key:
            return None
    except (OSError, ValueError, AttributeError):
        pass
    try:
        done = run_throwaway(
            "hearth.engine.llama.cpu_check", timeout=CHECK_TIMEOUT_SECONDS, stderr=subprocess.PIPE
        )
    except subprocess.TimeoutExpired:
        return f"llama.cpp did not decode a tiny model within {CHECK_TIMEOUT_SECONDS:.0f} s on this machine"
    except OSError as exc:
        log.warning("cannot check that llama.cpp runs here: %s", exc)
        return None
    if done.returncode < 0:
        name = death_signal(done.returncode)
        hint = " (an instruction this processor lacks)" if name == "SIGILL" else ""
        return (
            f"llama.cpp dies with {name}{hint} decoding on this machine's CPU: this build was made for another "
            "processor. Rebuild it here with `make install` (it builds CPU backends for every x86-64 level)"
        )
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return f"llama.cpp cannot decode a tiny model on this machine (exit status {done.returncode}): {tail[0][:300]}"
    try:
        verdict_file.parent.mkdir(parents=True, exist_ok=True)
        verdict_file.write_text(json.dumps({"ok": key}))
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(_run_check())
