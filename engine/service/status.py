"""GetStatus: the backend, the loaded models and their slots, memory."""

import time

import psutil

from hearth import __version__
from hearth.engine.llama.backend import BackendInfo, llama_cpp_version
from hearth.engine.runtime.memory import kv_bytes_for, resident_bytes
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.engine.service.views import LoadedModelView, StatusView
from hearth.settings.engine import EngineSettings


def engine_status(
    settings: EngineSettings, backend: BackendInfo, gpu_offload: bool, runtime: ModelRuntime, started: float
) -> StatusView:
    now = time.monotonic()
    memory = psutil.virtual_memory()
    return StatusView(
        backend=backend,
        gpu_offload=gpu_offload,
        engine_version=__version__,
        llama_cpp_python_version=llama_cpp_version(),
        loaded=[
            LoadedModelView(
                id=m.record.id,
                memory_bytes=m.memory_bytes,
                active_requests=m.scheduler.pending,
                idle_seconds=0.0 if m.active else now - m.last_used,
                slots=m.scheduler.slots,
                busy_slots=m.scheduler.busy_slots,
                queued_requests=m.scheduler.queued,
                expires_in=m.expires_in(now),
                kv_cells=m.scheduler.pool_cells,
                kv_cells_used=m.scheduler.used_cells,
                kv_bytes=kv_bytes_for(m.record, settings),
            )
            for m in runtime.loaded()
        ],
        process_memory=resident_bytes(),
        system_memory_total=memory.total,
        system_memory_available=memory.available,
        uptime=now - started,
        models_dir=str(settings.models_dir),
        keep_alive=settings.keep_alive,
        memory_budget=runtime.memory_budget,
    )
