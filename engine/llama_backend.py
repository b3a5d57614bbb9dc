"""Everything that touches llama_cpp directly: loading, tokens, backend facts."""

import ctypes
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import psutil

from hearth.engine.v1 import engine_pb2

log = logging.getLogger(__name__)


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


def default_threads() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def load_llama(path: Path, *, n_ctx: int, gpu_offload: bool, threads: int, batch_size: int) -> llama_cpp.Llama:
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=min(batch_size, n_ctx),
        n_gpu_layers=-1 if gpu_offload else 0,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


def token_text(llm: llama_cpp.Llama, token: int) -> str:
    """The vocabulary's text for a token (e.g. '<s>'); empty when out of range."""
    if token < 0 or token >= llm.n_vocab():
        return ""
    return llama_cpp.llama_vocab_get_text(llm._model.vocab, token).decode("utf-8", "replace")


def token_piece(llm: llama_cpp.Llama, token: int) -> bytes:
    """The bytes a token decodes to, special tokens rendered as nothing."""
    size = 64
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buffer, size, 0, False)
        if n >= 0:
            return buffer.raw[:n]
        size = -n


def is_end_of_generation(llm: llama_cpp.Llama, token: int) -> bool:
    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))


def single_token_id(llm: llama_cpp.Llama, text: str) -> int | None:
    """The id of a special token written as text, if it is one token."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    return tokens[0] if len(tokens) == 1 else None


def memory_bytes(llm: llama_cpp.Llama) -> int:
    """Weights plus the context's state (KV cache) as llama.cpp counts them."""
    return int(llm._model.size()) + int(llama_cpp.llama_state_get_size(llm._ctx.ctx))
