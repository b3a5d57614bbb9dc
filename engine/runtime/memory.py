"""How much memory a model will take, and how much the loaded models may take
together.

The estimate is computed from the file alone (its size plus the KV cache its
shape implies), never measured: the same model is always accounted the same
number, so eviction decisions are reproducible."""

import logging

import psutil

from hearth.engine.llama.backend import accelerator_memory_bytes
from hearth.engine.models.registry import ModelRecord

log = logging.getLogger(__name__)


def resident_bytes() -> int:
    """This process's resident memory (llama.cpp does not report its buffers:
    what the process grows by while making a context is what the context takes)."""
    return psutil.Process().memory_info().rss

# Share of memory the loaded models may take by default: the rest is left to
# the system, the engine process itself and other programs.
RAM_BUDGET_SHARE = 0.75
GPU_BUDGET_SHARE = 0.90
# Graph, logits and scratch buffers llama.cpp allocates beside the weights
# and the KV cache, beyond the attention scores accounted below.
FIXED_OVERHEAD_BYTES = 32 * 2**20
# The KV cache is kept in f16.
KV_BYTES_PER_VALUE = 2
# Attention scores of one batch are f32.
SCORE_BYTES = 4

def kv_cache_bytes(record: ModelRecord, parallel: int) -> int:
    """The f16 K and V cache for ``parallel`` sequences of the model's full context."""
    info = record.info
    if info is None or not info.block_count:
        return 0
    head_count = info.head_count or 1
    head_count_kv = info.head_count_kv or head_count
    head_dim = info.embedding_length // head_count if info.embedding_length else 0
    key_width = (info.key_length or head_dim) * head_count_kv
    value_width = (info.value_length or head_dim) * head_count_kv
    cells = record.context_window * parallel
    return info.block_count * cells * (key_width + value_width) * KV_BYTES_PER_VALUE


def compute_buffer_bytes(record: ModelRecord, batch_size: int) -> int:
    """Attention scores of one batch against one sequence's context, plus fixed scratch."""
    info = record.info
    head_count = info.head_count if info and info.head_count else 1
    return head_count * record.context_window * batch_size * SCORE_BYTES + FIXED_OVERHEAD_BYTES


def estimate_model_bytes(record: ModelRecord, *, parallel: int, batch_size: int) -> int:
    """Memory the model takes once loaded: weights (the file), KV cache, compute buffers."""
    return record.file_size + kv_cache_bytes(record, parallel) + compute_buffer_bytes(record, batch_size)


def default_memory_budget(gpu_offload: bool) -> int:
    """A share of the GPUs' memory where layers are offloaded to them, else of RAM."""
    if gpu_offload:
        gpu_total = accelerator_memory_bytes()
        if gpu_total:
            return int(gpu_total * GPU_BUDGET_SHARE)
    return int(psutil.virtual_memory().total * RAM_BUDGET_SHARE)
