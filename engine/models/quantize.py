"""Quantizing a model with llama.cpp's own quantizer: which types a source
can become (``check_quantize``), and the quantizer itself, run as a process
of its own (``python -m hearth.engine.models.quantize SRC DST TYPE``) so that
a caller can show its progress (llama.cpp logs "[  12/ 290] tensor ..." per
tensor on stderr) and stop it."""

import argparse
import re
import sys
from pathlib import Path

from hearth.engine.errors import InvalidArgument

# Types a source of full precision can become, by the names model cards use.
TYPES = (
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_1",
    "Q4_0",
    "Q3_K_L",
    "Q3_K_M",
    "Q3_K_S",
    "Q2_K",
)
# Types llama.cpp makes well only with an importance matrix, which Hearth does not compute.
NEEDS_IMATRIX = ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M")
NEEDS_IMATRIX += ("IQ4_NL", "IQ4_XS", "Q2_K_S")
FULL_PRECISION = ("F32", "F16", "BF16")
# llama.cpp's per-tensor log line: "[  12/ 290] blk.0.attn_k.weight - ..."
PROGRESS = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


def check_quantize(source_type: str, target: str, *, allow_requantize: bool) -> str:
    """The target type's name, upper-cased, if a model of ``source_type`` may
    become it; InvalidArgument saying why not otherwise."""
    name = target.upper()
    if name in NEEDS_IMATRIX:
        raise InvalidArgument(
            f"{name} needs an importance matrix (llama.cpp's llama-imatrix) to keep quality, which Hearth does "
            f"not compute; choose one of {', '.join(TYPES)}",
            param="type",
        )
    if name not in TYPES:
        raise InvalidArgument(f"Unknown quantization type '{target}'; choose one of {', '.join(TYPES)}", param="type")
    source = source_type.upper()
    if name == source:
        raise InvalidArgument(f"The model is {source} already", param="type")
    if source not in FULL_PRECISION:
        if name in FULL_PRECISION:
            raise InvalidArgument(
                f"A {source} model cannot become {name}: quantization lost the precision for good", param="type"
            )
        if not allow_requantize:
            raise InvalidArgument(
                f"The model is quantized already ({source}); quantizing it again loses more quality than "
                "quantizing its F16/F32 original. Pass --allow-requantize to do it anyway.",
                param="type",
            )
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hearth.engine.models.quantize")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("type", choices=TYPES)
    parser.add_argument("--allow-requantize", action="store_true")
    args = parser.parse_args(argv)
    from hearth.engine.llama.quantize import quantize_file

    try:
        quantize_file(args.source, args.target, args.type, allow_requantize=args.allow_requantize)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
