"""GGUF metadata, read without loading weights, and a check of the file's
structure before llama.cpp ever sees it.

The gguf package supplies the format's definitions (value types, tensor types
and their block sizes, file types). Its GGUFReader is not used here: it builds
an object per vocabulary entry and takes seconds on a 262k-token model, where
this single pass over the header takes a fraction of one, and checks every
length and offset against the file as it goes."""

import mmap
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import gguf

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_TENSORS = 1_000_000
MAX_KEYS = 100_000
MAX_DIMS = 4
MAX_KEY_LENGTH = 65_535
DEFAULT_ALIGNMENT = 32
# llama.cpp aborts the whole process (GGML_ASSERT) on models beyond these.
MAX_LAYERS = 512
MAX_EXPERTS = 1024
# Bytes that valid UTF-8 text can contain: what a tokenizer may be given.
_UTF8_BYTES = [b for b in range(256) if b not in (0xC0, 0xC1) and b < 0xF5]

_SCALARS: dict[int, struct.Struct] = {
    gguf.GGUFValueType.UINT8: struct.Struct("<B"),
    gguf.GGUFValueType.INT8: struct.Struct("<b"),
    gguf.GGUFValueType.UINT16: struct.Struct("<H"),
    gguf.GGUFValueType.INT16: struct.Struct("<h"),
    gguf.GGUFValueType.UINT32: struct.Struct("<I"),
    gguf.GGUFValueType.INT32: struct.Struct("<i"),
    gguf.GGUFValueType.FLOAT32: struct.Struct("<f"),
    gguf.GGUFValueType.BOOL: struct.Struct("<?"),
    gguf.GGUFValueType.UINT64: struct.Struct("<Q"),
    gguf.GGUFValueType.INT64: struct.Struct("<q"),
    gguf.GGUFValueType.FLOAT64: struct.Struct("<d"),
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GGUFReadError(Exception):
    """The file is not a GGUF file the engine can use."""


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    parameter_count: int
    quantization: str
    trained_context_length: int
    chat_template: str | None
    display_name: str
    # Shape facts for estimating the KV cache's size; 0 where the file does
    # not say (or says it per layer).
    block_count: int = 0
    embedding_length: int = 0
    head_count: int = 0
    head_count_kv: int = 0
    key_length: int = 0
    value_length: int = 0


# Values per block of the quantized KV cache types: a head's keys and values must fill whole blocks.
QUANTIZED_KV_BLOCK = {"q8_0": 32, "q4_0": 32}


def kv_cache_type_problem(info: GGUFInfo | None, kv_cache_type: str | None) -> str | None:
    """Why the model cannot keep its KV cache in ``kv_cache_type``; None when it can (or the file does not say)."""
    block = QUANTIZED_KV_BLOCK.get(kv_cache_type or "")
    if block is None or info is None or not info.head_count:
        return None
    head_dim = info.embedding_length // info.head_count
    for width in {info.key_length or head_dim, info.value_length or head_dim}:
        if width % block:
            return (
                f"a {kv_cache_type} KV cache needs attention heads of a multiple of {block} values; "
                f"this model's have {width} (use f16)"
            )
    return None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int
    offset: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class _Array:
    item_type: int
    count: int
    # File offsets of the first item and of the end.
    start: int
    end: int


class _Cursor:
    def __init__(self, data, size: int):
        self.data = data
        self.size = size
        self.pos = 0
        self.arrays: dict[str, _Array] = {}

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFReadError(f"truncated file: {what} at byte {self.pos} runs past the end ({self.size} bytes)")

    def unpack(self, fmt: struct.Struct, what: str):
        self.need(fmt.size, what)
        value = fmt.unpack_from(self.data, self.pos)[0]
        self.pos += fmt.size
        return value

    def string(self, what: str, limit: int | None = None) -> bytes:
        length = self.unpack(_U64, f"length of {what}")
        if limit is not None and length > limit:
            raise GGUFReadError(f"{what} is {length} bytes long, over the limit of {limit}")
        self.need(length, what)
        value = bytes(self.data[self.pos : self.pos + length])
        self.pos += length
        return value

    def skip_string(self, what: str) -> None:
        length = self.unpack(_U64, f"length of {what}")
        self.need(length, what)
        self.pos += length


def _read_value(cur: _Cursor, value_type: int, key: str, depth: int = 0):
    if value_type in _SCALARS:
        return cur.unpack(_SCALARS[value_type], f"value of {key}")
    if value_type == gguf.GGUFValueType.STRING:
        raw = cur.string(f"value of {key}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFReadError(f"value of {key} is not valid UTF-8") from exc
    if value_type == gguf.GGUFValueType.ARRAY:
        if depth > 0:
            raise GGUFReadError(f"{key} nests arrays")
        item_type = cur.unpack(_U32, f"item type of {key}")
        count = cur.unpack(_U64, f"length of {key}")
        start = cur.pos
        if item_type in _SCALARS:
            item_size = _SCALARS[item_type].size
            if count > (cur.size - cur.pos) // item_size:
                raise GGUFReadError(f"array {key} claims {count} items, more than the file holds")
            cur.pos += count * item_size
            cur.arrays[key] = _Array(item_type, count, start, cur.pos)
        elif item_type == gguf.GGUFValueType.STRING:
            # Every string takes at least its 8-byte length.
            if count > (cur.size - cur.pos) // 8:
                raise GGUFReadError(f"array {key} claims {count} strings, more than the file holds")
            for _ in range(count):
                cur.skip_string(f"item of {key}")
            cur.arrays[key] = _Array(item_type, count, start, cur.pos)
        else:
            raise GGUFReadError(f"array {key} has unsupported item type {item_type}")
        return None  # array contents are not needed for metadata
    raise GGUFReadError(f"{key} has unknown value type {value_type}")


def _tensor_bytes(tensor: TensorInfo) -> int:
    try:
        block_size, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor.type)]
    except (ValueError, KeyError) as exc:
        raise GGUFReadError(f"tensor {tensor.name} has unknown type {tensor.type}") from exc
    if tensor.shape[0] % block_size:
        raise GGUFReadError(f"tensor {tensor.name}'s first dimension is not a multiple of its block size")
    return tensor.n_elements // block_size * type_size


