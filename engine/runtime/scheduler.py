"""Continuous batching for one loaded model.

One llama context holds several sequence slots, which share one pool of KV
cells (llama.cpp's unified cache): a sequence may grow to the whole pool, and
the sum of what the slots hold stays within it. Idle slots' cached prefixes
give way, least recently used first, when running ones need the cells; a
request whose prompt does not fit beside the running ones waits for them, and
when generating sequences together outgrow the pool, the youngest request
ends early with "length". (With a cache per slot, LLM_KV_POOL=per_slot, a
sequence is bounded by its own stream and the sum never exceeds the pool.)
A single worker thread runs
decode steps; each step carries one token for every sequence that is
generating plus, in the room left, a chunk of the prompt of a sequence that is
still reading it. New requests join between steps, finished or cancelled ones
free their slot at once, and a slot keeps its KV cache afterwards so that the
next request sharing a prefix with it (the next turn of a conversation, a
common system prompt) evaluates only the new tokens.

Nothing above this module knows how jobs are run: the runtime calls submit()
and close(), and reads the counters.

The worker thread also creates and frees the context. llama.cpp's CPU backend
runs on OpenMP, whose thread team belongs to the thread that first computes
with it; a context made on one thread and decoded on another kept two teams
competing for the cores and decoded batches up to twice as slowly (measured on
2 cores: 8 sequences per step took 64-77 ms instead of 37 ms).
"""

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from hearth.engine.domain import (
    Cancelled,
    ChoiceEnded,
    Failed,
    Finished,
    FinishReason,
    GenerationJob,
    TextPiece,
    TokenLogprob,
)
from hearth.engine.errors import EngineError, QueueFull
from hearth.engine.generation.output import SequenceOutput
from hearth.engine.llama.context import LlamaContext
from hearth.engine.llama.logprobs import token_logprob
from hearth.engine.llama.model import LlamaModel
from hearth.engine.llama.sampling import Sampler
from hearth.engine.reasoning.budget import ReasoningTracker
from hearth.engine.runtime.slots import KvPool, Run, Slot, place, seeded_chunk

log = logging.getLogger(__name__)

# The aligned prompt chunk of seeded requests: a cached prefix is reused up to
# a multiple of it. Smaller reuses more of a cache, larger reads a long prompt
# in fewer steps.
SEEDED_CHUNK = 128


