"""The sequence slots of a loaded model and the KV pool they share: which
slot reads a request's prompt (the longest cached prefix), and room in the
pool (idle slots' cached prefixes give way, least recently used first). Used
by the scheduler's worker thread only."""

from dataclasses import dataclass, field

from hearth.engine.domain import GenerationJob
from hearth.engine.generation.output import SequenceOutput
from hearth.engine.llama.context import LlamaContext
from hearth.engine.llama.sampling import Sampler
from hearth.engine.reasoning.budget import ReasoningTracker


@dataclass
class Slot:
    seq_id: int
    # Tokens whose KV is in this sequence's cache, in order.
    cached: list[int] = field(default_factory=list)
    last_used: float = 0.0
    # Set while serving a request:
    run: "Run | None" = None
    index: int = 0
    sampler: Sampler | None = None
    output: SequenceOutput | None = None
    # The sampled token to feed next; None while the prompt is being read.
    next_token: int | None = None
    # Where this slot's logits are in the batch just decoded; -1 for none.
    logits_at: int = -1
    # The first ``shared`` cells of this sequence are ``owner``'s, copied (an
    # n > 1 request's prompt): the pool holds them once.
    owner: "Slot | None" = None
    shared: int = 0
    # The first ``exact`` cached tokens were read by seeded requests in whole
    # aligned chunks (see place()); a multiple of the chunk.
    exact: int = 0
    # Follows a reasoning model's thinking (and its budget); None otherwise.
    reasoning: ReasoningTracker | None = None


@dataclass
class Run:
    """A job being served, by one slot per sequence (n of them)."""

    job: GenerationJob
    slots: list[Slot]
    # Prompt tokens not yet evaluated (read by slots[0]; the others copy it).
    pending: list[int]
    live: int
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def place(job: GenerationJob, free: list[Slot], chunk: int) -> tuple[Slot, int]:
    """The slot that reads the prompt, and how many of its cached tokens it keeps.

    A seeded request keeps only whole aligned chunks that a seeded request read
    (``Slot.exact``): it reads its prompt in chunks that begin at multiples of
    ``chunk``, one to a step, so that each chunk is computed exactly as it would
    be without a cache, and the same seed gives the same text either way (a
    cached prefix plus a suffix in one batch rounds differently from one batch)."""
    prompt = job.prompt_tokens
    if job.sampling.seed is None:
        # The slot whose cache shares the longest prefix with this prompt; else the least recently used.
        first = max(free, key=lambda s: (_common_prefix(s.cached, prompt), -s.last_used))
        return first, min(_common_prefix(first.cached, prompt), len(prompt) - 1)

    def reusable(slot: Slot) -> int:
        return min(_common_prefix(slot.cached, prompt), slot.exact, len(prompt) - 1) // chunk * chunk

    first = max(free, key=lambda s: (reusable(s), -s.last_used))
    return first, reusable(first)


def seeded_chunk(reader: Slot, pending: int, room: int, chunk: int) -> int:
    """How many prompt tokens a seeded request reads this step: up to the next
    multiple of ``chunk`` (fewer only where the batch has no room for them)."""
    return min(pending, room, chunk - len(reader.cached) % chunk)


class KvPool:
    """The cells of one context's unified KV cache, as the slots hold them."""

    def __init__(self, context: LlamaContext, slots: list[Slot], runs: list[Run]):
        self._context = context
        self._slots = slots
        self._runs = runs

    def used_cells(self) -> int:
        return sum(len(s.cached) - min(s.shared, len(s.cached)) for s in self._slots)

    def free_cells(self) -> int:
        """Cells neither held nor promised to a prompt being read."""
        return self._context.n_ctx - self.used_cells() - sum(len(run.pending) for run in self._runs)

    def make_room(self, cells: int, spare: Slot | None = None) -> bool:
        """Drops idle slots' cached prefixes (not ``spare``'s), least recently
        used first, until ``cells`` more fit; False if they cannot. A cache per
        slot needs none of this: each sequence is bounded by its own stream."""
        if not self._context.shared:
            return True
        free = self.free_cells()
        if free >= cells:
            return True
        idle = sorted(
            (s for s in self._slots if s.run is None and s.cached and s is not spare), key=lambda s: s.last_used
        )
        # Nothing is dropped unless dropping makes the room.
        if free + sum(len(s.cached) - min(s.shared, len(s.cached)) for s in idle) < cells:
            return False
        for slot in idle:
            if self.free_cells() >= cells:
                break
            self.cut(slot, 0)
        return self.free_cells() >= cells

    def cut(self, slot: Slot, keep: int) -> int:
        """Drops ``slot``'s cached tokens from ``keep`` on; returns how many it keeps
        (0 where the cache cannot cut there). Copies of the dropped cells become
        their holders' own."""
        if keep <= 0 or not self._context.seq_truncate(slot.seq_id, keep):
            self._context.seq_clear(slot.seq_id)
            keep = 0
        del slot.cached[keep:]
        slot.exact = min(slot.exact, keep)
        slot.shared = min(slot.shared, keep)
        if not slot.shared:
            slot.owner = None
        for other in self._slots:
            if other.owner is slot and other.shared > keep:
                other.shared = keep
                if not keep:
                    other.owner = None
        return keep

    def copy(self, source: Slot, slot: Slot) -> None:
        """``slot`` becomes a copy of ``source``'s sequence, sharing its cells."""
        self.cut(slot, 0)
        self._context.seq_copy(source.seq_id, slot.seq_id)
        slot.cached = list(source.cached)
        slot.exact = source.exact
        if self._context.shared:
            slot.owner, slot.shared = source, len(source.cached)
