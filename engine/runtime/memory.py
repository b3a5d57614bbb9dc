"""How much memory a model will take, and how much the loaded models may take
together.

The estimate is computed from the file alone (its size plus the KV cache its
shape implies), never measured: the same model is always accounted the same
number, so eviction decisions are reproducible."""

import logging

import psutil

from hearth.engine.llama.backend import accelerator_memory_bytes
from hearth.engine.models.gguf_info import GGUFInfo
from hearth.engine.models.registry import ModelRecord
from hearth.settings.engine import EngineSettings

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
# Bytes per K or V value of each KV cache type (f16 unless the model's entry says otherwise;
# q8_0 and q4_0 hold blocks of 32 values in 34 and 18 bytes).
KV_BYTES_PER_VALUE = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# Attention scores of one batch are f32.
SCORE_BYTES = 4

# With no context size set, a model is served with its trained context, halved
# while it does not fit the memory budget, but not below this.
MIN_DEFAULT_CONTEXT = 4096


def _kv_bytes_per_cell(info: GGUFInfo | None, kv_cache_type: str = "f16") -> int:
    if info is None or not info.block_count:
        return 0
    head_count = info.head_count or 1
    head_count_kv = info.head_count_kv or head_count
    head_dim = info.embedding_length // head_count if info.embedding_length else 0
    key_width = (info.key_length or head_dim) * head_count_kv
    value_width = (info.value_length or head_dim) * head_count_kv
    return int(info.block_count * (key_width + value_width) * KV_BYTES_PER_VALUE[kv_cache_type])


def _compute_bytes(info: GGUFInfo | None, cells: int, batch_size: int) -> int:
    head_count = info.head_count if info and info.head_count else 1
    return head_count * cells * batch_size * SCORE_BYTES + FIXED_OVERHEAD_BYTES


def kv_cache_bytes(record: ModelRecord, streams: int = 1, kv_cache_type: str = "f16") -> int:
    """The K and V cache of ``streams`` caches of the model's served context
    (one its slots share, or one per slot), in ``kv_cache_type``."""
    return streams * record.context_window * _kv_bytes_per_cell(record.info, kv_cache_type)


def compute_buffer_bytes(record: ModelRecord, batch_size: int) -> int:
    """Attention scores of one batch against the whole pool, plus fixed scratch."""
    return _compute_bytes(record.info, record.context_window, batch_size)


def estimate_model_bytes(record: ModelRecord, *, batch_size: int, streams: int = 1, kv_cache_type: str = "f16") -> int:
    """Memory the model takes once loaded: weights (the file), KV cache, compute buffers."""
    kv = kv_cache_bytes(record, streams, kv_cache_type)
    return record.file_size + kv + compute_buffer_bytes(record, batch_size)


def slots_for(record: ModelRecord, settings: EngineSettings) -> int:
    """Sequences the model decodes at once: its entry's, else the engine's."""
    return record.load.parallel or settings.parallel


def kv_cache_type_for(record: ModelRecord, settings: EngineSettings) -> str:
    """The model's KV cache type: its entry's, else the engine's."""
    return record.load.kv_cache_type or settings.kv_cache_type


def _streams_for(record: ModelRecord, settings: EngineSettings) -> int:
    return 1 if settings.kv_pool == "shared" else slots_for(record, settings)


def kv_bytes_for(record: ModelRecord, settings: EngineSettings) -> int:
    """The KV cache the model holds loaded with its own load settings over the engine's."""
    return kv_cache_bytes(record, _streams_for(record, settings), kv_cache_type_for(record, settings))


def estimate_for(record: ModelRecord, settings: EngineSettings) -> int:
    """The estimate with the model's own load settings over the engine's."""
    return estimate_model_bytes(
        record,
        batch_size=settings.batch_size,
        streams=_streams_for(record, settings),
        kv_cache_type=kv_cache_type_for(record, settings),
    )


def fitting_context(
    info: GGUFInfo | None, file_size: int, trained: int, *, budget: int, batch_size: int, streams: int = 1
) -> int:
    """The context a model is served with by default: its trained one, halved
    while weights, KV pool and compute buffers would exceed ``budget`` (not
    below MIN_DEFAULT_CONTEXT)."""
    per_cell = streams * _kv_bytes_per_cell(info)
    cells = trained
    while cells > MIN_DEFAULT_CONTEXT:
        if file_size + cells * per_cell + _compute_bytes(info, cells, batch_size) <= budget:
            break
        cells = max(MIN_DEFAULT_CONTEXT, cells // 2)
    return cells


def default_memory_budget(gpu_offload: bool) -> int:
    """A share of the GPUs' memory where layers are offloaded to them, else of RAM."""
    if gpu_offload:
        gpu_total = accelerator_memory_bytes()
        if gpu_total:
            return int(gpu_total * GPU_BUDGET_SHARE)
    return int(psutil.virtual_memory().total * RAM_BUDGET_SHARE)