class BatchScheduler:
    def __init__(
        self,
        model_id: str,
        model: LlamaModel,
        make_context: Callable[[], LlamaContext],
        stop_token_ids: frozenset[int],
        max_queue: int,
        *,
        make_sampler: Callable[..., Sampler] = Sampler,
        logprob: Callable[..., TokenLogprob] = token_logprob,
    ):
        """Starts the worker, which creates the context; raises what creating it
        raised. ``make_sampler(sampling, seed, model)`` and ``logprob(model,
        context, batch_index, token, top_n)`` are llama.cpp's unless given."""
        self.model_id = model_id
        self._make_sampler = make_sampler
        self._logprob = logprob
        self._model = model
        self._stop_token_ids = stop_token_ids
        self._max_queue = max_queue
        self._waiting: deque[GenerationJob] = deque()
        self._runs: list[Run] = []
        self._wake = threading.Condition()
        self._closing = False
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run_worker, args=(make_context,), name=f"batch-{model_id}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def _run_worker(self, make_context: Callable[[], LlamaContext]) -> None:
        try:
            self.context = make_context()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._slots = [Slot(seq_id=i) for i in range(self.context.n_seq)]
        self._pool = KvPool(self.context, self._slots, self._runs)
        # Seeded prompts are read in chunks aligned to multiples of this (see slots.place).
        self._chunk = min(SEEDED_CHUNK, self.context.n_batch // 2)
        self._ready.set()
        try:
            self._work()
        finally:
            self.context.close()

    # Counters for GetStatus.

    @property
    def pool_cells(self) -> int:
        """KV cells the slots share: the most context one sequence can have."""
        return self.context.n_ctx

    @property
    def sequence_cells(self) -> int:
        """The most KV cells one sequence can hold: the pool, or its own stream."""
        return self.context.n_ctx_seq

    @property
    def used_cells(self) -> int:
        """KV cells the slots hold (running requests and cached prefixes)."""
        return self._pool.used_cells()

    @property
    def slots(self) -> int:
        return len(self._slots)

    @property
    def busy_slots(self) -> int:
        return sum(1 for s in self._slots if s.run is not None)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def pending(self) -> int:
        """Requests waiting or running."""
        return len(self._waiting) + len(self._runs)

    def submit(self, job: GenerationJob) -> None:
        if job.n > len(self._slots):
            raise EngineError(f"n={job.n} is more than the {len(self._slots)} sequences this model serves at once")
        with self._wake:
            if self._closing:
                raise EngineError(f"model '{self.model_id}' is unloading")
            if len(self._waiting) >= self._max_queue:
                raise QueueFull(
                    f"Too many requests are waiting for model '{self.model_id}'; try again later",
                    model=self.model_id,
                )
            self._waiting.append(job)
            self._wake.notify()

    def close(self) -> None:
        """Finish the running and queued jobs, then stop. Blocks."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()

    # The worker thread.

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._runs and not self._closing:
                    self._wake.wait()
                if self._closing and not self._waiting and not self._runs:
                    return
            try:
                self._drop_cancelled()
                self._admit()
                if self._runs:
                    self._step()
            except Exception as exc:  # never let one bad step kill the worker
                log.exception("decode step failed for model %s", self.model_id)
                for run in list(self._runs):
                    self._fail(run, exc)

    def _admit(self) -> None:
        """Move waiting jobs into free slots, in arrival order."""
        while True:
            with self._wake:
                if not self._waiting:
                    return
                job = self._waiting[0]
                free = [s for s in self._slots if s.run is None]
                if job.cancel.is_set():
                    self._waiting.popleft()
                    job.close_samplers()
                    job.sink(Cancelled(completion_tokens=0))
                    continue
                if len(free) < job.n:
                    return
                first, keep = place(job, free, self._chunk)
                # Its prompt's cells and a first token per sequence, less what cutting the slot's cache frees.
                needed = len(job.prompt_tokens) + job.n - len(first.cached)
                if not self._pool.make_room(needed, spare=first) and self._runs:
                    return
                self._waiting.popleft()
            self._start(job, free, first, keep)

    def _start(self, job: GenerationJob, free: list[Slot], first: Slot, keep: int) -> None:
        prompt = job.prompt_tokens
        keep = self._pool.cut(first, keep)
        others = [s for s in free if s is not first][: job.n - 1]
        for other in others:  # each becomes a copy of the prompt once it is read
            self._pool.cut(other, 0)
        run = Run(job=job, slots=[first, *others], pending=prompt[keep:], live=job.n, cached_prompt_tokens=keep)
        seed = job.sampling.seed if job.sampling.seed is not None else random.getrandbits(32)
        ready, job.samplers = job.samplers, None
        self._runs.append(run)
        try:
            for index, slot in enumerate(run.slots):
                slot.run = run
                slot.index = index
                slot.next_token = None
                slot.logits_at = -1
                if ready:
                    slot.sampler = ready.pop(0)
                else:
                    slot.sampler = self._make_sampler(job.sampling, (seed + index) % 2**32, self._model)
                slot.output = SequenceOutput(
                    self._model, self._stop_token_ids, job.stop, job.max_new_tokens, special=job.special_tokens_as_text
                )
                slot.reasoning = ReasoningTracker(job.reasoning) if job.reasoning is not None else None
        except Exception as exc:  # e.g. a grammar llama.cpp refuses: this request fails, not the others
            log.exception("cannot start request %s", job.request_id)
            for sampler in ready or ():
                sampler.close()
            self._fail(run, exc)
            return
        if keep:
            log.debug("request %s reuses %d cached prompt tokens", job.request_id, keep)

    def _drop_cancelled(self) -> None:
        for run in list(self._runs):
            if run.job.cancel.is_set():
                running = sum(s.output.generated for s in run.slots if s.run is run and s.output is not None)
                run.job.sink(Cancelled(completion_tokens=run.completion_tokens + running))
                self._release(run)

    def _give_way(self) -> bool:
        """The pool is full: the most recently started request gives way. One
        still reading its prompt goes back to the front of the queue (it has
        sent nothing; what it read stays cached); one generating ends with
        "length". False if no request runs."""
        if not self._runs:
            return False
        run = self._runs[-1]
        if not any(s.run is run and s.next_token is not None for s in run.slots):
            log.info("model %s: request %s waits for room in the KV pool", self.model_id, run.job.request_id)
            run.job.samplers = [slot.sampler for slot in run.slots if slot.sampler is not None]
            for slot in run.slots:
                slot.sampler = None
                self._free(slot)
            self._runs.remove(run)
            with self._wake:
                self._waiting.appendleft(run.job)
            return True
        log.warning(
            "model %s: the shared KV pool (%d cells) is full; request %s ends early. Raise LLM_CONTEXT_SIZE "
            "or lower LLM_PARALLEL for room",
            self.model_id,
            self.pool_cells,
            run.job.request_id,
        )
        index = 0
        for slot in [s for s in run.slots if s.run is run]:
            run.completion_tokens += slot.output.generated if slot.output else 0
            run.reasoning_tokens += slot.reasoning.tokens if slot.reasoning is not None else 0
            index = slot.index
            self._free(slot)
            run.live -= 1
            if run.live:
                run.job.sink(ChoiceEnded(index, FinishReason.LENGTH))
        run.job.sink(
            Finished(
                FinishReason.LENGTH,
                len(run.job.prompt_tokens),
                run.completion_tokens,
                index,
                run.cached_prompt_tokens,
                reasoning_tokens=run.reasoning_tokens,
            )
        )
        self._runs.remove(run)
        return True

    def _step(self) -> None:
        ctx = self.context
        # Each generating sequence adds a cell; when they do not fit, the youngest request gives way.
        while not self._pool.make_room(sum(1 for s in self._slots if s.run is not None and s.next_token is not None)):
            if not self._give_way():
                break
        ctx.batch_clear()
        reading: list[tuple[Run, int]] = []
        # Generating sequences in slot order: llama.cpp reuses the previous
        # step's compute graph only when the batch's sequences come in the same
        # order, and rebuilding it costs as much as the decode of a small batch.
        for slot in self._slots:
            slot.logits_at = -1
            if slot.run is not None and slot.next_token is not None:
                slot.logits_at = ctx.batch_add(slot.next_token, len(slot.cached), slot.seq_id, True)
                slot.cached.append(slot.next_token)
        # Prompts take the room left, oldest request first, in chunks.
        for run in self._runs:
            room = ctx.n_batch - ctx.batch_size
            if run.pending and room > 0:
                # Its pending tokens were promised cells at admission (free_cells counts them as taken).
                self._pool.make_room(min(room, len(run.pending)) - len(run.pending), spare=run.slots[0])
                room = min(room, self._pool.free_cells() + len(run.pending))
            if not run.pending or room <= 0:
                continue
            reader = run.slots[0]
            start = len(reader.cached)
            seeded = run.job.sampling.seed is not None
            chunk = run.pending[: seeded_chunk(reader, len(run.pending), room, self._chunk) if seeded else room]
            del run.pending[: len(chunk)]
            for i, token in enumerate(chunk):
                last = not run.pending and i == len(chunk) - 1
                at = ctx.batch_add(token, len(reader.cached), reader.seq_id, last)
                reader.cached.append(token)
                if last:
                    reader.logits_at = at
            if seeded and start == reader.exact and len(chunk) == self._chunk:
                reader.exact += len(chunk)
            reading.append((run, len(chunk)))
        if ctx.batch_size == 0:
            if self._runs:  # nothing can move: the pool holds prompts that cannot all be read
                self._fail(self._runs[-1], EngineError("the shared KV pool is full; raise LLM_CONTEXT_SIZE"))
            return
        status = ctx.decode()
        if status != 0:
            raise EngineError(f"llama_decode failed with status {status}")
        for run, _ in reading:
            if not run.pending:
                self._fork(run)
        for run in list(self._runs):
            try:
                for slot in run.slots:
                    if slot.run is run and slot.logits_at >= 0:
                        self._sample(run, slot)
            except Exception as exc:  # a sampling failure (a grammar dead end) fails its request only
                log.exception("sampling failed for request %s", run.job.request_id)
                self._fail(run, exc)

    def _fork(self, run: Run) -> None:
        """The prompt is read: the other sequences of an n > 1 request start from a copy of it."""
        reader = run.slots[0]
        for slot in run.slots[1:]:
            self._pool.copy(reader, slot)
            slot.logits_at = reader.logits_at

    def _sample(self, run: Run, slot: Slot) -> None:
        assert slot.sampler is not None and slot.output is not None
        # A reasoning budget spent: the tokens that close the reasoning, fed instead of sampled.
        token = slot.reasoning.forced_token() if slot.reasoning is not None else None
        if token is None:
            token = slot.sampler.sample(self.context, slot.logits_at)
        else:
            slot.sampler.accept(token)
        # Once the reasoning has ended, the answer's tokens cost nothing more here; the end is not a thought.
        if slot.reasoning is not None and slot.reasoning.following and not self._model.is_end_of_generation(token):
            slot.reasoning.observe(self._model.token_piece(token, special=True))
        counted = slot.output.generated
        text, finish = slot.output.push(token)
        logprobs = ()
        # One entry per generated token; the end-of-generation token is not one.
        if run.job.top_logprobs is not None and slot.output.generated > counted:
            logprobs = (self._logprob(self._model, self.context, slot.logits_at, token, run.job.top_logprobs),)
        if text or logprobs:
            run.job.sink(TextPiece(text, slot.index, logprobs))
        if finish is None:
            slot.next_token = token
            return
        run.completion_tokens += slot.output.generated
        run.reasoning_tokens += slot.reasoning.tokens if slot.reasoning is not None else 0
        run.live -= 1
        stop_string = slot.output.stop_string
        self._free(slot)
        if run.live:
            run.job.sink(ChoiceEnded(slot.index, finish, stop_string))
        else:
            run.job.sink(
                Finished(
                    finish,
                    len(run.job.prompt_tokens),
                    run.completion_tokens,
                    slot.index,
                    run.cached_prompt_tokens,
                    stop_string,
                    run.reasoning_tokens,
                )
            )
            self._runs.remove(run)

    def _free(self, slot: Slot) -> None:
        if slot.sampler is not None:
            slot.sampler.close()
        slot.run = None
        slot.sampler = None
        slot.output = None
        slot.reasoning = None
        slot.next_token = None
        slot.logits_at = -1
        slot.last_used = time.monotonic()

    def _release(self, run: Run) -> None:
        for slot in run.slots:
            if slot.run is run:
                self._free(slot)
        if run in self._runs:
            self._runs.remove(run)

    def _fail(self, run: Run, exc: Exception) -> None:
        for slot in run.slots:
            if slot.run is not run:
                continue  # already ended, maybe serving another request now
            # What the failed step left in the cache is unknown: forget it.
            self._pool.cut(slot, 0)
        self._release(run)
        run.job.sink(Failed(exc))
