"""Pulling GGUF models from Hugging Face: a real `hearth engine` and real
`hearth pull` processes downloading through huggingface_hub from a local
stand-in of the hub (tests/hub_standin.py), never the network."""

import hashlib
import queue
import shutil
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from gguf_factory import write_tiny_llama
from hub_standin import HubFile, HubRepo, HubStandIn
from servers import HEARTH, EngineProcess, base_env, free_port

from hearth.engine.errors import InvalidArgument, ModelNotFound, PullFailed
from hearth.engine.pull import PullReference, RemoteFile, parse_reference, select_file
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error

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


# Choosing the file: pure functions, no hub needed.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("owner/name", PullReference("owner/name")),
        ("owner/name:q4_k_m", PullReference("owner/name", quant="q4_k_m")),
        ("hf.co/owner/name:Q8_0", PullReference("owner/name", quant="Q8_0")),
        ("huggingface.co/owner/name:latest", PullReference("owner/name")),
        ("https://huggingface.co/owner/name", PullReference("owner/name")),
        ("owner/name/sub/model-Q4_K_M.gguf", PullReference("owner/name", filename="sub/model-Q4_K_M.gguf")),
    ],
)
def test_references_in_every_accepted_form(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["", "name-only", "owner/../x", "owner/name/README.md", "a/b:Q4 K", "a/b/x.gguf:Q8_0"])
def test_malformed_references_are_refused_naming_the_parameter(text):
    with pytest.raises(InvalidArgument) as raised:
        parse_reference(text)
    assert raised.value.param == "reference"


def files(*names: str) -> list[RemoteFile]:
    return [RemoteFile(name, 1, "") for name in names]


