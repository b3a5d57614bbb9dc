"""A Node.js client (@grpc/grpc-js) compiles proto/ and talks to the engine:
the contract serves other languages, not only Python."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.models import DEFAULT_MODEL_ID

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is installed by `make test`")
def test_node_grpc_client_lists_and_streams(engine):
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `make node-deps`"
    result = subprocess.run(
        ["node", str(NODE_DIR / "grpc_client.mjs"), engine.address, DEFAULT_MODEL_ID, "Monday, Tuesday, Wednesday,"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert DEFAULT_MODEL_ID in [m["id"] for m in reply["models"]]
    assert reply["pieces"] >= 3
    assert "Thursday" in reply["text"]
    assert reply["final"]["finish_reason"] == "FINISH_REASON_LENGTH"
    usage = reply["final"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (7, 8)
