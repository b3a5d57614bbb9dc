"""The committed gRPC stubs match proto/, and importing them needs no llama_cpp."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_committed_stubs_are_current():
    result = subprocess.run([sys.executable, "tools/gen_protos.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_clients_import_without_llama_cpp():
    code = (
        "import sys\n"
        "import hearth.engine.v1.engine_pb2_grpc, hearth.adapter.app, hearth.cli.listing, hearth.cli.supervisor\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

