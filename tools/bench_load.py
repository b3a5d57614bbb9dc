"""The load tools/bench.py puts on each server: streamed /v1/completions with raw
prompts, timed from the client, and an agent-shaped conversation workload."""

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LONG_PROMPT_WORDS = 1150  # about 1500 tokens
DECODE_TOKENS = 200
STREAM_TOKENS = 128
CONCURRENCY = (1, 4, 8, 16)
COUNTING = "Count with me: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
# The agent workload: a long system prompt with tool definitions and files read
# so far, then short turns that each add the model's answer and a new request.
AGENT_PROMPT_WORDS = 8600  # about 12k tokens with the tool schemas
AGENT_TURNS = 5
AGENT_ANSWER_TOKENS = 48

WORDS = (
    "river stone garden window morning quiet engine paper silver mountain letter "
    "forest table music winter harbour candle market bridge orange island"
).split()
TOOL_NAMES = ("read_file", "write_file", "list_directory", "run_command", "search_text", "apply_patch")


@dataclass
class StreamResult:
    ttft: float
    tokens: int
    text: str
    first_at: float
    last_at: float
    ended_at: float


@dataclass
class Scores:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, metric: str, value: float) -> None:
        self.values.setdefault(metric, []).append(value)

    def median(self, metric: str) -> float:
        return statistics.median(self.values[metric]) if self.values.get(metric) else float("nan")


def long_prompt(rng: random.Random, words: int = LONG_PROMPT_WORDS) -> str:
    # A unique opening word so that no server can reuse a cached prefix.
    return f"{rng.randrange(10**9)} " + " ".join(rng.choice(WORDS) for _ in range(words))


def agent_prompt(rng: random.Random) -> str:
    """A synthetic coding agent's first prompt: instructions, tool schemas, files."""
    tools = [
        {
            "name": name,
            "description": " ".join(rng.choice(WORDS) for _ in range(30)),
            "parameters": {
                "type": "object",
                "properties": {f"{rng.choice(WORDS)}_{i}": {"type": "string"} for i in range(4)},
                "required": [],
            },
        }
        for name in TOOL_NAMES
    ]
    return (
        f"Session {rng.randrange(10**9)}. You are a coding assistant working in a repository.\n"
        f"Tools:\n{json.dumps(tools, indent=1)}\n"
        f"Files read so far:\n{long_prompt(rng, AGENT_PROMPT_WORDS)}\n"
        "User: find where the morning bridge is built and fix it.\nAssistant:"
    )


def new_client() -> httpx.AsyncClient:
    # No keep-alive: llama-server drops idle connections, and a fresh connection per request is fair to all.
    return httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))


async def stream_completion(
    client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int
) -> StreamResult:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    text = []
    async with client.stream("POST", f"{url}/v1/completions", json=body, timeout=900) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                now = time.perf_counter()
                tokens += 1
                text.append(chunk["choices"][0]["text"])
                first = first or now
                last = now
    ended = time.perf_counter()
    if not tokens:
        raise RuntimeError(f"{url} streamed no text")
    return StreamResult(first - started, tokens, "".join(text), first, last, ended)


async def warm_up(url: str, model: str, rng: random.Random, slots: int) -> None:
    """Pages the weights in and runs every code path once before anything is timed."""
    async with new_client() as http:
        await stream_completion(http, url, model, long_prompt(rng), 32)
        await asyncio.gather(*(stream_completion(http, url, model, COUNTING, 16) for _ in range(slots)))


async def measure(url: str, model: str, rng: random.Random, scores: Scores, concurrency=CONCURRENCY) -> None:
    async with new_client() as client:
        short = await stream_completion(client, url, model, f"{rng.randrange(10**9)} The capital of France is", 4)
        scores.add("ttft_short_ms", short.ttft * 1000)
        long = await stream_completion(client, url, model, long_prompt(rng), 4)
        scores.add("ttft_long_ms", long.ttft * 1000)
        decode = await stream_completion(client, url, model, f"{rng.randrange(10**9)} {COUNTING}", DECODE_TOKENS)
        scores.add("decode_tps", (decode.tokens - 1) / (decode.last_at - decode.first_at))
        for streams in concurrency:
            started = time.perf_counter()
            prompts = [f"{rng.randrange(10**9)} {COUNTING}" for _ in range(streams)]
            results = await asyncio.gather(*(stream_completion(client, url, model, p, STREAM_TOKENS) for p in prompts))
            wall = max(r.ended_at for r in results) - started
            scores.add(f"aggregate_tps_{streams}", sum(r.tokens for r in results) / wall)
        # A conversation's next turn: the long history again plus a little more.
        history = long_prompt(rng)
        await stream_completion(client, url, model, history, 8)
        follow = await stream_completion(client, url, model, history + " And then the next morning", 4)
        scores.add("ttft_follow_up_ms", follow.ttft * 1000)


async def agent_workload(url: str, model: str, rng: random.Random, scores: Scores, conversations: int = 2) -> None:
    """Conversations of an agent-sized first turn and AGENT_TURNS follow-ups each,
    run side by side (their turns interleave); every turn's prompt is the whole
    conversation so far, as an agent resends it."""
    follow_ups: list[float] = []

    async def conversation(client: httpx.AsyncClient, prompt: str, seed: int) -> None:
        local = random.Random(seed)
        for turn in range(AGENT_TURNS + 1):
            result = await stream_completion(client, url, model, prompt, AGENT_ANSWER_TOKENS)
            if turn:
                follow_ups.append(result.ttft * 1000)
            request = " ".join(local.choice(WORDS) for _ in range(local.randrange(20, 60)))
            prompt += f"{result.text}\nTool result: {request}\nAssistant:"

    prompts = [agent_prompt(rng) for _ in range(conversations)]
    started = time.perf_counter()
    async with new_client() as client:
        await asyncio.gather(*(conversation(client, p, rng.randrange(10**9)) for p in prompts))
    scores.add("agent_total_s", time.perf_counter() - started)
    follow_ups.sort()
    scores.add("agent_follow_up_p95_ms", follow_ups[min(len(follow_ups) - 1, round(0.95 * (len(follow_ups) - 1)))])


def tree_rss(pid: int) -> dict[int, tuple[str, int]]:
    """Resident bytes of a process and all its descendants: pid -> (command line, bytes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    out = {}
    for member in tree:
        try:
            status = Path(f"/proc/{member}/status").read_text()
            command = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        out[member] = (command, rss)
    return out
