"""llama.cpp contexts: the multi-sequence context generation decodes in, and
the embedding context; each with the batch being built for its next decode."""

import llama_cpp
import numpy as np
from llama_cpp import _internals as internals

from hearth.engine.errors import EngineError
from hearth.engine.llama.model import LlamaModel

# The KV cache types a model's entry may ask for, as ggml's types.
KV_CACHE_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}


FLASH_ATTENTION = {
    "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}


def _context_params(*, n_ctx: int, n_batch: int, n_seq: int, threads: int):
    """llama.cpp context parameters with one ubatch per batch."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = n_batch
    params.n_ubatch = n_batch
    params.n_seq_max = n_seq
    params.n_threads = threads
    params.n_threads_batch = threads
    return params


class _DecodingContext:
    """A llama.cpp context and the batch being built for its next decode."""

    def __init__(self, model: LlamaModel, params, n_batch: int):
        self._ctx = internals.LlamaContext(model=model.raw, params=params, verbose=False)
        self.ctx = self._ctx.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_batch = n_batch
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self._batch)
        self._ctx.close()

    def batch_clear(self) -> None:
        self._batch.n_tokens = 0

    def batch_add(self, token: int, pos: int, seq_id: int, logits: bool = True) -> int:
        """Adds a token; returns its index in the batch (where its output will be)."""
        i = self._batch.n_tokens
        self._batch.token[i] = token
        self._batch.pos[i] = pos
        self._batch.n_seq_id[i] = 1
        self._batch.seq_id[i][0] = seq_id
        self._batch.logits[i] = logits
        self._batch.n_tokens = i + 1
        return i

    @property
    def batch_size(self) -> int:
        return self._batch.n_tokens

    def decode(self) -> int:
        """0 on success; llama.cpp's error code otherwise."""
        return llama_cpp.llama_decode(self.ctx, self._batch)


class LlamaContext(_DecodingContext):
    """One llama.cpp context holding ``n_seq`` independent sequences. Shared
    (llama.cpp's unified KV cache): they share one pool of ``n_ctx`` cells, so
    memory is set by the context, not by sequences × context, and one sequence
    may use the whole pool; the caller keeps the sum within it. Not shared:
    each has its own stream of ``n_ctx`` cells, and attention never sees
    another sequence's cells (a sequence's logits do not depend on the batch)."""

    def __init__(
        self,
        model: LlamaModel,
        *,
        n_ctx: int,
        n_seq: int,
        n_batch: int,
        threads: int,
        shared: bool = True,
        kv_cache_type: str | None = None,
        flash_attention: str = "auto",
    ):
        total = n_ctx if shared else n_ctx * n_seq
        params = _context_params(n_ctx=total, n_batch=n_batch, n_seq=n_seq, threads=threads)
        params.kv_unified = shared
        if kv_cache_type:
            # A quantized V cache needs flash attention, which "auto" turns on where the backend has it.
            params.type_k = params.type_v = KV_CACHE_TYPES[kv_cache_type]
        params.flash_attn_type = FLASH_ATTENTION[flash_attention]
        # Keep the whole SWA cache so that a cached prefix can be cut and reused.
        params.swa_full = True
        super().__init__(model, params, n_batch)
        self.n_seq = n_seq
        self.shared = shared
        # Cells in all, and the most one sequence can hold.
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx))
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self.ctx))

    def logits(self, batch_index: int, n_vocab: int) -> np.ndarray:
        """The raw logits at ``batch_index`` of the last decode (a view, valid until the next decode)."""
        pointer = llama_cpp.llama_get_logits_ith(self.ctx, batch_index)
        if not pointer:
            raise EngineError(f"no logits at batch index {batch_index}")
        return np.ctypeslib.as_array(pointer, shape=(n_vocab,))

    # Sequences.

    def seq_truncate(self, seq_id: int, keep: int) -> bool:
        """Drop cached positions >= keep; False if this cache cannot cut there."""
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, seq_id, keep, -1))

    def seq_clear(self, seq_id: int) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)

    def seq_copy(self, src: int, dst: int) -> None:
        """dst becomes a copy of src (whole sequence)."""
        llama_cpp.llama_memory_seq_rm(self.memory, dst, -1, -1)
        llama_cpp.llama_memory_seq_cp(self.memory, src, dst, -1, -1)


class LlamaEmbeddingContext(_DecodingContext):
    """A llama.cpp context that outputs hidden states instead of sampling:
    pooled per sequence by llama.cpp (``pooled``), or per token for the
    caller to pool. Sequences share one unified KV cache of ``n_ctx`` cells."""

    def __init__(self, model: LlamaModel, *, n_ctx: int, n_batch: int, n_seq: int, pooling: int | None, threads: int):
        """``pooling``: a LLAMA_POOLING_TYPE_*, or None for per-token states."""
        # Pooling and non-causal attention need a sequence's tokens in one ubatch (n_ubatch = n_batch).
        params = _context_params(n_ctx=n_ctx, n_batch=n_batch, n_seq=n_seq, threads=threads)
        params.embeddings = True
        params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_NONE if pooling is None else pooling
        # Several sequences, if asked for, share the cells.
        params.kv_unified = True
        # self.memory is None for encoder-only models (BERT-like), which keep no cache.
        super().__init__(model, params, n_batch)
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx))
        self.n_seq = n_seq
        self.n_embd = int(llama_cpp.llama_model_n_embd_out(model.raw.model))
        self.pooled = llama_cpp.llama_pooling_type(self.ctx) != llama_cpp.LLAMA_POOLING_TYPE_NONE

    @staticmethod
    def declared_pooling(model: LlamaModel) -> int | None:
        """The pooling the GGUF file declares (embedding models do), else None."""
        metadata = model.raw.metadata()
        value = metadata.get(f"{metadata.get('general.architecture', '')}.pooling_type")
        try:
            pooling = int(value) if value is not None else None
        except ValueError:
            return None
        usable = (llama_cpp.LLAMA_POOLING_TYPE_MEAN, llama_cpp.LLAMA_POOLING_TYPE_CLS, llama_cpp.LLAMA_POOLING_TYPE_LAST)
        return pooling if pooling in usable else None

    def clear(self) -> None:
        """Forget every sequence (the next inputs start from an empty cache)."""
        if self.memory:
            llama_cpp.llama_memory_clear(self.memory, True)

    def token_embeddings(self) -> np.ndarray:
        """Hidden states of the last decode's tokens, in batch order (unpooled contexts)."""
        rows = [llama_cpp.llama_get_embeddings_ith(self.ctx, i) for i in range(self.batch_size)]
        if any(not row for row in rows):
            raise EngineError("llama.cpp returned no token embeddings")
        return np.array([np.ctypeslib.as_array(row, shape=(self.n_embd,)) for row in rows], dtype=np.float32)

    def sequence_embedding(self, seq_id: int) -> np.ndarray:
        """The pooled vector of a sequence of the last decode (pooled contexts)."""
        pointer = llama_cpp.llama_get_embeddings_seq(self.ctx, seq_id)
        if not pointer:
            raise EngineError(f"llama.cpp returned no embedding for sequence {seq_id}")
        return np.ctypeslib.as_array(pointer, shape=(self.n_embd,)).astype(np.float32)
