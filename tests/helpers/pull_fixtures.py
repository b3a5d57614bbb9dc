"""The Hugging Face stand-in, engine and helpers the pull tests share."""

import hashlib
from pathlib import Path

import grpc
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.hub_standin import HubFile, HubRepo, HubStandIn
from tests.helpers.servers import EngineProcess

GATED_TOKEN = "hf_standin_token"
PHASE_ORDER = [pb.PULL_PHASE_RESOLVING, pb.PULL_PHASE_DOWNLOADING, pb.PULL_PHASE_VERIFYING, pb.PULL_PHASE_DONE]


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory) -> dict[str, bytes]:
    """Distinct tiny models standing in for a repository's quantizations."""
    folder = tmp_path_factory.mktemp("hub-files")
    return {name: write_tiny_llama(folder / f"{name}.gguf", seed=seed).read_bytes() for seed, name in enumerate("abc")}


@pytest.fixture(scope="module")
def hub(gguf_bytes):
    a, b, c = gguf_bytes["a"], gguf_bytes["b"], gguf_bytes["c"]
    with HubStandIn() as standin:
        for repo in (
            HubRepo("hearth-test/tiny-GGUF", {"tiny-Q4_K_M.gguf": HubFile(a), "tiny-Q8_0.gguf": HubFile(b)}),
            HubRepo("hearth-test/slow-GGUF", {"slow-Q4_K_M.gguf": HubFile(c, bytes_per_second=200_000)}),
            HubRepo("hearth-test/cancel-GGUF", {"cancel-Q4_K_M.gguf": HubFile(a, bytes_per_second=40_000)}),
            HubRepo("hearth-test/cli-cancel-GGUF", {"clicancel-Q4_K_M.gguf": HubFile(a, bytes_per_second=40_000)}),
            HubRepo("hearth-test/flaky-GGUF", {"flaky-Q4_K_M.gguf": HubFile(b, drop_after=100_000)}),
            HubRepo("hearth-test/badhash-GGUF", {"badhash-Q4_K_M.gguf": HubFile(c, advertised_sha256="0" * 64)}),
            HubRepo("hearth-test/gated-GGUF", {"gated-Q4_K_M.gguf": HubFile(a)}, token=GATED_TOKEN),
            HubRepo("hearth-test/cli-GGUF", {"cli-Q4_K_M.gguf": HubFile(b)}),
            HubRepo("hearth-test/cli-engine-GGUF", {"clieng-Q4_K_M.gguf": HubFile(c)}),
            HubRepo("hearth-test/desktop-GGUF", {"desktop-Q4_K_M.gguf": HubFile(a, bytes_per_second=200_000)}),
            HubRepo("hearth-test/window-GGUF", {"window-Q4_K_M.gguf": HubFile(b, bytes_per_second=200_000)}),
        ):
            standin.add_repo(repo)
        yield standin


def hub_env(hub: HubStandIn, hf_home: Path, **extra: str) -> dict[str, str]:
    env = dict(
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        # Progress reports and cancellation checks every 16 KiB, so small files show them.
        LLM_PULL_CHUNK_BYTES="16384",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-home")


@pytest.fixture(scope="module")
def pull_models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pulled-models")


@pytest.fixture(scope="module")
def pull_engine(hub, hf_home, pull_models_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pull-engine")
    process = EngineProcess(
        pull_models_dir, folder / "config.json", folder / "engine.log", **hub_env(hub, hf_home)
    )
    yield process
    process.stop()


@pytest.fixture
def stub(pull_engine):
    with grpc.insecure_channel(pull_engine.address) as channel:
        yield engine_pb2_grpc.EngineStub(channel)


def pull(stub, reference: str, revision: str = "") -> list[pb.PullModelResponse]:
    return list(stub.PullModel(pb.PullModelRequest(reference=reference, revision=revision), timeout=120))


def pull_error(stub, reference: str, revision: str = ""):
    with pytest.raises(grpc.RpcError) as raised:
        pull(stub, reference, revision)
    return read_rpc_error(raised.value)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder: Path, stem: str) -> list[str]:
    """Files a pull of ``stem`` may have left: the model or a dot-partial."""
    return sorted(p.name for p in folder.iterdir() if stem in p.name)
