"""Everything that touches llama_cpp directly: loading a model, its vocabulary,
creating a multi-sequence context, sampler chains, and backend facts."""

import ctypes
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import psutil
from llama_cpp import _internals as internals

from hearth.engine.requests import SamplingParams
from hearth.engine.v1 import engine_pb2

log = logging.getLogger(__name__)

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

    def token_text(self, token: int) -> str:
        """The vocabulary's text for a token (e.g. '<bos>'); empty when out of range."""
        if token < 0 or token >= self.n_vocab():
            return ""
        return llama_cpp.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    def bos_text(self) -> str:
        return self.token_text(self._model.token_bos())

    def eos_text(self) -> str:
        return self.token_text(self._model.token_eos())

    def token_piece(self, token: int) -> bytes:
        """The bytes a token decodes to, special tokens rendered as nothing."""
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, size, 0, False)
            if n >= 0:
                return buffer.raw[:n]
            size = -n

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def single_token_id(self, text: str) -> int | None:
        """The id of a special token written as text, if it is one token."""
        tokens = self._model.tokenize(text.encode("utf-8"), False, True)
        return tokens[0] if len(tokens) == 1 else None


class LlamaContext:
    """One llama.cpp context holding ``n_seq`` independent sequences, each with
    ``n_ctx_seq`` cells of KV cache in its own stream."""

    def __init__(self, model: LlamaModel, *, n_ctx_seq: int, n_seq: int, n_batch: int, threads: int):
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = threads
        params.n_threads_batch = threads
        # One KV stream per sequence: attention only looks at a sequence's own cells.
        params.kv_unified = False
        # Keep the whole SWA cache so that a cached prefix can be cut and reused.
        params.swa_full = True
        self._ctx = internals.LlamaContext(model=model.raw, params=params, verbose=False)
        self.ctx = self._ctx.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_seq = n_seq
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self.ctx))
        self.n_batch = n_batch
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self._batch)
        self._ctx.close()

    # The batch being built for the next decode step.

    def batch_clear(self) -> None:
        self._batch.n_tokens = 0

    def batch_add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        """Adds a token; returns its index in the batch (where its logits will be)."""
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


class Sampler:
    """One sequence's sampler chain: penalties, then top-k/top-p/min-p and temperature."""

    def __init__(self, params: SamplingParams, seed: int, n_vocab: int):
        self._chain = internals.LlamaSampler()
        if params.repeat_penalty != 1.0 or params.presence_penalty or params.frequency_penalty:
            self._chain.add_penalties(
                n_vocab, PENALTY_LAST_N, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
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

    def sample(self, context: LlamaContext, batch_index: int) -> int:
        """Samples from the logits at ``batch_index`` of the last decode, and records the token."""
        return llama_cpp.llama_sampler_sample(self._chain.sampler, context.ctx, batch_index)

    def close(self) -> None:
        self._chain.close()
