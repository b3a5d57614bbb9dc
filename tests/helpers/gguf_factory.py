"""Small GGUF files for tests: the engine's tiny random-weight llama."""

from hearth.engine.llama.tiny_model import N_EMBD, N_LAYER, tiny_vocab, write_tiny_llama

__all__ = ["N_EMBD", "N_LAYER", "tiny_vocab", "write_tiny_llama"]
