"""Side-by-side benchmark: Hearth, llama.cpp's llama-server and llama-cpp-python's
own server, on the same model, threads and machine, measured interleaved in one run.

    .venv/bin/python tools/bench.py [--threads N] [--repeats 3] [--phases core,agent,memory]
                                    [--repack auto|on|off] [--out docs/benchmarks.md]

Run after `make test` has set up .venv (llama-cpp-python[server] is a dev extra);
llama-server is built from the llama.cpp vendored in the same llama-cpp-python
source package by tools/build_llama_server.sh. All traffic stays on 127.0.0.1.
Every server gets its requests through the same OpenAI endpoint, /v1/completions,
with raw prompts (no chat template), so that all three do the same work.
Phases: core (latency, decode, 1-16 streams, follow-up turn), agent (two
agent-sized conversations side by side), memory (resident memory and KV of
Hearth and llama-server with 4 slots and a 32k context, after a long prompt).
"""

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_load import Scores, agent_workload, long_prompt, measure, new_client, stream_completion, tree_rss, warm_up
from bench_report import Run, write_chart, write_report

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CONTEXT = 32768  # Gemma 3 270M's trained context: one KV pool for all slots, in both servers
SLOTS = 8
MEMORY_SLOTS = 4
PHASES = ("core", "agent", "memory")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    engine_address: str = ""  # Hearth's engine, asked for its KV bytes
    flags: str = ""  # as the report shows them
    cwd: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path, model_id: str) -> None:
        self.log_path = log_dir / f"{self.name}.log"
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


def repack_unsafe() -> bool:
    """Intel CPUs with AVX-512 or AMX, where llama.cpp's repacked CPU kernels die with SIGILL."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return "GenuineIntel" in info and any(f.startswith(("avx512", "amx")) for f in flags)


def server_specs(args, bin_dir: Path, model_path: Path, tmp_dir: Path, slots: int) -> list[Server]:
    model_id = model_path.stem
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    hearth_port = free_port()
    engine = f"127.0.0.1:{free_port()}"
    repack = {"on": False, "off": True, "auto": repack_unsafe()}[args.repack]
    llama_flags = ["-np", str(slots), "-c", str(CONTEXT), "-kvu", *(["--no-repack"] if repack else [])]
    hearth = Server(
        "Hearth",
        [PY, "-m", "hearth", "serve", "--port", str(hearth_port), "--engine-address", engine],
        {
            **env,
            "LLM_MODELS_DIR": str(tmp_dir / "models"),
            "LLM_CONFIG_FILE": str(tmp_dir / "config.json"),
            "LLM_THREADS": str(args.threads),
            "LLM_PARALLEL": str(slots),
            "LLM_CONTEXT_SIZE": str(CONTEXT),
            "LLM_LOG_LEVEL": "WARNING",
        },
        hearth_port,
    )
    hearth.engine_address = engine
    server = Server(
        "llama-server",
        [
            str(bin_dir / "llama-server"),
            "-m",
            str(model_path),
            "-t",
            str(args.threads),
            *llama_flags,
            "--port",
            "{port}",
            "--host",
            "127.0.0.1",
            "-a",
            model_id,
        ],
        env,
        free_port(),
    )
    server.flags = " ".join(["llama-server", "-t", str(args.threads), *llama_flags])
    llcpp = Server(
        "llama-cpp-python",
        [
            PY,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--model_alias",
            model_id,
            "--n_threads",
            str(args.threads),
            "--n_threads_batch",
            str(args.threads),
            "--n_ctx",
            "4096",
            # By default a new request cuts off the one being streamed; queue them instead.
            "--interrupt_requests",
            "False",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        env,
        free_port(),
    )
    # Hearth's llama.cpp build loads its CPU backends from a path relative to site-packages
    # (GGML_BACKEND_DIR=llama_cpp/lib); Hearth's engine loads them itself, llama_cpp.server does not.
    import llama_cpp

    llcpp.cwd = Path(llama_cpp.__file__).resolve().parent.parent
    servers = [hearth, server, llcpp]
    for s in servers:
        s.args = [a.replace("{port}", str(s.port)) for a in s.args]
    return servers


def kv_bytes(server: Server) -> float:
    """The KV cache the server holds: GetStatus for Hearth, llama.cpp's own log line for llama-server."""
    if server.engine_address:
        from hearth.client import EngineClient

        with EngineClient(server.engine_address) as engine:
            status = engine.status(timeout=30)
        return float(sum(m.kv_bytes for m in status.loaded_models))
    sizes = re.findall(r"llama_kv_cache: size = +([0-9.]+) MiB", server.log_path.read_text(errors="replace"))
    return sum(float(s) for s in sizes) * 1024 * 1024


