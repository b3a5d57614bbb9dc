"""A loaded GGUF model: weights and vocabulary, no context."""

import ctypes
import logging
from pathlib import Path

import llama_cpp
from llama_cpp import _internals as internals

from hearth.engine.llama.backend import load_backends, quiet_llama_log

log = logging.getLogger(__name__)

# No token spans this many bytes on average: a longer text cannot fit the
# context, and llama.cpp's tokenizer is quadratic on some vocabularies, so such
# a text is refused (or cut) before tokenizing.
MAX_BYTES_PER_TOKEN = 64


class LlamaModel:
    """A loaded GGUF model: weights and vocabulary, no context."""

    def __init__(self, path: Path, *, gpu_offload: bool, gpu_layers: int | None = None):
        """``gpu_layers``: how many layers to offload when offloading (None or -1: all)."""
        load_backends()
        quiet_llama_log()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = (-1 if gpu_layers is None else gpu_layers) if gpu_offload else 0
        # Repacked CPU weights switch between GEMV and GEMM kernels with the
        # batch's size, and their sums round differently: a greedy request
        # could then answer differently alone and beside others. Without
        # repacking every token's logits are the same whatever the batch
        # (measured on 2 cores: no slower to decode, prompts as fast).
        params.use_extra_bufts = False
        self._model = internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        self.vocab = self._model.vocab

    @property
    def raw(self) -> internals.LlamaModel:
        return self._model

    def close(self) -> None:
        self._model.close()

    def size_bytes(self) -> int:
        return int(self._model.size())

    def n_vocab(self) -> int:
        return self._model.n_vocab()

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """Special tokens written in the text (chat template markers) are parsed as such."""
        return self._model.tokenize(text.encode("utf-8"), add_special, True)

    def detokenize(self, tokens: list[int]) -> str:
        """Text of in-vocabulary tokens: special tokens written out, except the
        BOS/EOS the tokenizer adds itself (so text round-trips)."""
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        size = max(64, 8 * len(tokens))
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_detokenize(self.vocab, array, len(tokens), buffer, size, True, True)
            if n >= 0:
                return buffer.raw[:n].decode("utf-8", "replace")
            size = -n

    def token_text(self, token: int) -> str:
        """The vocabulary's text for a token (e.g. '<bos>'); empty when out of range."""
        if token < 0 or token >= self.n_vocab():
            return ""
        return llama_cpp.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    def bos_text(self) -> str:
        return self.token_text(self._model.token_bos())

    def eos_text(self) -> str:
        return self.token_text(self._model.token_eos())

    def tokenize_bytes(self, text: bytes) -> list[int]:
        """Tokens of raw text, no BOS, special tokens parsed (for grammar bookkeeping)."""
        return self._model.tokenize(text, False, True)

    def token_piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes a token decodes to; special tokens rendered as nothing unless ``special``."""
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, size, 0, special)
            if n >= 0:
                return buffer.raw[:n]
            size = -n

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def single_token_id(self, text: str) -> int | None:
        """The id of a special token written as text, if it is one token."""
        tokens = self._model.tokenize(text.encode("utf-8"), False, True)
        return tokens[0] if len(tokens) == 1 else None

