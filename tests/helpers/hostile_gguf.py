"""A corpus of malformed GGUF files, made by taking the tiny valid model from
gguf_factory apart and putting it back together wrongly: truncations, bad
magic and versions, huge counts, lengths that overflow, tensor offsets and
sizes outside the file, bad alignment, duplicate keys and tensors, and keys
llama.cpp reads given the wrong type or an impossible value.

Each kind says what must happen to it: ``refused`` files are caught by the
engine's own check (engine/gguf_info.py) and listed as invalid with a reason;
``llama.cpp`` files have a sound structure and go to llama.cpp, which must
refuse them when loading or load them. Neither may take the engine down."""

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import gguf

T = gguf.GGUFValueType
_SCALAR_FORMATS = {
    T.UINT8: "<B",
    T.INT8: "<b",
    T.UINT16: "<H",
    T.INT16: "<h",
    T.UINT32: "<I",
    T.INT32: "<i",
    T.FLOAT32: "<f",
    T.BOOL: "<?",
    T.UINT64: "<Q",
    T.INT64: "<q",
    T.FLOAT64: "<d",
}
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
MAX_U64 = 2**64 - 1


@dataclass
class KV:
    key: bytes
    type: int
    raw: bytes  # the encoded value, after its type


@dataclass
class Tensor:
    name: bytes
    dims: list[int]
    type: int
    offset: int


@dataclass
class Layout:
    version: int
    kvs: list[KV]
    tensors: list[Tensor]
    data: bytes  # the data section, from the aligned start
    alignment: int = 32
    magic: bytes = b"GGUF"
    # Counts written in the header; None: the true ones.
    n_tensors: int | None = None
    n_kvs: int | None = None
    # Bytes between the tensor table and the data section; None: pad to the alignment.
    padding: bytes | None = None

    def kv(self, key: str) -> KV:
        return next(kv for kv in self.kvs if kv.key == key.encode())

    def index(self, key: str) -> int:
        return next(i for i, kv in enumerate(self.kvs) if kv.key == key.encode())


def string(value: bytes) -> bytes:
    return U64.pack(len(value)) + value


def scalar(value_type: int, value) -> bytes:
    return struct.pack(_SCALAR_FORMATS[value_type], value)


def array(item_type: int, items: list[bytes], count: int | None = None) -> bytes:
    return U32.pack(item_type) + U64.pack(len(items) if count is None else count) + b"".join(items)


def _skip_value(data: bytes, pos: int, value_type: int) -> int:
    if value_type in _SCALAR_FORMATS:
        return pos + struct.calcsize(_SCALAR_FORMATS[value_type])
    if value_type == T.STRING:
        return pos + 8 + U64.unpack_from(data, pos)[0]
    assert value_type == T.ARRAY
    item_type = U32.unpack_from(data, pos)[0]
    count = U64.unpack_from(data, pos + 4)[0]
    pos += 12
    for _ in range(count):
        pos = _skip_value(data, pos, item_type)
    return pos


def read_layout(data: bytes) -> Layout:
    """The parts of a valid GGUF file."""
    version, n_tensors, n_kvs = struct.unpack_from("<IQQ", data, 4)
    pos = 24
    kvs = []
    for _ in range(n_kvs):
        length = U64.unpack_from(data, pos)[0]
        key = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
        value_type = U32.unpack_from(data, pos)[0]
        end = _skip_value(data, pos + 4, value_type)
        kvs.append(KV(key, value_type, data[pos + 4 : end]))
        pos = end
    tensors = []
    for _ in range(n_tensors):
        length = U64.unpack_from(data, pos)[0]
        name = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
        n_dims = U32.unpack_from(data, pos)[0]
        dims = list(struct.unpack_from(f"<{n_dims}Q", data, pos + 4))
        pos += 4 + 8 * n_dims
        tensor_type, offset = struct.unpack_from("<IQ", data, pos)
        pos += 12
        tensors.append(Tensor(name, dims, tensor_type, offset))
    start = (pos + 31) // 32 * 32
    return Layout(version, kvs, tensors, data[start:])


