"""A tiny random-weight llama written as a GGUF file (well under a megabyte)
that really loads and generates in llama.cpp: the engine's CPU check runs it,
and the tests build their small models with it."""

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np

N_EMBD = 64
N_FF = 128
N_HEAD = 4
N_LAYER = 2
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]
EOS = 2


def tiny_vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = SPECIAL_TOKENS + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * len(tokens)
    types = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
    ] + [gguf.TokenType.BYTE] * 256
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(
    path: Path,
    *,
    seed: int = 0,
    context_length: int = 512,
    chat_template: str | None = None,
    name: str = "tiny-llama",
    added_tokens: tuple[str, ...] = (),
) -> Path:
    """A 2-layer llama with 256 byte tokens and random weights; ``added_tokens``
    (markers such as ``<think>``) follow them as user-defined tokens, as a
    model's added vocabulary does."""
    rng = np.random.default_rng(seed)
    n_vocab = len(SPECIAL_TOKENS) + 256 + len(added_tokens)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    return write_llama(
        path,
        token_embd=weight(n_vocab, N_EMBD),
        output=weight(n_vocab, N_EMBD),
        layer_weight=weight,
        context_length=context_length,
        chat_template=chat_template,
        name=name,
        added_tokens=added_tokens,
    )


def write_llama(
    path: Path,
    *,
    token_embd: np.ndarray,
    output: np.ndarray,
    layer_weight: Callable[..., np.ndarray],
    context_length: int,
    chat_template: str | None,
    name: str,
    added_tokens: tuple[str, ...] = (),
) -> Path:
    """A 2-layer llama of this module's shape and vocabulary with the given
    embedding and output rows (one per token, byte tokens then
    ``added_tokens``); ``layer_weight(*shape)`` gives each block's matrices, in
    the order they are written."""
    tokens, scores, types = tiny_vocab()
    tokens = tokens + list(added_tokens)
    scores = scores + [0.0] * len(added_tokens)
    types = types + [int(gguf.TokenType.USER_DEFINED)] * len(added_tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(context_length)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(EOS)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    ones = np.ones(N_EMBD, dtype=np.float32)
    writer.add_tensor("token_embd.weight", token_embd)
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", output)
    for i in range(N_LAYER):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        for part in ("q", "k", "v", "output"):
            writer.add_tensor(f"blk.{i}.attn_{part}.weight", layer_weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", layer_weight(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", layer_weight(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", layer_weight(N_EMBD, N_FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
