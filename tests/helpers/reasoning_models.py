"""Tiny reasoning models for tests, decoded for real by llama.cpp.

A random-weight llama (tests.helpers.gguf_factory) thinks on and on: it closes
its reasoning only when a request's ``logit_bias`` or budget makes it. Some
behaviours need a model that closes its thinking itself and answers, through
APIs that have neither (Responses, Ollama). ``write_scripted_llama`` writes one:
its attention and feed-forward blocks add nothing, so the next token depends on
the last one alone, and each token's embedding is a direction of its own whose
output row is the token it must be followed by. After the prompt's last token
(``start``) it writes ``script``, token by token, then the end-of-generation
token. Every token not in the script is followed by the end. Where a grammar
refuses the token the script wants, the rest tie, but whitespace comes last
and Hermes' </tool_call> first: a call the grammar writes comes out compact."""

from pathlib import Path

import numpy as np

from hearth.engine.llama.tiny_model import EOS, N_EMBD, write_llama

THINK_TAGS = ("<think>", "</think>")
# Also Hermes' tool-call markers.
MARKED = (*THINK_TAGS, "<tool_call>", "</tool_call>")
# The added tokens follow the 3 special and 256 byte tokens.
FIRST_ADDED = 3 + 256
THINK, END_THINK, TOOL_CALL, END_TOOL_CALL = (FIRST_ADDED + i for i in range(4))

# Opens the reasoning in the generation prompt (DeepSeek-R1's way).
OPENING_TEMPLATE = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant><think>\n{% endif %}"
)
# Qwen3's switch: thinking off writes an empty reasoning block itself.
SWITCH_TEMPLATE = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)
# What the switch's empty block adds to the prompt: "\n", "</think>", "\n", "\n", and the word-start mark "▁"
# (3 byte tokens) the llama tokenizer writes after the special token (as after <think>).
SWITCH_OFF_EXTRA_TOKENS = 7
# No reasoning in the template at all.
PLAIN_TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>\n{% endif %}"


def byte_token(char: str) -> int:
    [byte] = char.encode()
    return 3 + byte


def script_tokens(*parts: str | int) -> list[int]:
    """Text (one byte token per character) and token ids, in order."""
    tokens: list[int] = []
    for part in parts:
        tokens += [part] if isinstance(part, int) else [byte_token(c) for c in part]
    return tokens


def write_scripted_llama(
    path: Path,
    script: list[int],
    *,
    start: int = byte_token("\n"),
    chat_template: str = OPENING_TEMPLATE,
    added_tokens: tuple[str, ...] = MARKED,
    context_length: int = 2048,
) -> Path:
    chain = [start, *script]
    assert len(set(chain)) == len(chain), "each token of the script must be followed by one token only"
    assert len(chain) < N_EMBD, "each token of the script needs a direction of its own"
    n_vocab = FIRST_ADDED + len(added_tokens)
    # Direction 0 for every token off the script (followed by the end), 1… for the script's.
    embeddings = np.zeros((n_vocab, N_EMBD), dtype=np.float32)
    embeddings[:, 0] = 1.0
    output = np.zeros((n_vocab, N_EMBD), dtype=np.float32)
    output[EOS, 0] = 4.0
    for char in " \t\n":
        output[byte_token(char)] -= 1.0
    if "</tool_call>" in added_tokens:
        output[FIRST_ADDED + added_tokens.index("</tool_call>")] += 1.0
    for index, token in enumerate(chain):
        embeddings[token] = 0.0
        embeddings[token, index + 1] = 1.0
        following = chain[index + 1] if index + 1 < len(chain) else EOS
        output[following, index + 1] = 4.0

    # Attention and feed-forward blocks add nothing: the next token depends on the last one alone.
    return write_llama(
        path,
        token_embd=embeddings,
        output=output,
        layer_weight=lambda *shape: np.zeros(shape, dtype=np.float32),
        context_length=context_length,
        chat_template=chat_template,
        name="scripted-llama",
        added_tokens=added_tokens,
    )
