"""Engine token log-probabilities in the two shapes OpenAI uses: the chat API's
per-token objects and the legacy completions API's parallel lists."""

from hearth.adapter.openai.protocol.chat import (
    ChoiceLogprobs,
    TokenLogprobOut,
    TopLogprobOut,
)
from hearth.adapter.openai.protocol.completions import CompletionLogprobs
from hearth.engine.v1 import engine_pb2 as pb


def chat_logprobs(entries) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=entry.token,
                logprob=entry.logprob,
                bytes=list(entry.bytes),
                top_logprobs=[
                    TopLogprobOut(token=top.token, logprob=top.logprob, bytes=list(top.bytes))
                    for top in entry.top_logprobs
                ],
            )
            for entry in entries
        ]
    )


def completion_logprobs(entries: list[pb.TokenLogprob], offset: int = 0) -> CompletionLogprobs:
    """``offset``: where in the choice's text the first of these tokens starts."""
    tokens, offsets = [], []
    for entry in entries:
        tokens.append(entry.token)
        offsets.append(offset)
        offset += len(entry.token)
    return CompletionLogprobs(
        tokens=tokens,
        token_logprobs=[entry.logprob for entry in entries],
        top_logprobs=[{top.token: top.logprob for top in entry.top_logprobs} for entry in entries],
        text_offset=offsets,
    )