def test_default_file_is_the_only_gguf_or_the_q4_k_m_one():
    assert select_file(PullReference("o/n"), files("README.md", "m-Q8_0.gguf")).name == "m-Q8_0.gguf"
    listing = files("m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "mmproj-m-f16.gguf")
    assert select_file(PullReference("o/n"), listing).name == "m-Q4_K_M.gguf"
    # Q4_K names a quantization of its own, not a prefix of Q4_K_M.
    with pytest.raises(ModelNotFound, match="no Q4_K file"):
        select_file(PullReference("o/n", quant="Q4_K"), listing)
    with pytest.raises(InvalidArgument, match="m-Q8_0.gguf, m-Q5_K_M.gguf"):
        select_file(PullReference("o/n"), files("m-Q8_0.gguf", "m-Q5_K_M.gguf"))
    with pytest.raises(ModelNotFound, match="no .gguf file"):
        select_file(PullReference("o/n"), files("model.safetensors"))


def test_split_gguf_files_are_refused_as_unsupported():
    parts = files("big-Q4_K_M-00001-of-00002.gguf", "big-Q4_K_M-00002-of-00002.gguf")
    with pytest.raises(PullFailed, match="split into several files"):
        select_file(PullReference("o/n", quant="Q4_K_M"), parts)


# Through the engine's PullModel.


def test_pull_streams_progress_then_serves_the_verified_model(stub, hub, gguf_bytes, pull_models_dir):
    content = gguf_bytes["c"]
    messages = pull(stub, "hearth-test/slow-GGUF")

    phases = [m.phase for m in messages]
    assert phases == sorted(phases, key=PHASE_ORDER.index), phases
    assert phases[0] == pb.PULL_PHASE_RESOLVING and phases[-1] == pb.PULL_PHASE_DONE
    downloading = [m for m in messages if m.phase == pb.PULL_PHASE_DOWNLOADING]
    completed = [m.completed_bytes for m in downloading]
    assert completed == sorted(completed)
    assert len(set(completed)) >= 3, completed  # it moved while it downloaded
    assert completed[-1] == len(content)
    assert {m.total_bytes for m in downloading} == {len(content)}
    assert {m.file for m in downloading} == {"slow-Q4_K_M.gguf"}
    assert {m.sha256 for m in messages[1:]} == {sha256(content)}

    model = messages[-1].model
    assert model.id == "slow-Q4_K_M"
    assert model.architecture == "llama"
    assert model.state == pb.MODEL_STATE_UNLOADED
    installed = pull_models_dir / "slow-Q4_K_M.gguf"
    assert Path(model.path) == installed
    assert sha256(installed.read_bytes()) == sha256(content)
    assert leftovers(pull_models_dir, "slow") == ["slow-Q4_K_M.gguf"]
    assert "slow-Q4_K_M" in {m.id for m in stub.ListModels(pb.ListModelsRequest()).models}

    replies = list(
        stub.Generate(
            pb.GenerateRequest(
                model="slow-Q4_K_M", messages=[pb.ChatMessage(role="user", content="Hi")], max_tokens=4, temperature=0
            ),
            timeout=120,
        )
    )
    assert replies[-1].usage.completion_tokens >= 1


def test_quant_and_file_name_pick_the_file_and_a_second_pull_downloads_nothing(stub, hub, gguf_bytes, pull_models_dir):
    q8 = pull(stub, "hf.co/hearth-test/tiny-GGUF:q8_0")[-1].model
    assert q8.id == "tiny-Q8_0"
    assert sha256(Path(q8.path).read_bytes()) == sha256(gguf_bytes["b"])
    q4 = pull(stub, "hearth-test/tiny-GGUF/tiny-Q4_K_M.gguf")[-1].model
    assert q4.id == "tiny-Q4_K_M"
    assert sha256(Path(q4.path).read_bytes()) == sha256(gguf_bytes["a"])

    downloads = len(hub.requests_for("tiny-Q4_K_M.gguf"))
    # Without a quant the repository's Q4_K_M file is meant; it is already here.
    again = pull(stub, "hearth-test/tiny-GGUF")
    assert again[-1].model.id == "tiny-Q4_K_M"
    assert pb.PULL_PHASE_DOWNLOADING not in {m.phase for m in again}
    assert len(hub.requests_for("tiny-Q4_K_M.gguf")) == downloads
    # A commit names a revision as well as a branch does.
    commit = hub.repos["hearth-test/tiny-GGUF"].commit
    assert pull(stub, "hearth-test/tiny-GGUF:Q8_0", revision=commit)[-1].model.id == "tiny-Q8_0"


def test_the_models_folder_holds_the_only_copy(stub, hub, gguf_bytes, pull_models_dir, hf_home):
    model = pull(stub, "hearth-test/tiny-GGUF:Q8_0")[-1].model
    assert sha256(Path(model.path).read_bytes()) == sha256(gguf_bytes["b"])
    # Deleting the model must free the space: no second copy stays in the download cache.
    assert not list(hf_home.rglob("snapshots/*/tiny-Q8_0.gguf"))
    assert not [p for p in hf_home.rglob("blobs/*") if p.is_file() and p.stat().st_size == len(gguf_bytes["b"])]


def test_a_different_file_of_the_same_name_is_never_replaced(stub, hub, pull_models_dir):
    own = pull_models_dir / "tiny-Q4_K_M.gguf"
    earlier = own.read_bytes() if own.exists() else None  # another test may have pulled it
    own.write_bytes(b"GGUF a file of the user's own")
    try:
        info = pull_error(stub, "hearth-test/tiny-GGUF:Q4_K_M")
        assert info.code == grpc.StatusCode.ALREADY_EXISTS
        assert "delete the model 'tiny-Q4_K_M' first" in info.message
        assert own.read_bytes() == b"GGUF a file of the user's own"
        assert leftovers(pull_models_dir, "tiny-Q4_K_M") == ["tiny-Q4_K_M.gguf"]
    finally:
        own.unlink()
        if earlier is not None:
            own.write_bytes(earlier)


def test_a_dropped_connection_resumes_with_a_range_request(stub, hub, gguf_bytes, pull_models_dir):
    model = pull(stub, "hearth-test/flaky-GGUF")[-1].model
    assert sha256(Path(model.path).read_bytes()) == sha256(gguf_bytes["b"])
    gets = hub.requests_for("flaky-Q4_K_M.gguf")
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    resumed_at = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 100_000


def test_a_wrong_checksum_installs_nothing_and_a_retry_downloads_again(stub, hub, pull_models_dir, hf_home):
    info = pull_error(stub, "hearth-test/badhash-GGUF")
    assert info.code == grpc.StatusCode.DATA_LOSS
    assert info.reason == "CHECKSUM_MISMATCH"
    assert "sha256" in info.message
    assert leftovers(pull_models_dir, "badhash") == []
    # The bad download is gone from huggingface_hub's cache too (blob and snapshot link).
    assert not [p for p in hf_home.rglob("*") if p.parent.name == "blobs" and p.name.startswith("0" * 64)]
    assert not list(hf_home.rglob("snapshots/*/badhash-Q4_K_M.gguf"))

    downloads = len(hub.requests_for("badhash-Q4_K_M.gguf"))
    assert pull_error(stub, "hearth-test/badhash-GGUF").reason == "CHECKSUM_MISMATCH"
    assert len(hub.requests_for("badhash-Q4_K_M.gguf")) == downloads + 1


def test_cancelling_a_pull_leaves_nothing_behind(stub, hub, pull_models_dir, hf_home):
    call = stub.PullModel(pb.PullModelRequest(reference="hearth-test/cancel-GGUF"), timeout=120)
    for message in call:
        if message.phase == pb.PULL_PHASE_DOWNLOADING and message.completed_bytes > 0:
            assert message.completed_bytes < message.total_bytes
            call.cancel()
            break
    with pytest.raises(grpc.RpcError) as raised:
        next(call)
    assert raised.value.code() == grpc.StatusCode.CANCELLED
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        leftovers(pull_models_dir, "cancel") or list(hf_home.rglob("*.incomplete"))
    ):
        time.sleep(0.1)
    assert leftovers(pull_models_dir, "cancel") == []
    assert list(hf_home.rglob("*.incomplete")) == []
    assert "cancel-Q4_K_M" not in {m.id for m in stub.ListModels(pb.ListModelsRequest()).models}
    # The engine serves on.
    assert stub.GetStatus(pb.GetStatusRequest()).engine_version


