"""GGUF metadata and structure checks, on real files and broken ones."""

import struct
from pathlib import Path

import pytest

from hearth.engine.models.gguf_info import GGUFReadError, parse_gguf, read_gguf_info
from tests.helpers.gguf_factory import write_tiny_llama


def test_default_model_metadata(default_model_path: Path):
    info = read_gguf_info(default_model_path)
    assert info.architecture == "gemma3"
    assert info.quantization == "Q4_K_M"
    assert info.trained_context_length == 32768
    assert 250e6 < info.parameter_count < 300e6
    # The default file has no chat template: the engine must supply one.
    assert info.chat_template is None


def test_tiny_model_metadata(tmp_path: Path):
    path = write_tiny_llama(tmp_path / "t.gguf", context_length=640, chat_template="{{ messages }}", name="Tiny")
    info = read_gguf_info(path)
    assert (info.architecture, info.trained_context_length, info.quantization) == ("llama", 640, "F32")
    assert info.chat_template == "{{ messages }}"
    assert info.display_name == "Tiny"
    metadata, tensors = parse_gguf(path)
    assert info.parameter_count == sum(t.n_elements for t in tensors) > 100_000


@pytest.fixture
def tiny_bytes(tmp_path: Path) -> bytes:
    return write_tiny_llama(tmp_path / "good.gguf").read_bytes()


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"", "too small"),
        (lambda b: b"GGML" + b[4:], "bad magic"),
        (lambda b: b[:4] + struct.pack("<I", 99) + b[8:], "version 99"),
        (lambda b: b[:8] + struct.pack("<Q", 10**12) + b[16:], "tensor count"),
        (lambda b: b[:16] + struct.pack("<Q", 10**12) + b[24:], "key count"),
        (lambda b: b[:24] + struct.pack("<Q", 2**63) + b[32:], "key #0 is .* bytes long"),
        (lambda b: b[:2000], "more than the file holds"),
        (lambda b: b[:30], "truncated"),
        (lambda b: b[: len(b) - 100], "past the end"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(tmp_path: Path, tiny_bytes: bytes, mutate, message: str):
    with pytest.raises(GGUFReadError, match=message):
        read_gguf_info(_write(tmp_path, mutate(tiny_bytes)))


def test_not_a_file(tmp_path: Path):
    with pytest.raises(GGUFReadError):
        read_gguf_info(tmp_path)
