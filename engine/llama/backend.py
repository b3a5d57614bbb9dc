"""Backend facts of this llama.cpp build, and loading its backends.

llama.cpp is built with its backends as loadable libraries (GGML_BACKEND_DL),
the CPU one in several variants, one per instruction-set level
(GGML_CPU_ALL_VARIANTS): the best variant this CPU can run is chosen when the
backends are loaded, so one build runs on any x86-64 CPU and a wheel built on
one machine never dies with SIGILL on another."""

import ctypes
import enum
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import psutil
from llama_cpp import _ggml

log = logging.getLogger(__name__)


class Backend(enum.Enum):
    CPU = "CPU"
    METAL = "METAL"
    CUDA = "CUDA"
    VULKAN = "VULKAN"
    OTHER_GPU = "OTHER_GPU"


class BackendUnavailable(Exception):
    """This llama.cpp build has no backend that can run on this machine."""


def quiet_llama_log() -> None:
    """llama-cpp-python prints llama.cpp's own log to stderr at or above its
    logger's level; the load-time chatter is only wanted when debugging."""
    debugging = logging.getLogger().isEnabledFor(logging.DEBUG)
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if debugging else logging.ERROR)


def _library_dir() -> Path:
    return Path(llama_cpp.__file__).resolve().parent / "lib"


_libggml_handle: ctypes.CDLL | None = None


def libggml() -> ctypes.CDLL:
    """The ggml library llama.cpp itself uses. The wheel ships libggml.so and
    libggml.so.0 as two files; libllama links the second, and each copy has
    its own backend registry, so calls must go to that one."""
    global _libggml_handle
    if _libggml_handle is None:
        linked = _library_dir() / "libggml.so.0"
        _libggml_handle = ctypes.CDLL(str(linked)) if linked.exists() else _ggml.libggml
    return _libggml_handle


_loaded = False


def load_backends() -> None:
    """Loads the backends shipped beside llama.cpp's library, once, before any
    other llama.cpp call (which would look for them only next to the Python
    executable). A build with the backends linked in has nothing to load."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    # Looking through every backend's possible places logs a line each.
    quiet_llama_log()
    lib = libggml()
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    if not hasattr(lib, "ggml_backend_load_all_from_path"):
        return
    lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load_all_from_path.restype = None
    if lib.ggml_backend_reg_count() == 0:
        lib.ggml_backend_load_all_from_path(os.fsencode(_library_dir()))
    llama_cpp.llama_backend_init()


def registered_backends() -> list[str]:
    """Names of the backends llama.cpp has (e.g. ["CPU"], ["CUDA", "CPU"])."""
    load_backends()
    lib = libggml()
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_get.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_reg_name.restype = ctypes.c_char_p
    lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    return [
        lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i)).decode("utf-8", "replace")
        for i in range(lib.ggml_backend_reg_count())
    ]


def cpu_variant() -> str:
    """The CPU backend library this process loaded (e.g. "libggml-cpu-icelake.so"),
    or "" when the CPU backend is linked in."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                name = line.rsplit("/", 1)[-1].strip()
                if name.startswith("libggml-cpu"):
                    return name
    except OSError:
        pass
    return ""


@dataclass(frozen=True)
class BackendInfo:
    backend: Backend
    supports_gpu_offload: bool
    system_info: str


def backend_info() -> BackendInfo:
    """What this build runs on; BackendUnavailable when it has no usable CPU backend."""
    load_backends()
    if "CPU" not in registered_backends():
        raise BackendUnavailable(
            f"llama.cpp found no CPU backend it can run on this processor in {_library_dir()}: "
            "reinstall llama-cpp-python with `make install` (it builds one for every x86-64 level)"
        )
    system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    supports = bool(llama_cpp.llama_supports_gpu_offload())
    if not supports:
        backend = Backend.CPU
    elif platform.system() == "Darwin":
        backend = Backend.METAL
    elif "CUDA" in system_info:
        backend = Backend.CUDA
    elif "Vulkan" in system_info or "VULKAN" in system_info:
        backend = Backend.VULKAN
    else:
        backend = Backend.OTHER_GPU
    return BackendInfo(backend=backend, supports_gpu_offload=supports, system_info=system_info)


def accelerator_memory_bytes() -> int:
    """Total memory of the GPUs llama.cpp can offload to (0 when none).

    llama-cpp-python has no binding for ggml's device list, so the calls go
    through ctypes to the ggml library it ships."""
    load_backends()
    try:
        lib = libggml()
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_memory.restype = None
        lib.ggml_backend_dev_memory.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_size_t),
        ]
    except (ImportError, OSError, AttributeError) as exc:
        log.debug("cannot list ggml devices: %s", exc)
        return 0
    gpu_types = (1, 2)  # GGML_BACKEND_DEVICE_TYPE_GPU, GGML_BACKEND_DEVICE_TYPE_IGPU
    total = 0
    for index in range(lib.ggml_backend_dev_count()):
        device = lib.ggml_backend_dev_get(index)
        if device and lib.ggml_backend_dev_type(device) in gpu_types:
            free, device_total = ctypes.c_size_t(), ctypes.c_size_t()
            lib.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(device_total))
            total += device_total.value
    return total


def llama_cpp_version() -> str:
    return llama_cpp.__version__


def default_threads() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1
