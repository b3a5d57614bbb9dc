"""Regenerate the committed Python gRPC stubs from proto/.

    python tools/gen_protos.py          # write engine/v1/*_pb2*.py(i)
    python tools/gen_protos.py --check  # exit 1 if the committed stubs are stale

The proto package hearth.engine.v1 maps to the Python package hearth.engine.v1,
which lives in engine/v1/ (pyproject maps hearth.engine to engine/).
"""

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_FILES = ["hearth/engine/v1/engine.proto"]
# Generated path (relative to the protoc output root) -> committed path.
OUTPUT_DIR = {"hearth/engine/v1": ROOT / "engine" / "v1"}


def generate(into: Path) -> list[Path]:
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={into}",
        f"--pyi_out={into}",
        f"--grpc_python_out={into}",
        *PROTO_FILES,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in into.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the committed stubs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        stale = []
        for generated in generate(tmp_root):
            relative = generated.relative_to(tmp_root)
            target = OUTPUT_DIR[relative.parent.as_posix()] / relative.name
            if args.check:
                if not target.exists() or not filecmp.cmp(generated, target, shallow=False):
                    stale.append(str(target.relative_to(ROOT)))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(generated, target)
        for package_dir in OUTPUT_DIR.values():
            (package_dir / "__init__.py").touch()
    if stale:
        print("stale generated stubs (run `python tools/gen_protos.py`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