def parse_gguf(path: Path) -> tuple[dict[str, object], list[TensorInfo]]:
    """The file's scalar and string metadata and its tensor table, after checking
    that every length, count and offset stays inside the file."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                raise GGUFReadError(f"file too small to be GGUF ({size} bytes)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse(_Cursor(data, size))
    except OSError as exc:
        raise GGUFReadError(f"cannot read file: {exc.strerror or exc}") from exc


def _parse(cur: _Cursor) -> tuple[dict[str, object], list[TensorInfo]]:
    cur.need(4, "magic")
    if bytes(cur.data[0:4]) != GGUF_MAGIC:
        raise GGUFReadError("not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.unpack(_U32, "version")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFReadError(f"unsupported GGUF version {version}")
    n_tensors = cur.unpack(_U64, "tensor count")
    n_keys = cur.unpack(_U64, "key count")
    if n_tensors > MAX_TENSORS:
        raise GGUFReadError(f"tensor count {n_tensors} is over the limit of {MAX_TENSORS}")
    if n_keys > MAX_KEYS:
        raise GGUFReadError(f"key count {n_keys} is over the limit of {MAX_KEYS}")

    metadata: dict[str, object] = {}
    for index in range(n_keys):
        raw_key = cur.string(f"key #{index}", limit=MAX_KEY_LENGTH)
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFReadError(f"key #{index} is not valid UTF-8") from exc
        if key in metadata:
            raise GGUFReadError(f"duplicate key {key}")
        value_type = cur.unpack(_U32, f"type of {key}")
        metadata[key] = _read_value(cur, value_type, key)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
        raise GGUFReadError(f"general.alignment {alignment!r} is not a power of two")

    tensors: list[TensorInfo] = []
    names: set[str] = set()
    for index in range(n_tensors):
        raw_name = cur.string(f"name of tensor #{index}", limit=MAX_KEY_LENGTH)
        name = raw_name.decode("utf-8", "replace")
        if name in names:
            raise GGUFReadError(f"duplicate tensor {name}")
        names.add(name)
        n_dims = cur.unpack(_U32, f"dimension count of {name}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GGUFReadError(f"tensor {name} has {n_dims} dimensions")
        shape = tuple(cur.unpack(_U64, f"dimension of {name}") for _ in range(n_dims))
        if any(d == 0 or d > 1 << 40 for d in shape):
            raise GGUFReadError(f"tensor {name} has an impossible shape {shape}")
        tensor_type = cur.unpack(_U32, f"type of {name}")
        offset = cur.unpack(_U64, f"offset of {name}")
        tensors.append(TensorInfo(name, shape, tensor_type, offset))

    data_start = (cur.pos + alignment - 1) // alignment * alignment
    data_size = cur.size - data_start
    # llama.cpp expects the tensors one after the other, each padded to the
    # alignment, in table order; anything else overlaps or leaves holes.
    expected = 0
    for tensor in tensors:
        if tensor.offset % alignment:
            raise GGUFReadError(f"tensor {tensor.name} is not aligned to {alignment} bytes")
        n_bytes = _tensor_bytes(tensor)
        if tensor.offset > data_size or n_bytes > data_size - tensor.offset:
            raise GGUFReadError(f"tensor {tensor.name} runs past the end of the file")
        if tensor.offset != expected:
            raise GGUFReadError(
                f"tensor {tensor.name} is at data offset {tensor.offset}, not {expected} where the layout puts it"
            )
        expected += (n_bytes + alignment - 1) // alignment * alignment
    _check_model_keys(cur, metadata)
    return metadata, tensors


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_model_keys(cur: _Cursor, metadata: dict[str, object]) -> None:
    """Values that pass as GGUF but make llama.cpp abort the process rather
    than fail the load: layer and expert counts, and the vocabulary."""
    architecture = metadata.get("general.architecture")
    if isinstance(architecture, str):
        layers = _int(metadata.get(f"{architecture}.block_count"))
        if layers is not None and not 1 <= layers <= MAX_LAYERS:
            raise GGUFReadError(f"{architecture}.block_count {layers} is not between 1 and {MAX_LAYERS}")
        experts = _int(metadata.get(f"{architecture}.expert_count")) or 0
        used = _int(metadata.get(f"{architecture}.expert_used_count")) or 0
        if not 0 <= experts <= MAX_EXPERTS:
            raise GGUFReadError(f"{architecture}.expert_count {experts} is not between 0 and {MAX_EXPERTS}")
        if not 0 <= used <= experts or (experts and not used):
            raise GGUFReadError(
                f"{architecture}.expert_used_count {used} does not fit {architecture}.expert_count {experts}"
            )
    if "tokenizer.ggml.tokens" not in metadata:
        return
    tokens = cur.arrays.get("tokenizer.ggml.tokens")
    if tokens is None or tokens.item_type != gguf.GGUFValueType.STRING:
        raise GGUFReadError("tokenizer.ggml.tokens is not a list of strings")
    for key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        if key in metadata:
            array = cur.arrays.get(key)
            if array is None or array.count != tokens.count:
                raise GGUFReadError(f"{key} does not have one entry per token ({tokens.count})")
    if "tokenizer.ggml.merges" in metadata:
        merges = cur.arrays.get("tokenizer.ggml.merges")
        if merges is None or merges.item_type != gguf.GGUFValueType.STRING:
            raise GGUFReadError("tokenizer.ggml.merges is not a list of strings")
    vocabulary = _token_set(cur, tokens)
    if metadata.get("tokenizer.ggml.model") == "llama":
        # A SentencePiece vocabulary must spell any byte it has no piece for
        # as <0xXX>; llama.cpp aborts on text it cannot spell otherwise.
        missing = [
            b
            for b in _UTF8_BYTES
            if f"<0x{b:02X}>".encode() not in vocabulary and not (b < 0x80 and bytes([b]) in vocabulary)
        ]
        if missing:
            raise GGUFReadError(f"the vocabulary has no token for byte 0x{missing[0]:02X} (no byte fallback)")


def _token_set(cur: _Cursor, tokens: _Array) -> set[bytes]:
    """The vocabulary's pieces; duplicates (which llama.cpp aborts on) are refused."""
    seen: set[bytes] = set()
    # Every length was checked against the file while the array was skipped.
    blob = bytes(cur.data[tokens.start : tokens.end])
    unpack = _U64.unpack_from
    pos = 0
    for index in range(tokens.count):
        end = pos + 8 + unpack(blob, pos)[0]
        # llama.cpp names empty pieces after their index.
        piece = blob[pos + 8 : end] or f"[EMPTY_{index}]".encode()
        if piece in seen:
            raise GGUFReadError(f"token #{index} {piece[:40]!r} appears twice in the vocabulary")
        seen.add(piece)
        pos = end
    return seen


