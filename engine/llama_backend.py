"""Everything that touches llama_cpp directly: loading a model, its vocabulary,
creating a multi-sequence context, sampler chains, and backend facts."""

import ctypes
import logging
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import numpy as np
import psutil
from hearth.engine.errors import EngineError
from hearth.engine.requests import SamplingParams, TokenLogprob, TopLogprob
from hearth.engine.v1 import engine_pb2
from llama_cpp import _internals as internals

log = logging.getLogger(__name__)

# No token spans this many bytes on average: a longer text cannot fit the
# context, and llama.cpp's tokenizer is quadratic on some vocabularies, so such
# a text is refused (or cut) before tokenizing.
MAX_BYTES_PER_TOKEN = 64
# Tokens of history the repeat/presence/frequency penalties look at.
PENALTY_LAST_N = 64



def _quiet_llama_log() -> None:
    """llama-cpp-python prints llama.cpp's own log to stderr at or above its
    logger's level; the load-time chatter is only wanted when debugging."""
    debugging = logging.getLogger().isEnabledFor(logging.DEBUG)
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if debugging else logging.ERROR)


@dataclass(frozen=True)
class BackendInfo:
    backend: int  # engine_pb2.Backend
    supports_gpu_offload: bool
    system_info: str


def backend_info() -> BackendInfo:
    system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    supports = bool(llama_cpp.llama_supports_gpu_offload())
    if not supports:
        backend = engine_pb2.BACKEND_CPU
    elif platform.system() == "Darwin":
        backend = engine_pb2.BACKEND_METAL
    elif "CUDA" in system_info:
        backend = engine_pb2.BACKEND_CUDA
    elif "Vulkan" in system_info or "VULKAN" in system_info:
        backend = engine_pb2.BACKEND_VULKAN
    else:
        backend = engine_pb2.BACKEND_OTHER_GPU
    return BackendInfo(backend=backend, supports_gpu_offload=supports, system_info=system_info)


def llama_cpp_version() -> str:
    return llama_cpp.__version__


