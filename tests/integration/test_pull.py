"""Pulling GGUF models from Hugging Face: a real `hearth engine` and real
`hearth pull` processes downloading through huggingface_hub from a local
stand-in of the hub (tests/helpers/hub_standin.py), never the network."""

import time
from pathlib import Path

import grpc
import pytest

from hearth.engine.errors import InvalidArgument, ModelNotFound, PullFailed
from hearth.engine.models.pull import (
    PullReference,
    RemoteFile,
    parse_reference,
    select_file,
)
from hearth.engine.v1 import engine_pb2 as pb
from tests.helpers.pull_fixtures import PHASE_ORDER, leftovers, pull, pull_error, sha256

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


@pytest.mark.parametrize(
    "reference, revision, param",
    [
        ("hearth-test/tiny-GGUF", "r" * 100_000, "revision"),
        ("hearth-test/tiny-GGUF", "main\nx", "revision"),
        ("hearth-test/tiny-GGUF", "../../etc", "revision"),
        ("hearth-test/tiny-GGUF", "v1 v2", "revision"),
        ("hearth-test/tiny-GGUF/" + "d/" * 50_000 + "f.gguf", "", "reference"),
    ],
)
def test_oversized_or_odd_revisions_and_references_are_invalid_arguments(stub, reference, revision, param):
    info = pull_error(stub, reference, revision)
    assert info.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.metadata["param"] == param
    assert len(info.message) < 300
