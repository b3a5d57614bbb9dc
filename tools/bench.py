"""Side-by-side benchmark: Hearth, llama.cpp's llama-server and llama-cpp-python's
own server, on the same model, threads and machine, measured interleaved in one run.

    .venv/bin/python tools/bench.py [--threads N] [--repeats 3] [--out docs/benchmarks.md]

Run after `make test` has set up .venv (llama-cpp-python[server] is a dev extra);
llama-server is built from the llama.cpp vendored in the same llama-cpp-python
source package by tools/build_llama_server.sh. All traffic stays on 127.0.0.1.
Every server gets its requests through the same OpenAI endpoint, /v1/completions,
with raw prompts (no chat template), so that all three do the same work.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CONTEXT_PER_SLOT = 4096
SLOTS = 8
LONG_PROMPT_WORDS = 1150  # about 1500 tokens
DECODE_TOKENS = 200
STREAM_TOKENS = 128
COUNTING = "Count with me: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"

WORDS = (
    "river stone garden window morning quiet engine paper silver mountain letter "
    "forest table music winter harbour candle market bridge orange island"
).split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def long_prompt(rng: random.Random) -> str:
    # A unique opening word so that no server can reuse a cached prefix.
    return f"{rng.randrange(10**9)} " + " ".join(rng.choice(WORDS) for _ in range(LONG_PROMPT_WORDS))


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path, model_id: str) -> None:
        self.log_path = log_dir / f"{self.name}.log"
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                reply = httpx.post(
                    f"{self.url}/v1/completions",
                    json={"model": model_id, "prompt": "Hello", "max_tokens": 1},
                    timeout=30,
                )
                if reply.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class StreamResult:
    ttft: float
    tokens: int
    first_at: float
    last_at: float
    ended_at: float


async def stream_completion(client: httpx.AsyncClient, server: Server, model: str, prompt: str, max_tokens: int) -> StreamResult:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async with client.stream("POST", f"{server.url}/v1/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                now = time.perf_counter()
                tokens += 1
                first = first or now
                last = now
    ended = time.perf_counter()
    if not tokens:
        raise RuntimeError(f"{server.name} streamed no text")
    return StreamResult(first - started, tokens, first, last, ended)


@dataclass
class Scores:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, metric: str, value: float) -> None:
        self.values.setdefault(metric, []).append(value)

    def median(self, metric: str) -> float:
        return statistics.median(self.values[metric])


def new_client() -> httpx.AsyncClient:
    # No keep-alive: llama-server drops idle connections, and a fresh connection per request is fair to all.
    return httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))


async def warm_up(server: Server, model: str, rng: random.Random) -> None:
    """Pages the weights in and runs every code path once before anything is timed."""
    async with new_client() as http:
        await stream_completion(http, server, model, long_prompt(rng), 32)
        await asyncio.gather(*(stream_completion(http, server, model, COUNTING, 16) for _ in range(SLOTS)))


async def measure(server: Server, model: str, rng: random.Random, scores: Scores) -> None:
    async with new_client() as http:
        await _measure(http, server, model, rng, scores)


async def _measure(client: httpx.AsyncClient, server: Server, model: str, rng: random.Random, scores: Scores) -> None:
    short = await stream_completion(client, server, model, f"{rng.randrange(10**9)} The capital of France is", 4)
    scores.add("ttft_short_ms", short.ttft * 1000)
    long = await stream_completion(client, server, model, long_prompt(rng), 4)
    scores.add("ttft_long_ms", long.ttft * 1000)
    decode = await stream_completion(client, server, model, f"{rng.randrange(10**9)} {COUNTING}", DECODE_TOKENS)
    scores.add("decode_tps", (decode.tokens - 1) / (decode.last_at - decode.first_at))
    for concurrency in (1, 4, 8):
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                stream_completion(client, server, model, f"{rng.randrange(10**9)} {COUNTING}", STREAM_TOKENS)
                for _ in range(concurrency)
            )
        )
        wall = max(r.ended_at for r in results) - started
        scores.add(f"aggregate_tps_{concurrency}", sum(r.tokens for r in results) / wall)
    # A conversation's next turn: the long history again plus a little more.
    history = long_prompt(rng)
    await stream_completion(client, server, model, history, 8)
    follow = await stream_completion(client, server, model, history + " And then the next morning", 4)
    scores.add("ttft_follow_up_ms", follow.ttft * 1000)


def llama_bench(bin_dir: Path, model: Path, threads: int) -> dict[str, float]:
    output = subprocess.run(
        [str(bin_dir / "llama-bench"), "-m", str(model), "-t", str(threads), "-p", "512", "-n", "128", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = {}
    for row in json.loads(output):
        key = "pp512" if row["n_prompt"] else "tg128"
        rates[key] = row["avg_ts"]
    return rates


METRICS = [
    ("ttft_short_ms", "Time to first token, short prompt (ms)", False),
    ("ttft_long_ms", "Time to first token, ~1500-token prompt (ms)", False),
    ("decode_tps", "Single-stream decode (tokens/s)", True),
    ("aggregate_tps_1", "Aggregate tokens/s, 1 stream", True),
    ("aggregate_tps_4", "Aggregate tokens/s, 4 concurrent streams", True),
    ("aggregate_tps_8", "Aggregate tokens/s, 8 concurrent streams", True),
    ("ttft_follow_up_ms", "Follow-up turn over a long history, time to first token (ms)", False),
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def write_report(out: Path, results: dict[str, Scores], bench: dict[str, float], threads: int, repeats: int, version: str) -> None:
    names = list(results)
    hearth, server, llcpp = names
    lines = [
        "# Benchmarks",
        "",
        f"Made by `tools/bench.py` on {time.strftime('%Y-%m-%d')}: {machine()}.",
        f"Model: Gemma 3 270M Q4_K_M (the default model). llama.cpp from llama-cpp-python {version} for all three;",
        f"{threads} threads each; {SLOTS} slots and {SLOTS * CONTEXT_PER_SLOT} KV cells for Hearth (one pool the",
        f"slots share) and llama-server (`-np 8`, {CONTEXT_PER_SLOT} per slot); llama-cpp-python's server has one",
        "context and serves one request at a time.",
        f"Each figure is the median of {repeats} rounds; the servers take turns within each round.",
        "All requests go to `/v1/completions` with raw prompts and temperature 0; each prompt starts with a",
        "random number, so that only the follow-up turn can reuse a cached prefix.",
        "",
        f"`llama-bench` on the same model and threads: prompt {bench.get('pp512', 0):.0f} tokens/s (pp512),"
        f" decode {bench.get('tg128', 0):.1f} tokens/s (tg128).",
        "",
        f"| Metric | {hearth} | {server} | {llcpp} | {hearth} ÷ {server} | {hearth} ÷ {llcpp} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label, _higher_better in METRICS:
        values = [results[n].median(key) for n in names]
        fmt = "{:.0f}" if key.startswith("ttft") else "{:.1f}"
        cells = [fmt.format(v) for v in values]
        lines.append(
            f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {values[0] / values[1]:.2f}× | {values[0] / values[2]:.2f}× |"
        )
    def ratio(metric: str, other: str) -> float:
        return results[hearth].median(metric) / results[other].median(metric)

    decode_vs_bench = results[hearth].median("decode_tps") / bench["tg128"] if bench.get("tg128") else float("nan")
    targets = [
        ("Single-stream decode ≥ 0.95× llama-bench tg128", decode_vs_bench, decode_vs_bench >= 0.95),
        ("Aggregate, 4 streams ≥ 1.0× llama-server", ratio("aggregate_tps_4", server), ratio("aggregate_tps_4", server) >= 1.0),
        ("Aggregate, 8 streams ≥ 1.0× llama-server", ratio("aggregate_tps_8", server), ratio("aggregate_tps_8", server) >= 1.0),
        ("Aggregate, 8 streams ≥ 2.5× llama-cpp-python", ratio("aggregate_tps_8", llcpp), ratio("aggregate_tps_8", llcpp) >= 2.5),
        ("Long-prompt TTFT ≤ 1.05× llama-server", ratio("ttft_long_ms", server), ratio("ttft_long_ms", server) <= 1.05),
        ("Follow-up TTFT ≤ 1.5× llama-server", ratio("ttft_follow_up_ms", server), ratio("ttft_follow_up_ms", server) <= 1.5),
    ]
    lines += [
        "",
        "For times (ms) lower is better and a ratio under 1 means Hearth is faster; for rates higher is better.",
        "",
        "## Targets",
        "",
        "| Target | Measured | Met |",
        "|---|---:|:---:|",
        *(f"| {name} | {value:.2f}× | {'yes' if met else 'no'} |" for name, value, met in targets),
        "",
        "![chart](benchmarks.png)",
        "",
        "See [performance.md](performance.md) for what these figures mean and why the unmet targets are unmet.",
        "",
    ]
    out.write_text("\n".join(lines))


def write_chart(path: Path, results: dict[str, Scores]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    rate_keys = ["decode_tps", "aggregate_tps_1", "aggregate_tps_4", "aggregate_tps_8"]
    time_keys = ["ttft_short_ms", "ttft_long_ms", "ttft_follow_up_ms"]
    for ax, keys, title in ((axes[0], rate_keys, "tokens/s (higher is better)"), (axes[1], time_keys, "ms (lower is better)")):
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            ax.bar(
                [k + i * width for k in range(len(keys))],
                [results[name].median(key) for key in keys],
                width,
                label=name,
            )
        ax.set_xticks([k + width for k in range(len(keys))])
        ax.set_xticklabels([re.sub(r"_(tps|ms)$", "", key).replace("_", " ") for key in keys], fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    import llama_cpp

    from hearth.default_model import install_default_model

    version = llama_cpp.__version__
    bin_dir = Path(subprocess.run([str(ROOT / "tools" / "build_llama_server.sh"), version], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    if not bin_dir.is_absolute():
        bin_dir = ROOT / bin_dir
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        models = tmp_dir / "models"
        model_path = install_default_model(ROOT / ".cache" / "models")
        assert model_path is not None
        models.mkdir()
        (models / model_path.name).symlink_to(model_path)
        model_id = model_path.stem
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_")}
        env["NO_PROXY"] = "127.0.0.1,localhost"
        hearth_port = free_port()
        servers = [
            Server(
                "Hearth",
                [PY, "-m", "hearth", "serve", "--port", str(hearth_port), "--engine-address", f"127.0.0.1:{free_port()}"],
                {
                    **env,
                    "LLM_MODELS_DIR": str(models),
                    "LLM_CONFIG_FILE": str(tmp_dir / "config.json"),
                    "LLM_THREADS": str(args.threads),
                    "LLM_PARALLEL": str(SLOTS),
                    # One KV pool the slots share, as many cells as llama-server's slots have together.
                    "LLM_CONTEXT_SIZE": str(SLOTS * CONTEXT_PER_SLOT),
                    "LLM_LOG_LEVEL": "WARNING",
                },
                hearth_port,
            ),
            Server(
                "llama-server",
                [
                    str(bin_dir / "llama-server"), "-m", str(model_path), "-t", str(args.threads), "-np", str(SLOTS),
                    "-c", str(SLOTS * CONTEXT_PER_SLOT), "--port", "{port}", "--host", "127.0.0.1", "-a", model_id,
                ],
                env,
                free_port(),
            ),
            Server(
                "llama-cpp-python",
                [
                    PY, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", model_id,
                    "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads), "--n_ctx", str(CONTEXT_PER_SLOT),
                    # By default a new request cuts off the one being streamed; queue them instead.
                    "--interrupt_requests", "False",
                    "--host", "127.0.0.1", "--port", "{port}",
                ],
                env,
                free_port(),
            ),
        ]
        for server in servers:
            server.args = [a.replace("{port}", str(server.port)) for a in server.args]
        bench = llama_bench(bin_dir, model_path, args.threads)
        print(f"llama-bench: {bench}", flush=True)
        results = {s.name: Scores() for s in servers}
        try:
            rng = random.Random(0)
            for server in servers:
                print(f"starting {server.name}", flush=True)
                server.start(tmp_dir, model_id)
                asyncio.run(warm_up(server, model_id, rng))
            for round_no in range(args.repeats):
                for server in servers:
                    asyncio.run(measure(server, model_id, rng, results[server.name]))
                    print(f"round {round_no + 1} {server.name}: " + ", ".join(
                        f"{k}={v[-1]:.1f}" for k, v in results[server.name].values.items()), flush=True)
        finally:
            for server in servers:
                server.stop()
                if server.log_path and server.log_path.exists():
                    # Keep the servers' own logs where they can be read after the run.
                    (ROOT / ".cache" / "bench-logs").mkdir(parents=True, exist_ok=True)
                    (ROOT / ".cache" / "bench-logs" / server.log_path.name).write_bytes(server.log_path.read_bytes())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(args.out, results, bench, args.threads, args.repeats, version)
    write_chart(args.out.with_suffix(".png"), results)
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
