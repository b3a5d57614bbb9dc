"""docs/benchmarks.md and its chart from tools/bench.py's measurements."""

import math
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_load import CONCURRENCY, Scores

METRICS = [
    ("ttft_short_ms", "Time to first token, short prompt (ms)"),
    ("ttft_long_ms", "Time to first token, ~1500-token prompt (ms)"),
    ("decode_tps", "Single-stream decode (tokens/s)"),
    *((f"aggregate_tps_{n}", f"Aggregate tokens/s, {n} concurrent stream{'s' if n > 1 else ''}") for n in CONCURRENCY),
    ("ttft_follow_up_ms", "Follow-up turn over a long history, time to first token (ms)"),
    ("agent_total_s", "Agent workload, total time (s)"),
    ("agent_follow_up_p95_ms", "Agent workload, p95 time to first token of follow-up turns (ms)"),
]


@dataclass
class Run:
    """What one benchmark run measured, and how it was set up."""

    results: dict[str, Scores]
    bench: dict[str, float]
    threads: int
    repeats: int
    version: str
    slots: int
    context: int
    server_flags: str
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    memory_setup: str = ""


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


def _cell(key: str, value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.0f}" if key.endswith("_ms") else f"{value:.1f}"


def _ratio(a: float, b: float) -> str:
    return "—" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.2f}×"


def write_report(out: Path, run: Run) -> None:
    names = list(run.results)
    hearth, server, llcpp = names
    med = {name: {key: run.results[name].median(key) for key, _ in METRICS} for name in names}
    lines = [
        "# Benchmarks",
        "",
        f"Made by `tools/bench.py` on {time.strftime('%Y-%m-%d')}: {machine()}.",
        f"Model: Gemma 3 270M Q4_K_M (the default model). llama.cpp from llama-cpp-python {run.version} for all",
        f"three; {run.threads} threads each. Hearth: {run.slots} slots sharing one KV pool of {run.context} cells.",
        f"llama-server: `{run.server_flags}`. llama-cpp-python's server has one context of 4096 and serves one",
        "request at a time (it cannot hold the agent workload's prompts).",
        f"Each figure is the median of {run.repeats} rounds; the servers take turns within each round.",
        "All requests go to `/v1/completions` with raw prompts and temperature 0; each prompt starts with a",
        "random number, so that only follow-up turns can reuse a cached prefix. The agent workload: two",
        "conversations side by side, each a ~12k-token first prompt (instructions, tool schemas, files) and",
        "5 follow-up turns that resend the whole conversation plus the answer and a tool result.",
        "",
        f"`llama-bench` on the same model and threads: prompt {run.bench.get('pp512', 0):.0f} tokens/s (pp512),"
        f" decode {run.bench.get('tg128', 0):.1f} tokens/s (tg128).",
        "",
        f"| Metric | {hearth} | {server} | {llcpp} | {hearth} ÷ {server} | {hearth} ÷ {llcpp} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in METRICS:
        values = [med[n][key] for n in names]
        cells = [_cell(key, v) for v in values]
        lines.append(
            f"| {label} | {' | '.join(cells)} | {_ratio(values[0], values[1])} | {_ratio(values[0], values[2])} |"
        )
    lines += ["", "For times lower is better and a ratio under 1 means Hearth is faster; for rates higher is better."]
    if run.memory:
        lines += ["", "## Memory", "", run.memory_setup, "", "| | Resident (MB) | of which the engine (MB) | KV (MB) |"]
        lines.append("|---|---:|---:|---:|")
        for name, row in run.memory.items():
            kv = f"{row['kv'] / 1e6:.0f}" if row.get("kv") else "—"
            lines.append(f"| {name} | {row['total'] / 1e6:.0f} | {row['engine'] / 1e6:.0f} | {kv} |")
    targets = []
    for key, _label in METRICS:
        a, b = med[hearth][key], med[server][key]
        if math.isnan(a) or math.isnan(b):
            continue
        goal = 0.8 if key.startswith("agent") else 1.0
        higher = "_tps" in key  # decode_tps and aggregate_tps_N are rates
        met = a / b >= goal if higher else a / b <= goal
        targets.append((f"{key} {'≥' if higher else '≤'} {goal}× llama-server", a / b, met))
    if run.memory and server in run.memory and hearth in run.memory:
        share = run.memory[hearth]["total"] / run.memory[server]["total"]
        targets.append(("resident memory ≤ 1.0× llama-server", share, share <= 1.0))
    lines += [
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
    rate_keys = ["decode_tps", *(f"aggregate_tps_{n}" for n in CONCURRENCY)]
    time_keys = ["ttft_short_ms", "ttft_long_ms", "ttft_follow_up_ms", "agent_follow_up_p95_ms"]
    for ax, keys, title in (
        (axes[0], rate_keys, "tokens/s (higher is better)"),
        (axes[1], time_keys, "ms (lower is better)"),
    ):
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            values = [results[name].median(key) for key in keys]
            ax.bar(
                [k + i * width for k in range(len(keys))],
                [0 if math.isnan(v) else v for v in values],
                width,
                label=name,
            )
        ax.set_xticks([k + width for k in range(len(keys))])
        ax.set_xticklabels([re.sub(r"_(tps|ms)$", "", key).replace("_", " ") for key in keys], fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
