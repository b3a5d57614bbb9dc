"""Log-probabilities of sampled tokens, from the raw logits of the last decode."""

import numpy as np

from hearth.engine.domain import TokenLogprob, TopLogprob
from hearth.engine.llama.context import LlamaContext
from hearth.engine.llama.model import LlamaModel


def token_logprob(model: LlamaModel, context: LlamaContext, batch_index: int, token: int, top_n: int) -> TokenLogprob:
    """The log-probability of ``token`` under the raw logits at ``batch_index``
    of the last decode, with the ``top_n`` most likely tokens there."""
    logits = context.logits(batch_index, model.n_vocab())
    peak = float(logits.max())
    # exp in float32 (10x faster than a float64 copy), summed in float64.
    log_total = peak + float(np.log(np.exp(logits - peak).sum(dtype=np.float64)))
    top: tuple[TopLogprob, ...] = ()
    if top_n > 0:
        best = np.argpartition(logits, -top_n)[-top_n:]
        best = best[np.argsort(-logits[best], kind="stable")]
        top = tuple(
            TopLogprob(int(t), *_token_strings(model, int(t)), float(logits[t]) - log_total) for t in best
        )
    text, raw = _token_strings(model, token)
    return TokenLogprob(token, text, raw, float(logits[token]) - log_total, top)


def _token_strings(model: LlamaModel, token: int) -> tuple[str, bytes]:
    raw = model.token_piece(token, special=True)
    return raw.decode("utf-8", "replace"), raw