def _quantization(metadata: dict[str, object], tensors: list[TensorInfo]) -> str:
    file_type = metadata.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No (known) file type: name the commonest tensor type among the weights.
    counts = Counter(t.type for t in tensors if len(t.shape) > 1)
    if not counts:
        return "unknown"
    try:
        return gguf.GGMLQuantizationType(counts.most_common(1)[0][0]).name
    except ValueError:
        return "unknown"


def read_gguf_info(path: Path) -> GGUFInfo:
    metadata, tensors = parse_gguf(path)
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise GGUFReadError("missing general.architecture")
    if not tensors:
        raise GGUFReadError("the file has no tensors")
    context = metadata.get(f"{architecture}.context_length")
    template = metadata.get("tokenizer.chat_template")
    name = metadata.get("general.name")
    return GGUFInfo(
        architecture=architecture,
        parameter_count=sum(t.n_elements for t in tensors),
        quantization=_quantization(metadata, tensors),
        trained_context_length=context if isinstance(context, int) and context > 0 else 0,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        display_name=name if isinstance(name, str) else "",
        block_count=_positive(metadata.get(f"{architecture}.block_count")),
        embedding_length=_positive(metadata.get(f"{architecture}.embedding_length")),
        head_count=_positive(metadata.get(f"{architecture}.attention.head_count")),
        head_count_kv=_positive(metadata.get(f"{architecture}.attention.head_count_kv")),
        key_length=_positive(metadata.get(f"{architecture}.attention.key_length")),
        value_length=_positive(metadata.get(f"{architecture}.attention.value_length")),
    )


def _positive(value: object) -> int:
    number = _int(value)
    return number if number is not None and number > 0 else 0