def default_threads() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class LlamaModel:
    """A loaded GGUF model: weights and vocabulary, no context."""

    def __init__(self, path: Path, *, gpu_offload: bool):
        _quiet_llama_log()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = -1 if gpu_offload else 0
        # Repacked CPU weights switch between GEMV and GEMM kernels with the
        # batch's size, and their sums round differently: a greedy request
        # could then answer differently alone and beside others. Without
        # repacking every token's logits are the same whatever the batch
        # (measured on 2 cores: no slower to decode, prompts as fast).
        params.use_extra_bufts = False
        self._model = internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        self.vocab = self._model.vocab

    @property
    def raw(self) -> internals.LlamaModel:
        return self._model

    def close(self) -> None:
        self._model.close()

    def size_bytes(self) -> int:
        return int(self._model.size())

    def n_vocab(self) -> int:
        return self._model.n_vocab()

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """Special tokens written in the text (chat template markers) are parsed as such."""
        return self._model.tokenize(text.encode("utf-8"), add_special, True)

    def detokenize(self, tokens: list[int]) -> str:
        """Text of in-vocabulary tokens: special tokens written out, except the
        BOS/EOS the tokenizer adds itself (so text round-trips)."""
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        size = max(64, 8 * len(tokens))
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_detokenize(self.vocab, array, len(tokens), buffer, size, True, True)
            if n >= 0:
                return buffer.raw[:n].decode("utf-8", "replace")
            size = -n

    def token_text(self, token: int) -> str:
        """The vocabulary's text for a token (e.g. '<bos>'); empty when out of range."""
        if token < 0 or token >= self.n_vocab():
            return ""
        return llama_cpp.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    def bos_text(self) -> str:
        return self.token_text(self._model.token_bos())

    def eos_text(self) -> str:
        return self.token_text(self._model.token_eos())

    def tokenize_bytes(self, text: bytes) -> list[int]:
        """Tokens of raw text, no BOS, special tokens parsed (for grammar bookkeeping)."""
        return self._model.tokenize(text, False, True)

    def token_piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes a token decodes to; special tokens rendered as nothing unless ``special``."""
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, size, 0, special)
            if n >= 0:
                return buffer.raw[:n]
            size = -n

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def single_token_id(self, text: str) -> int | None:
        """The id of a special token written as text, if it is one token."""
        tokens = self._model.tokenize(text.encode("utf-8"), False, True)
        return tokens[0] if len(tokens) == 1 else None


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
    """One llama.cpp context holding ``n_seq`` independent sequences, each with
    ``n_ctx_seq`` cells of KV cache in its own stream."""

    def __init__(self, model: LlamaModel, *, n_ctx_seq: int, n_seq: int, n_batch: int, threads: int):
        params = _context_params(n_ctx=n_ctx_seq * n_seq, n_batch=n_batch, n_seq=n_seq, threads=threads)
        # One KV stream per sequence: attention only looks at a sequence's own cells.
        params.kv_unified = False
        # Keep the whole SWA cache so that a cached prefix can be cut and reused.
        params.swa_full = True
        super().__init__(model, params, n_batch)
        self.n_seq = n_seq
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


# llama_token_data's memory layout, for building candidate arrays with numpy.
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
GRAMMAR_ROOT = b"root"


def _init_grammar(model: LlamaModel, grammar: str):
    """A llama.cpp grammar sampler, or None when the GBNF text does not parse
    (llama.cpp logs why and returns NULL)."""
    sampler = llama_cpp.llama_sampler_init_grammar(model.vocab, grammar.encode("utf-8"), GRAMMAR_ROOT)
    return sampler or None


def grammar_parses(model: LlamaModel, grammar: str) -> bool:
    """Whether llama.cpp accepts ``grammar`` (GBNF, root rule "root") for this model."""
    sampler = _init_grammar(model, grammar)
    if sampler is None:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


class _GrammarConstraint:
    """One sequence's grammar. With trigger words it is lazy: it starts
    constraining at the first trigger word, fed with the text from that word on.

    llama.cpp's own lazy grammar feeds that text through llama_grammar_accept_str,
    which throws a C++ exception (and so aborts the process) when the text does
    not fit the grammar. Here the text is tokenized and each token checked
    before it is accepted; text that does not fit drops the grammar instead."""

    def __init__(self, model: LlamaModel, grammar: str, triggers: tuple[str, ...]):
        self._model = model
        self._grammar = grammar
        self._triggers = tuple(t.encode("utf-8") for t in triggers if t)
        self._watched = bytearray()
        self._sampler = None
        self._single = llama_cpp.llama_token_data()
        self._single_array = llama_cpp.llama_token_data_array()
        self.dropped = False
        if not self._triggers:
            self._sampler = self._new_sampler()

    def _new_sampler(self):
        sampler = _init_grammar(self._model, self._grammar)
        if sampler is None:
            raise EngineError("the grammar does not parse")
        return sampler

    @property
    def active(self) -> bool:
        return self._sampler is not None

    @property
    def sampler(self):
        return self._sampler

    def allows(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next (a one-candidate apply, as
        llama.cpp's common sampler checks a sampled token)."""
        self._single.id = token
        self._single.logit = 1.0
        self._single.p = 0.0
        self._single_array.data = ctypes.pointer(self._single)
        self._single_array.size = 1
        self._single_array.selected = -1
        self._single_array.sorted = False
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(self._single_array))
        return self._single.logit != -math.inf

    def accept(self, token: int) -> None:
        """Records a sampled token. End-of-generation tokens end the sequence
        and are not fed (llama.cpp aborts on one the grammar does not expect)."""
        if self.dropped or self._model.is_end_of_generation(token):
            return
        if self._sampler is not None:
            llama_cpp.llama_sampler_accept(self._sampler, token)
            return
        self._watch(self._model.token_piece(token, special=True))

    def _watch(self, piece: bytes) -> None:
        self._watched += piece
        starts = [i for i in (self._watched.find(t) for t in self._triggers) if i >= 0]
        if not starts:
            # Keep only what could be the start of a trigger word.
            keep = max(len(t) for t in self._triggers) - 1
            del self._watched[: max(0, len(self._watched) - keep)]
            return
        constrained = bytes(self._watched[min(starts) :])
        self._watched.clear()
        self._sampler = self._new_sampler()
        tokens = self._model.tokenize_bytes(constrained)
        fits = b"".join(self._model.token_piece(t, special=True) for t in tokens) == constrained
        for token in tokens if fits else ():
            if not self.allows(token):
                fits = False
                break
            llama_cpp.llama_sampler_accept(self._sampler, token)
        if not fits:
            log.warning("output after a grammar trigger does not fit the grammar; generating free text")
            self.close()
            self.dropped = True

    def close(self) -> None:
        if self._sampler is not None:
            llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None