async def fill(server: Server, model: str, rng: random.Random) -> None:
    async with new_client() as http:
        await stream_completion(http, server.url, model, long_prompt(rng), 16)
        await asyncio.gather(*(stream_completion(http, server.url, model, long_prompt(rng, 300), 16) for _ in range(4)))


def measure_memory(servers: list[Server], tmp_dir: Path, model_id: str, rng: random.Random) -> dict:
    memory = {}
    for server in servers:
        if server.name == "llama-server":
            # Its KV cache sizes are logged at this verbosity, not at the default 3.
            server.args = [*server.args, "-lv", "4"]
        server.start(tmp_dir, model_id)
        try:
            asyncio.run(fill(server, model_id, rng))
            tree = tree_rss(server.process.pid)
            # Hearth's engine is the `hearth engine` child of `hearth serve`; llama-server is one process.
            engine = max(rss for command, rss in tree.values() if " hearth serve " not in f"{command} ")
            memory[server.name] = {
                "total": sum(rss for _, rss in tree.values()),
                "engine": engine,
                "kv": kv_bytes(server),
            }
            print(f"memory {server.name}: {memory[server.name]}", flush=True)
        finally:
            server.stop()
    return memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument(
        "--repack",
        choices=("auto", "on", "off"),
        default="auto",
        help="llama-server's CPU weight repacking; auto: off where it is unsafe (Intel AVX-512/AMX)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    phases = set(args.phases.split(","))

    import llama_cpp

    from hearth.default_model import install_default_model

    version = llama_cpp.__version__
    built = subprocess.run(
        [str(ROOT / "tools" / "build_llama_server.sh"), version], check=True, capture_output=True, text=True
    )
    bin_dir = Path(built.stdout.strip().splitlines()[-1])
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
        servers = server_specs(args, bin_dir, model_path, tmp_dir, SLOTS)
        bench = llama_bench(bin_dir, model_path, args.threads)
        print(f"llama-bench: {bench}", flush=True)
        results = {s.name: Scores() for s in servers}
        rng = random.Random(0)
        try:
            for server in servers:
                print(f"starting {server.name}", flush=True)
                server.start(tmp_dir, model_id)
                asyncio.run(warm_up(server.url, model_id, rng, SLOTS))
            for round_no in range(args.repeats):
                for server in servers:
                    if "core" in phases:
                        asyncio.run(measure(server.url, model_id, rng, results[server.name]))
                    if "agent" in phases and server.name != "llama-cpp-python":
                        asyncio.run(agent_workload(server.url, model_id, rng, results[server.name]))
                    print(
                        f"round {round_no + 1} {server.name}: "
                        + ", ".join(f"{k}={v[-1]:.1f}" for k, v in results[server.name].values.items()),
                        flush=True,
                    )
        finally:
            for server in servers:
                server.stop()
                if server.log_path and server.log_path.exists():
                    # Keep the servers' own logs where they can be read after the run.
                    (ROOT / ".cache" / "bench-logs").mkdir(parents=True, exist_ok=True)
                    (ROOT / ".cache" / "bench-logs" / server.log_path.name).write_bytes(server.log_path.read_bytes())
        memory = {}
        setup = ""
        if "memory" in phases:
            small = server_specs(args, bin_dir, model_path, tmp_dir, MEMORY_SLOTS)[:2]
            memory = measure_memory(small, tmp_dir, model_id, rng)
            setup = (
                f"{MEMORY_SLOTS} slots, a {CONTEXT}-token context (one pool), after a ~1500-token prompt and four"
                f" ~400-token prompts side by side; llama-server `{small[1].flags}`. Resident: the server's"
                " processes together (Hearth: adapter and engine)."
            )
    run = Run(results, bench, args.threads, args.repeats, version, SLOTS, CONTEXT, servers[1].flags, memory, setup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(args.out, run)
    write_chart(args.out.with_suffix(".png"), results)
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
