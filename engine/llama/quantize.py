"""llama.cpp's model quantizer (llama_model_quantize), as one blocking call."""

import os
from pathlib import Path

import llama_cpp


def quantize_file(source: Path, target: Path, type_name: str, *, allow_requantize: bool = False) -> None:
    """Writes ``target`` from ``source`` as ``type_name`` (a LLAMA_FTYPE_MOSTLY_*
    suffix: "Q4_K_M", "F16"). llama.cpp logs each tensor on stderr as it goes."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{type_name}")
    params.nthread = os.cpu_count() or 1
    params.allow_requantize = allow_requantize
    if llama_cpp.llama_model_quantize(os.fsencode(source), os.fsencode(target), params) != 0:
        raise RuntimeError("llama.cpp could not quantize the model (its log says why)")