class Sampler:
    """One sequence's sampling: logit bias, penalties, then top-k/top-p/min-p
    and temperature; optionally a grammar.

    With a grammar the chain samples as usual and only the chosen token is
    checked against the grammar; the grammar is applied to the whole
    vocabulary (262k tokens on Gemma, slow) only when that token is rejected,
    as llama.cpp's common sampler does."""

    def __init__(self, params: SamplingParams, seed: int, model: LlamaModel):
        self._model = model
        self._n_vocab = model.n_vocab()
        self._chain = internals.LlamaSampler()
        if params.logit_bias:
            self._chain.add_logit_bias(self._n_vocab, dict(params.logit_bias))
        if params.repeat_penalty != 1.0 or params.presence_penalty or params.frequency_penalty:
            self._chain.add_penalties(
                self._n_vocab, PENALTY_LAST_N, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
            )
        if params.temperature <= 0:
            self._chain.add_greedy()
        else:
            if params.top_k > 0:
                self._chain.add_top_k(params.top_k)
            self._chain.add_top_p(params.top_p, 1)
            self._chain.add_min_p(params.min_p, 1)
            self._chain.add_temp(params.temperature)
            self._chain.add_dist(seed)
        self._grammar: _GrammarConstraint | None = None
        if params.grammar is not None:
            self._grammar = _GrammarConstraint(model, params.grammar, params.grammar_triggers)
            self._candidates = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
            self._ids = np.arange(self._n_vocab, dtype=np.int32)
            self._array = llama_cpp.llama_token_data_array()

    def sample(self, context: LlamaContext, batch_index: int) -> int:
        """Samples from the logits at ``batch_index`` of the last decode, and records the token."""
        grammar = self._grammar
        if grammar is None or not grammar.active:
            token = llama_cpp.llama_sampler_sample(self._chain.sampler, context.ctx, batch_index)
            if grammar is not None:
                grammar.accept(token)  # watches for a trigger word
            return token
        logits = context.logits(batch_index, self._n_vocab)
        token = self._apply(logits, grammar_first=False)
        if not grammar.allows(token):
            token = self._apply(logits, grammar_first=True)
            if not grammar.allows(token):
                raise EngineError("the grammar allows no token here")
        llama_cpp.llama_sampler_accept(self._chain.sampler, token)
        grammar.accept(token)
        return token

    def _apply(self, logits: np.ndarray, *, grammar_first: bool) -> int:
        candidates = self._candidates
        candidates["id"] = self._ids
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = self._array
        array.data = candidates.ctypes.data_as(llama_cpp.llama_token_data_p)
        array.size = self._n_vocab
        array.selected = -1
        array.sorted = False
        if grammar_first:
            assert self._grammar is not None
            llama_cpp.llama_sampler_apply(self._grammar.sampler, ctypes.byref(array))
        llama_cpp.llama_sampler_apply(self._chain.sampler, ctypes.byref(array))
        # Samplers may point data elsewhere (sorted copies): read through it.
        return int(array.data[array.selected].id)

    def close(self) -> None:
        if self._grammar is not None:
            self._grammar.close()
        self._chain.close()


def token_logprob(model: LlamaModel, context: LlamaContext, batch_index: int, token: int, top_n: int) -> TokenLogprob:
    """The log-probability of ``token`` under the raw logits at ``batch_index``
    of the last decode, with the ``top_n`` most likely tokens there."""
    logits = context.logits(batch_index, model.n_vocab())
    peak = float(logits.max())
    # exp in float32 (10x faster than a float64 copy), summed in float64.
    log_total = peak + float(np.log(np.exp(logits - peak).sum(dtype=np.float64)))
    top: tuple[TopLogprob, ...] = ()
    if top_n > 0:
        best = np.argpartition(logits, -top_n)[-top_n:]
        best = best[np.argsort(-logits[best], kind="stable")]
        top = tuple(
            TopLogprob(int(t), *_token_strings(model, int(t)), float(logits[t]) - log_total) for t in best
        )
    text, raw = _token_strings(model, token)
    return TokenLogprob(token, text, raw, float(logits[token]) - log_total, top)


def _token_strings(model: LlamaModel, token: int) -> tuple[str, bytes]:
    raw = model.token_piece(token, special=True)
    return raw.decode("utf-8", "replace"), raw


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