def encode(layout: Layout) -> bytes:
    out = bytearray(layout.magic)
    out += U32.pack(layout.version)
    out += U64.pack(len(layout.tensors) if layout.n_tensors is None else layout.n_tensors)
    out += U64.pack(len(layout.kvs) if layout.n_kvs is None else layout.n_kvs)
    for kv in layout.kvs:
        out += string(kv.key) + U32.pack(kv.type) + kv.raw
    for tensor in layout.tensors:
        out += string(tensor.name) + U32.pack(len(tensor.dims))
        out += b"".join(U64.pack(d) for d in tensor.dims)
        out += U32.pack(tensor.type) + U64.pack(tensor.offset)
    if layout.padding is None:
        out += b"\0" * (-len(out) % layout.alignment)
    else:
        out += layout.padding
    return bytes(out + layout.data)


def _copy(layout: Layout) -> Layout:
    return replace(
        layout,
        kvs=[replace(kv) for kv in layout.kvs],
        tensors=[replace(t, dims=list(t.dims)) for t in layout.tensors],
    )


def _set(layout: Layout, key: str, value_type: int, raw: bytes) -> Layout:
    layout = _copy(layout)
    try:
        kv = layout.kv(key)
        kv.type, kv.raw = value_type, raw
    except StopIteration:
        layout.kvs.append(KV(key.encode(), value_type, raw))
    return layout


def _drop(layout: Layout, key: str) -> Layout:
    layout = _copy(layout)
    del layout.kvs[layout.index(key)]
    return layout


def _tensor(layout: Layout, index: int, **changes) -> Layout:
    layout = _copy(layout)
    for name, value in changes.items():
        setattr(layout.tensors[index], name, value)
    return layout


def _u32(key: str, value: int) -> Callable[[Layout], Layout]:
    return lambda lay: _set(lay, key, T.UINT32, scalar(T.UINT32, value))


def _bytes_of(layout_fn: Callable[[Layout], Layout]) -> Callable[[bytes, Layout], bytes]:
    return lambda _valid, layout: encode(layout_fn(layout))


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[bytes, Layout], bytes]
    # "refused": engine/gguf_info.py rejects it; "llama.cpp": llama.cpp decides.
    expect: str = "refused"
    # Whether llama.cpp itself aborts the process reading it (found by trying).
    aborts_llama_cpp: bool = False


def _tokens(layout: Layout) -> list[bytes]:
    raw = layout.kv("tokenizer.ggml.tokens").raw
    count = U64.unpack_from(raw, 4)[0]
    pos, items = 12, []
    for _ in range(count):
        length = U64.unpack_from(raw, pos)[0]
        items.append(raw[pos : pos + 8 + length])
        pos += 8 + length
    return items


def _set_tokens(layout: Layout, change: Callable[[list[bytes]], list[bytes]]) -> Layout:
    return _set(layout, "tokenizer.ggml.tokens", T.ARRAY, array(T.STRING, change(_tokens(layout))))


def _duplicate_token(tokens: list[bytes]) -> list[bytes]:
    return [*tokens[:10], tokens[11], *tokens[11:]]


def _without_byte_tokens(layout: Layout) -> Layout:
    """A SentencePiece vocabulary of words only: llama.cpp aborts on the first byte it cannot spell."""
    words = [string(f"w{i}".encode()) for i in range(255)]
    layout = _set_tokens(layout, lambda tokens: [*tokens[:3], string(b"\n"), *words])
    normal = [scalar(T.INT32, int(gguf.TokenType.NORMAL))] * 256
    types = [scalar(T.INT32, 2), scalar(T.INT32, 3), scalar(T.INT32, 3), *normal]
    return _set(layout, "tokenizer.ggml.token_type", T.ARRAY, array(T.INT32, types))