def test_unknown_repository_revision_and_file_are_not_found(stub):
    info = pull_error(stub, "hearth-test/no-such-repo")
    assert info.code == grpc.StatusCode.NOT_FOUND
    assert info.reason == "MODEL_NOT_FOUND"
    assert "hearth-test/no-such-repo" in info.message
    info = pull_error(stub, "hearth-test/tiny-GGUF", revision="v9")
    assert info.reason == "MODEL_NOT_FOUND" and "'v9'" in info.message
    assert info.metadata["param"] == "revision"
    info = pull_error(stub, "hearth-test/tiny-GGUF:Q2_K")
    assert info.reason == "MODEL_NOT_FOUND"
    assert "tiny-Q4_K_M.gguf" in info.message and "tiny-Q8_0.gguf" in info.message


def test_a_gated_repository_asks_for_hf_token(stub, pull_models_dir):
    info = pull_error(stub, "hearth-test/gated-GGUF")
    assert info.reason == "PULL_FAILED"
    assert "HF_TOKEN" in info.message
    assert leftovers(pull_models_dir, "gated") == []


def test_a_malformed_reference_is_an_invalid_argument(stub):
    info = pull_error(stub, "not a reference")
    assert info.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.metadata["param"] == "reference"


# The `hearth pull` command.


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(HEARTH + args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli_env(hub, tmp_path):
    """No engine answers at this address: the command pulls into the folder itself."""
    models = tmp_path / "models"
    env = base_env(models, tmp_path / "config.json", **hub_env(hub, tmp_path / "hf"))
    env["LLM_ENGINE_ADDRESS"] = f"127.0.0.1:{free_port()}"
    return env, models


def test_cli_pull_without_an_engine_installs_into_the_folder(cli_env, gguf_bytes):
    env, models = cli_env
    done = run_cli(["pull", "hearth-test/cli-GGUF"], env)
    assert done.returncode == 0, done.stderr
    model_id, path = done.stdout.strip().split("\t")
    assert model_id == "cli-Q4_K_M"
    assert Path(path) == models / "cli-Q4_K_M.gguf"
    assert sha256(Path(path).read_bytes()) == sha256(gguf_bytes["b"])
    assert "downloading cli-Q4_K_M.gguf" in done.stderr  # the progress bar

    failed = run_cli(["pull", "hearth-test/no-such-repo"], env)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "hearth-test/no-such-repo" in failed.stderr.splitlines()[-1]


def test_cli_pull_sends_hf_token(cli_env):
    env, models = cli_env
    refused = run_cli(["pull", "hearth-test/gated-GGUF"], env)
    assert refused.returncode == 1 and "HF_TOKEN" in refused.stderr
    done = run_cli(["pull", "hearth-test/gated-GGUF"], {**env, "HF_TOKEN": GATED_TOKEN})
    assert done.returncode == 0, done.stderr
    assert (models / "gated-Q4_K_M.gguf").is_file()


def test_cli_pull_goes_through_a_running_engine(stub, pull_engine, hub, tmp_path, pull_models_dir):
    env = base_env(tmp_path / "elsewhere", tmp_path / "config.json", **hub_env(hub, tmp_path / "hf"))
    done = run_cli(["pull", "hearth-test/cli-engine-GGUF", "--engine-address", pull_engine.address], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"clieng-Q4_K_M\t{pull_models_dir / 'clieng-Q4_K_M.gguf'}"
    assert not (tmp_path / "elsewhere").exists()  # the engine's folder, not this command's
    assert "clieng-Q4_K_M" in {m.id for m in stub.ListModels(pb.ListModelsRequest()).models}


def test_cli_pull_interrupted_cleans_up(cli_env):
    env, models = cli_env
    process = subprocess.Popen(
        HEARTH + ["pull", "hearth-test/cli-cancel-GGUF"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    hf_cache = Path(env["HF_HOME"])
    while time.monotonic() < deadline and not list(hf_cache.rglob("*.incomplete")):
        time.sleep(0.05)
    assert list(hf_cache.rglob("*.incomplete")), "the download never started"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "cancelled" in stderr
    assert not models.exists() or leftovers(models, "clicancel") == []
    assert list(hf_cache.rglob("*.incomplete")) == []


def test_cli_pull_with_the_hub_unreachable_says_so(cli_env):
    env, models = cli_env
    failed = run_cli(["pull", "hearth-test/cli-GGUF"], {**env, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1].startswith("error: Cannot reach Hugging Face at http://127.0.0.1:")
    assert not models.exists() or not list(models.iterdir())


# The desktop window's Pull box.


def test_the_desktop_link_pulls_through_the_engine_with_progress(pull_engine, pull_models_dir, gguf_bytes):
    from hearth.desktop import messages as msg
    from hearth.desktop.engine_link import EngineLink

    outbox: queue.Queue = queue.Queue()
    link = EngineLink(pull_engine.address, f"http://127.0.0.1:{free_port()}", outbox)
    progress, ended = [], None
    try:
        link.pull_model("hearth-test/desktop-GGUF")
        while ended is None:
            message = outbox.get(timeout=60)
            if isinstance(message, msg.TaskProgress):
                progress.append(message)
            elif isinstance(message, msg.TaskEnded):
                ended = message
    finally:
        link.close()
    assert ended.ok, ended.detail
    assert ended.detail == "Pulled desktop-Q4_K_M from hearth-test/desktop-GGUF"
    downloading = [p for p in progress if p.label == "Downloading desktop-Q4_K_M.gguf"]
    assert len(downloading) >= 2
    assert downloading[-1].done == downloading[-1].total == len(gguf_bytes["a"])
    assert (pull_models_dir / "desktop-Q4_K_M.gguf").is_file()


def test_a_user_pulls_a_model_from_the_desktop_window(pull_engine, pull_models_dir, tmp_path):
    pytest.importorskip("dearpygui")
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    from test_desktop_window import assert_not_blank, run_window

    shot = tmp_path / "pulling.png"
    script = [
        {"wait": "engine", "timeout": 30},
        {"tab": "models"},
        {"set": "models.pull_reference", "value": "hf.co/hearth-test/window-GGUF:Q4_K_M"},
        {"click": "models.pull"},
        {"wait": "item", "item": "models.task.0", "timeout": 30},  # the pull's progress bar
        {"sleep": 1.0},  # into the download, whose bar shows bytes
        {"screenshot": str(shot)},
        {"wait": "text", "item": "footer", "contains": "Pulled window-Q4_K_M", "timeout": 60},
        {"wait": "model_state", "model": "window-Q4_K_M", "state": "unloaded", "timeout": 30},
        {"wait": "no_tasks", "timeout": 10},
        {"quit": True},
    ]
    env = base_env(
        pull_models_dir,
        tmp_path / "config.json",
        LLM_ENGINE_ADDRESS=pull_engine.address,
        LLM_SERVER_PORT=str(free_port()),
    )
    report, _ = run_window(script, tmp_path, env, "--no-start-server")
    assert "window-Q4_K_M" in {model["id"] for model in report["models"]}
    assert (pull_models_dir / "window-Q4_K_M.gguf").is_file()
    assert_not_blank(shot)
