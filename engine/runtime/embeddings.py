"""Embeddings of one loaded model, from a llama.cpp context of its own.

The generation context samples; this one outputs hidden states. It is created
on the first embedding request, serves one call at a time, and is freed with
the model.

Pooling: a model that declares one (embedding models: BERT, nomic, bge...) is
pooled by llama.cpp, a whole input per ubatch. A causal LM declares none and is
mean-pooled here, from per-token states decoded in small chunks: llama.cpp
computes the vocabulary's logits for every token of an embedding decode (about
2 MB of buffers per token on Gemma's 262k vocabulary), so one ubatch the size
of the context would take gigabytes.

Each input is decoded as its own sequence, never beside another: llama.cpp's
CPU kernels round differently with the ubatch's size (measured: up to 5e-3 per
component on Gemma 3 between a 7-token input alone and beside a 9-token one),
and a text's vector must not depend on what else was in the request."""

import asyncio
import logging
import threading
from collections.abc import Sequence

import numpy as np

from hearth.engine.domain import EmbedResult
from hearth.engine.errors import ContextLengthExceeded, EngineError, InvalidArgument
from hearth.engine.llama.context import LlamaEmbeddingContext
from hearth.engine.llama.model import MAX_BYTES_PER_TOKEN, LlamaModel
from hearth.engine.runtime.memory import resident_bytes

log = logging.getLogger(__name__)

# Causal LMs: logits and states buffers for one decode step (4-byte logits and
# compute rows per token) stay under this.
CHUNK_OUTPUT_BUDGET_BYTES = 256 * 2**20
MIN_CHUNK_TOKENS = 32


class EmbeddingCancelled(Exception):
    """The caller went away; the rest of the inputs were not computed."""


class ModelEmbedder:
    def __init__(self, model: LlamaModel, *, model_id: str, n_ctx: int, threads: int):
        self._model = model
        self._model_id = model_id
        self._n_ctx = n_ctx
        self._threads = threads
        self._context: LlamaEmbeddingContext | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Resident memory the context took (its buffers fill on the first decode).
        self.memory_bytes = 0
        # Taken on the event loop around each embed call (see EngineCore.embed).
        self.turn = asyncio.Lock()

    @property
    def n_ctx(self) -> int:
        """Most tokens of one input: the served context (llama.cpp may give the context more cells)."""
        return self._n_ctx

    def embed(
        self, inputs: Sequence[str], *, truncate: bool, cancel: threading.Event | None = None
    ) -> EmbedResult:
        """Blocking; call from a worker thread. One call at a time per model.
        Setting ``cancel`` stops it between decodes (EmbeddingCancelled)."""
        cancel = cancel or threading.Event()
        with self._lock:
            if self._closed:
                raise EngineError(f"the model '{self._model_id}' was unloaded")
            rss_before = resident_bytes() if self._context is None else None
            try:
                context = self._context or self._create_context()
                token_lists = [self._tokens(i, text, truncate) for i, text in enumerate(inputs)]
                vectors = [self._embed_one(context, tokens, cancel) for tokens in token_lists]
            finally:
                if rss_before is not None and self._context is not None:
                    self.memory_bytes = max(0, resident_bytes() - rss_before)
            return EmbedResult(vectors=vectors, prompt_tokens=sum(len(t) for t in token_lists))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._context is not None:
                self._context.close()
                self._context = None

    def _create_context(self) -> LlamaEmbeddingContext:
        pooling = LlamaEmbeddingContext.declared_pooling(self._model)
        if pooling is not None:
            n_batch = self._n_ctx
        else:
            per_token = 8 * self._model.n_vocab()
            n_batch = min(self._n_ctx, max(MIN_CHUNK_TOKENS, CHUNK_OUTPUT_BUDGET_BYTES // per_token))
        try:
            self._context = LlamaEmbeddingContext(
                self._model, n_ctx=self._n_ctx, n_batch=n_batch, n_seq=1, pooling=pooling, threads=self._threads
            )
        except Exception as exc:  # llama.cpp says only that it failed (ValueError), e.g. out of memory
            raise EngineError(f"llama.cpp could not create an embedding context for '{self._model_id}': {exc}") from exc
        log.info(
            "embedding context for %s: context %d, %s pooling, %d tokens per decode",
            self._model_id,
            self._context.n_ctx,
            "the model's" if self._context.pooled else "mean",
            n_batch,
        )
        return self._context

    def _tokens(self, index: int, text: str, truncate: bool) -> list[int]:
        n_ctx = self.n_ctx
        raw = text.encode("utf-8", "replace")
        if len(raw) > n_ctx * MAX_BYTES_PER_TOKEN:
            if not truncate:
                raise self._too_long(index, None)
            text = raw[: n_ctx * MAX_BYTES_PER_TOKEN].decode("utf-8", "ignore")
        tokens = self._model.tokenize(text, add_special=True)
        if len(tokens) > n_ctx:
            if not truncate:
                raise self._too_long(index, len(tokens))
            tokens = tokens[:n_ctx]
        if not tokens:
            raise InvalidArgument(f"'input[{index}]' has no tokens", param="input")
        return tokens

    def _too_long(self, index: int, n_tokens: int | None) -> ContextLengthExceeded:
        size = f"resulted in {n_tokens} tokens" if n_tokens is not None else "is far longer"
        return ContextLengthExceeded(
            f"This model's maximum context length is {self.n_ctx} tokens. However, input[{index}] {size}. "
            "Please reduce the length of the input, or set truncate.",
            param="input",
            model=self._model_id,
        )

    def _embed_one(self, context: LlamaEmbeddingContext, tokens: list[int], cancel: threading.Event) -> np.ndarray:
        context.clear()
        try:
            if cancel.is_set():
                raise EmbeddingCancelled()
            if context.pooled:
                # The whole input in one decode: it fits n_ctx == n_batch.
                context.batch_clear()
                for pos, token in enumerate(tokens):
                    context.batch_add(token, pos, 0)
                self._decode(context)
                return _normalised(context.sequence_embedding(0))
            total = np.zeros(context.n_embd, dtype=np.float64)
            for start in range(0, len(tokens), context.n_batch):
                if cancel.is_set():
                    raise EmbeddingCancelled()
                context.batch_clear()
                for pos in range(start, min(start + context.n_batch, len(tokens))):
                    context.batch_add(tokens[pos], pos, 0)
                self._decode(context)
                total += context.token_embeddings().sum(axis=0, dtype=np.float64)
            return _normalised(total / len(tokens))
        finally:
            context.clear()

    def _decode(self, context: LlamaEmbeddingContext) -> None:
        code = context.decode()
        if code != 0:
            raise EngineError(f"llama.cpp could not compute embeddings (llama_decode returned {code})")


def _normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)
