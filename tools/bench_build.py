"""Decode and prompt speed of two llama.cpp builds on one model, interleaved:
the portable build the Makefile makes (CPU backends for every x86-64 level,
chosen at run time) against another, e.g. a -march=native build installed
with ``pip install --no-deps --target DIR <wheel>``.

    .venv/bin/python tools/bench_build.py --other DIR [--model PATH] [--rounds 3]

Each measurement runs in a fresh process (one build per process), on the same
threads, with the weights loaded as the engine loads them (no repacking).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = "The history of the city begins in the year 1200, when " * 24


def measure(model: str, threads: int, tokens: int) -> dict:
    """Runs in the child: prompt tokens/s and decode tokens/s."""
    import llama_cpp
    from llama_cpp import _internals as internals

    library = Path(llama_cpp.__file__).resolve().parent / "lib"
    if list(library.glob("libggml-cpu-*.so")):  # backends as loadable libraries: load them first
        from hearth.engine.llama.backend import cpu_variant, load_backends

        load_backends()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    params.use_extra_bufts = False
    llm = internals.LlamaModel(path_model=model, params=params, verbose=False)
    context_params = llama_cpp.llama_context_default_params()
    context_params.n_ctx = 2048
    context_params.n_batch = 512
    context_params.n_threads = context_params.n_threads_batch = threads
    context = internals.LlamaContext(model=llm, params=context_params, verbose=False)
    batch = internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=1, verbose=False)
    prompt = llm.tokenize(PROMPT.encode(), True, False)[:400]
    started = time.perf_counter()
    batch.set_batch(prompt, n_past=0, logits_all=False)
    context.decode(batch)
    prompt_seconds = time.perf_counter() - started
    n_vocab = llm.n_vocab()
    position, token = len(prompt), prompt[-1]
    started = time.perf_counter()
    for _ in range(tokens):
        # Which token is fed does not change the work: a fixed walk through the vocabulary.
        token = (token + 7) % n_vocab
        batch.set_batch([token], n_past=position, logits_all=True)
        context.decode(batch)
        position += 1
    decode_seconds = time.perf_counter() - started
    variant = cpu_variant() if list(library.glob("libggml-cpu-*.so")) else "linked in"
    return {"prompt_tps": len(prompt) / prompt_seconds, "decode_tps": tokens / decode_seconds, "cpu": variant}


def run_child(site: str | None, model: str, threads: int, tokens: int) -> dict:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site
    code = (
        f"import json, sys; sys.path.insert(0, {str(REPO / 'tools')!r}); import bench_build; "
        f"print(json.dumps(bench_build.measure({model!r}, {threads}, {tokens})))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="folder holding the other build's llama_cpp package")
    parser.add_argument("--model", default=str(REPO / ".cache" / "models" / "gemma-3-270m-q4_k_m.gguf"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"portable": [], "other": []}
    for _ in range(args.rounds):
        results["portable"].append(run_child(None, args.model, args.threads, args.tokens))
        results["other"].append(run_child(args.other, args.model, args.threads, args.tokens))
    print("| build | CPU backend | prompt tok/s (median) | decode tok/s (median) |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        prompt = statistics.median(r["prompt_tps"] for r in runs)
        decode = statistics.median(r["decode_tps"] for r in runs)
        print(f"| {name} | {runs[0]['cpu']} | {prompt:.0f} | {decode:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