def _rename_key(layout: Layout, index: int, key: bytes) -> Layout:
    layout = _copy(layout)
    layout.kvs[index].key = key
    return layout


def _tensor_name_len(layout: Layout) -> Layout:
    # A name whose length field says 2^63: written by hand after encoding.
    return replace(_copy(layout), tensors=[Tensor(b"\xff" * 8, [1], 0, 0), *layout.tensors[1:]])


def _swap_tensor_offsets(layout: Layout) -> Layout:
    layout = _copy(layout)
    a, b = layout.tensors[1], layout.tensors[3]
    a.offset, b.offset = b.offset, a.offset
    return layout


def _drop_tensor(layout: Layout, name: str) -> Layout:
    layout = _copy(layout)
    layout.tensors = [t for t in layout.tensors if t.name != name.encode()]
    return layout


def _patch(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def _tensor_name_length_max(valid: bytes, layout: Layout) -> bytes:
    data = encode(_tensor_name_len(layout))
    return _patch(data, U64.pack(8) + b"\xff" * 8, U64.pack(2**63) + b"\xff" * 8)


def _tensor_dims_count_max(valid: bytes, layout: Layout) -> bytes:
    data = encode(layout)
    name = layout.tensors[1].name
    return _patch(data, string(name) + U32.pack(1), string(name) + U32.pack(2**32 - 1))


KINDS: list[Kind] = [
    # Truncations and garbage.
    Kind("empty", lambda v, lay: b""),
    Kind("three-bytes", lambda v, lay: v[:3]),
    Kind("header-only", lambda v, lay: v[:24]),
    Kind("cut-in-first-key", lambda v, lay: v[:30]),
    Kind("cut-in-metadata", lambda v, lay: v[:600]),
    Kind("cut-in-tensor-table", lambda v, lay: v[: len(encode(lay)) - len(lay.data) - 40]),
    Kind("cut-in-tensor-data", lambda v, lay: v[: len(v) - 100]),
    Kind("cut-to-half", lambda v, lay: v[: len(v) // 2]),
    Kind("random-bytes", lambda v, lay: bytes((i * 7919 + 13) % 251 for i in range(4096))),
    Kind("zeros-after-header", lambda v, lay: v[:24] + b"\0" * 4096),
    # Magic and version.
    Kind("bad-magic", lambda v, lay: b"GGML" + v[4:]),
    Kind("lowercase-magic", lambda v, lay: b"gguf" + v[4:]),
    Kind("big-endian-magic", lambda v, lay: b"FUGG" + v[4:]),
    Kind("version-0", _bytes_of(lambda lay: replace(lay, version=0))),
    Kind("version-1", _bytes_of(lambda lay: replace(lay, version=1))),
    Kind("version-4", _bytes_of(lambda lay: replace(lay, version=4))),
    Kind("version-max", _bytes_of(lambda lay: replace(lay, version=2**32 - 1))),
    Kind("version-big-endian-3", _bytes_of(lambda lay: replace(lay, version=3 << 24))),
    # Counts.
    Kind("tensor-count-max", _bytes_of(lambda lay: replace(lay, n_tensors=MAX_U64))),
    Kind("tensor-count-2^40", _bytes_of(lambda lay: replace(lay, n_tensors=2**40))),
    Kind("tensor-count-plus-one", _bytes_of(lambda lay: replace(lay, n_tensors=len(lay.tensors) + 1))),
    Kind("key-count-max", _bytes_of(lambda lay: replace(lay, n_kvs=MAX_U64))),
    Kind("key-count-plus-one", _bytes_of(lambda lay: replace(lay, n_kvs=len(lay.kvs) + 1))),
    Kind("key-count-minus-one", _bytes_of(lambda lay: replace(lay, n_kvs=len(lay.kvs) - 1))),
    # Keys.
    Kind("key-length-2^63", lambda v, lay: v[:24] + U64.pack(2**63) + v[32:]),
    Kind("key-length-max", lambda v, lay: v[:24] + U64.pack(MAX_U64) + v[32:]),
    Kind("key-length-past-end", lambda v, lay: v[:24] + U64.pack(len(v)) + v[32:]),
    Kind("key-not-utf8", _bytes_of(lambda lay: _rename_key(lay, 1, b"general.\xff\xfe"))),
    Kind("key-empty", _bytes_of(lambda lay: _rename_key(lay, 1, b"")), "llama.cpp"),
    Kind("duplicate-key", _bytes_of(lambda lay: _rename_key(lay, 1, b"general.architecture"))),
    Kind("duplicate-key-appended", _bytes_of(lambda lay: replace(_copy(lay), kvs=[*lay.kvs, replace(lay.kvs[-1])]))),
    # Values.
    Kind("value-type-unknown", _bytes_of(lambda lay: _set(lay, "general.name", 99, b""))),
    Kind("value-type-max", _bytes_of(lambda lay: _set(lay, "general.name", 2**32 - 1, b""))),
    Kind("string-length-max", _bytes_of(lambda lay: _set(lay, "general.name", T.STRING, U64.pack(MAX_U64) + b"x"))),
    Kind("string-length-past-end", _bytes_of(lambda lay: _set(lay, "general.name", T.STRING, U64.pack(10**7) + b"x"))),
    Kind("string-not-utf8", _bytes_of(lambda lay: _set(lay, "general.architecture", T.STRING, string(b"ll\xc3\x28ama")))),
    Kind("array-count-max", _bytes_of(lambda lay: _set(lay, "general.tags", T.ARRAY, array(T.UINT32, [], MAX_U64)))),
    Kind("array-count-2^61-u64", _bytes_of(lambda lay: _set(lay, "general.tags", T.ARRAY, array(T.UINT64, [], 2**61)))),
    Kind("string-array-count-max", _bytes_of(lambda lay: _set(lay, "general.tags", T.ARRAY, array(T.STRING, [], MAX_U64)))),
    Kind(
        "string-array-item-length-max",
        _bytes_of(lambda lay: _set(lay, "general.tags", T.ARRAY, array(T.STRING, [U64.pack(MAX_U64)], 1))),
    ),
    Kind("nested-array", _bytes_of(lambda lay: _set(lay, "general.tags", T.ARRAY, array(T.ARRAY, [array(T.UINT8, [b"\1"])])))),
    Kind("array-item-type-unknown", _bytes_of(lambda lay: _set(lay, "general.tags", T.ARRAY, array(77, [], 1)))),
    # Alignment.
    Kind("alignment-0", _bytes_of(lambda lay: _set(lay, "general.alignment", T.UINT32, scalar(T.UINT32, 0)))),
    Kind("alignment-3", _bytes_of(lambda lay: _set(lay, "general.alignment", T.UINT32, scalar(T.UINT32, 3)))),
    Kind("alignment-2^31", _bytes_of(lambda lay: _set(lay, "general.alignment", T.UINT32, scalar(T.UINT32, 2**31)))),
    Kind("alignment-as-string", _bytes_of(lambda lay: _set(lay, "general.alignment", T.STRING, string(b"32")))),
    Kind("alignment-64-data-at-32", _bytes_of(lambda lay: _set(lay, "general.alignment", T.UINT32, scalar(T.UINT32, 64)))),
    Kind("no-padding-before-data", _bytes_of(lambda lay: replace(lay, padding=b""))),
    # Tensors.
    Kind("tensor-name-length-max", _tensor_name_length_max),
    Kind("tensor-name-empty", _bytes_of(lambda lay: _tensor(lay, 1, name=b"")), "llama.cpp"),
    Kind("duplicate-tensor", _bytes_of(lambda lay: _tensor(lay, 1, name=lay.tensors[0].name))),
    Kind("tensor-0-dims", _bytes_of(lambda lay: _tensor(lay, 1, dims=[]))),
    Kind("tensor-5-dims", _bytes_of(lambda lay: _tensor(lay, 1, dims=[64, 1, 1, 1, 1]))),
    Kind("tensor-dims-count-max", _tensor_dims_count_max),
    Kind("tensor-dim-0", _bytes_of(lambda lay: _tensor(lay, 1, dims=[0]))),
    Kind("tensor-dim-2^63", _bytes_of(lambda lay: _tensor(lay, 1, dims=[2**63]))),
    Kind("tensor-elements-overflow-u64", _bytes_of(lambda lay: _tensor(lay, 1, dims=[2**32, 2**32, 2**32]))),
    Kind("tensor-bytes-overflow-i64", _bytes_of(lambda lay: _tensor(lay, 1, dims=[2**31, 2**31, 4]))),
    Kind("tensor-type-unknown", _bytes_of(lambda lay: _tensor(lay, 1, type=999))),
    Kind("tensor-type-removed-q4_2", _bytes_of(lambda lay: _tensor(lay, 1, type=4))),
    Kind(
        "tensor-quant-dim-not-block-multiple",
        _bytes_of(lambda lay: _tensor(lay, 1, type=int(gguf.GGMLQuantizationType.Q4_0), dims=[48])),
    ),
    Kind("tensor-misaligned-offset", _bytes_of(lambda lay: _tensor(lay, 1, offset=lay.tensors[1].offset + 4))),
    Kind("tensor-offset-past-end", _bytes_of(lambda lay: _tensor(lay, 1, offset=len(lay.data) + 64))),
    Kind("tensor-offset-overflows", _bytes_of(lambda lay: _tensor(lay, 1, offset=MAX_U64 - 31))),
    Kind("tensor-offset-2^63", _bytes_of(lambda lay: _tensor(lay, 1, offset=2**63))),
    Kind("tensors-overlap", _bytes_of(lambda lay: _tensor(lay, 2, offset=lay.tensors[0].offset))),
    Kind("tensors-out-of-order", _bytes_of(_swap_tensor_offsets)),
    Kind("tensor-bigger-than-data", _bytes_of(lambda lay: _tensor(lay, 0, dims=[64, 259 * 64]))),
    # Keys llama.cpp reads, with the wrong type or an impossible value.
    Kind("architecture-missing", _bytes_of(lambda lay: _drop(lay, "general.architecture"))),
    Kind("architecture-unknown", _bytes_of(lambda lay: _set(lay, "general.architecture", T.STRING, string(b"evil"))), "llama.cpp"),
    Kind("architecture-as-u32", _bytes_of(lambda lay: _set(lay, "general.architecture", T.UINT32, scalar(T.UINT32, 1)))),
    Kind("no-tensors", _bytes_of(lambda lay: replace(_copy(lay), tensors=[], data=b""))),
    Kind("context-length-as-string", _bytes_of(lambda lay: _set(lay, "llama.context_length", T.STRING, string(b"512"))), "llama.cpp"),
    Kind("block-count-0", _bytes_of(_u32("llama.block_count", 0)), aborts_llama_cpp=True),
    Kind("block-count-max", _bytes_of(_u32("llama.block_count", 2**32 - 1)), aborts_llama_cpp=True),
    Kind("block-count-513", _bytes_of(_u32("llama.block_count", 513)), aborts_llama_cpp=True),
    Kind("head-count-0", _bytes_of(_u32("llama.attention.head_count", 0)), "llama.cpp"),
    Kind("head-count-kv-0", _bytes_of(_u32("llama.attention.head_count_kv", 0)), "llama.cpp"),
    Kind("head-count-max", _bytes_of(_u32("llama.attention.head_count", 2**32 - 1)), "llama.cpp"),
    Kind("embedding-length-0", _bytes_of(_u32("llama.embedding_length", 0)), "llama.cpp"),
    Kind("embedding-length-max", _bytes_of(_u32("llama.embedding_length", 2**32 - 1)), "llama.cpp"),
    Kind("expert-count-huge", _bytes_of(_u32("llama.expert_count", 100_000)), aborts_llama_cpp=True),
    Kind("experts-used-over-count", _bytes_of(lambda lay: _u32("llama.expert_used_count", 8)(_u32("llama.expert_count", 2)(lay))), aborts_llama_cpp=True),
    Kind("experts-none-used", _bytes_of(_u32("llama.expert_count", 4)), aborts_llama_cpp=True),
    Kind("experts-used-without-experts", _bytes_of(_u32("llama.expert_used_count", 1)), aborts_llama_cpp=True),
    Kind("tokens-missing", _bytes_of(lambda lay: _drop(lay, "tokenizer.ggml.tokens")), "llama.cpp"),
    Kind("tokens-as-u32-array", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.tokens", T.ARRAY, array(T.UINT32, [scalar(T.UINT32, 1)] * 259)))),
    Kind("duplicate-token", _bytes_of(lambda lay: _set_tokens(lay, _duplicate_token)), aborts_llama_cpp=True),
    Kind("no-byte-fallback", _bytes_of(_without_byte_tokens), aborts_llama_cpp=True),
    Kind("tokens-as-string", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.tokens", T.STRING, string(b"a")))),
    Kind("scores-shorter-than-tokens", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.scores", T.ARRAY, array(T.FLOAT32, [scalar(T.FLOAT32, 0.0)] * 3)))),
    Kind("scores-as-u8-array", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.scores", T.ARRAY, array(T.UINT8, [b"\0"] * 259))), "llama.cpp"),
    Kind("token-types-shorter", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.token_type", T.ARRAY, array(T.INT32, [scalar(T.INT32, 1)] * 3)))),
    Kind("token-types-as-strings", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.token_type", T.ARRAY, array(T.STRING, [string(b"1")] * 259))), "llama.cpp"),
    Kind("merges-as-u32-array", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.merges", T.ARRAY, array(T.UINT32, [scalar(T.UINT32, 1)] * 4)))),
    Kind("bos-token-id-out-of-range", _bytes_of(_u32("tokenizer.ggml.bos_token_id", 10**9)), "llama.cpp"),
    Kind("tokenizer-model-unknown", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.model", T.STRING, string(b"evil"))), "llama.cpp"),
    Kind("tokenizer-model-missing", _bytes_of(lambda lay: _drop(lay, "tokenizer.ggml.model")), "llama.cpp"),
    Kind("chat-template-not-utf8", _bytes_of(lambda lay: _set(lay, "tokenizer.chat_template", T.STRING, string(b"{{ \xff }}")))),
    Kind("vocab-shorter-than-embeddings", _bytes_of(lambda lay: _set(lay, "tokenizer.ggml.tokens", T.ARRAY, array(T.STRING, _tokens(lay)[:200])))),
    Kind("tensor-missing", _bytes_of(lambda lay: _drop_tensor(lay, "blk.1.ffn_down.weight")), "llama.cpp"),
    Kind("tensor-wrong-shape", _bytes_of(lambda lay: _tensor(lay, 1, dims=[32, 2])), "llama.cpp"),
]


def write_corpus(valid_path: Path, folder: Path) -> dict[str, Kind]:
    """Writes one ``<kind>.gguf`` per kind into ``folder``; returns them by model id."""
    valid = valid_path.read_bytes()
    layout = read_layout(valid)
    assert encode(layout) == valid, "the tiny model does not round-trip"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind in KINDS:
        (folder / f"{kind.name}.gguf").write_bytes(kind.make(valid, layout))
        written[kind.name] = kind
    return written
