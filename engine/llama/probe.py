"""`python -m hearth.engine.llama.probe FILE`: reads a model file with llama.cpp
in a throwaway process, as the engine would before and while generating short
of generating, on the CPU. Exit 0: readable; 3: refused cleanly (the engine's
own load reports why); death by a signal: the file would crash the engine."""

import os
import signal
import subprocess
import sys

REFUSED = 3


def run_throwaway(module: str, *args: str, timeout: float, stderr=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """``python -m module args`` in a throwaway process with no backtrace on an
    abort (nobody reads gdb's); TimeoutExpired and OSError go to the caller."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        timeout=timeout,
        env={**os.environ, "GGML_NO_BACKTRACE": "1"},
    )


def death_signal(returncode: int) -> str:
    """The name of the signal a process died of (a negative exit status)."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def main(path: str) -> int:
    import llama_cpp
    from llama_cpp import _internals as internals

    from hearth.engine.llama.backend import load_backends

    load_backends()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    try:
        model = internals.LlamaModel(path_model=path, params=params, verbose=False)
    except Exception:
        return REFUSED
    text = "".join(chr(c) for c in range(1, 0x800)) + " \u4e2d\u6587 \U0001f600 <s></s><|im_end|>\n\n"
    model.tokenize(text.encode("utf-8"), True, True)
    model.tokenize(b"\x00", False, False)
    context_params = llama_cpp.llama_context_default_params()
    context_params.n_ctx = 64
    context_params.n_batch = 32
    context_params.n_ubatch = 32
    context_params.n_seq_max = 1
    context_params.n_threads = 1
    context_params.n_threads_batch = 1
    try:
        internals.LlamaContext(model=model, params=context_params, verbose=False)
    except Exception:
        return REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
