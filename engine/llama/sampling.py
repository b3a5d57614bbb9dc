"""Sampler chains: logit bias, penalties, top-k/top-p/min-p, temperature,
and grammar constraints checked token by token."""

import ctypes
import logging
import math

import llama_cpp
import numpy as np
from llama_cpp import _internals as internals

from hearth.engine.domain import SamplingParams
from hearth.engine.errors import EngineError
from hearth.engine.llama.context import LlamaContext
from hearth.engine.llama.model import LlamaModel

log = logging.getLogger(__name__)

# Tokens of history the repeat/presence/frequency penalties look at.
PENALTY_LAST_N = 64
# Most likely tokens a rejected token's grammar is applied to first.
SHORTLIST = 4096

# llama_token_data's memory layout, for building candidate arrays with numpy.
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
GRAMMAR_ROOT = b"root"


def _init_grammar(model: LlamaModel, grammar: str):
    """A llama.cpp grammar sampler, or None when the GBNF text does not parse
    (llama.cpp logs why and returns NULL)."""
    sampler = llama_cpp.llama_sampler_init_grammar(model.vocab, grammar.encode("utf-8"), GRAMMAR_ROOT)
    return sampler or None


def grammar_parses(model: LlamaModel, grammar: str) -> bool:
    """Whether llama.cpp accepts ``grammar`` (GBNF, root rule "root") for this model."""
    sampler = _init_grammar(model, grammar)
    if sampler is None:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


class GrammarRefused(EngineError):
    """llama.cpp refused a grammar (it logs why)."""


class _GrammarConstraint:
    """One sequence's grammar. With trigger words it is lazy: it starts
    constraining at the first trigger word, fed with the text from that word on.

    llama.cpp's own lazy grammar feeds that text through llama_grammar_accept_str,
    which throws a C++ exception (and so aborts the process) when the text does
    not fit the grammar. Here the text is tokenized and each token checked
    before it is accepted; text that does not fit drops the grammar instead.

    The grammar is parsed when the constraint is made (on the thread that
    prepares the request), never on the decode thread: a lazy one waits,
    unused and so in its initial state, for its trigger."""

    def __init__(self, model: LlamaModel, grammar: str, triggers: tuple[str, ...], after: str = ""):
        self._model = model
        self._grammar = grammar
        self._triggers = tuple(t.encode("utf-8") for t in triggers if t)
        # Text before which triggers do not count (the model's reasoning).
        self._after = after.encode("utf-8") if self._triggers else b""
        self._watched = bytearray()
        self._single = llama_cpp.llama_token_data()
        self._single_array = llama_cpp.llama_token_data_array()
        self.dropped = False
        self._parsed = _init_grammar(model, grammar)
        if self._parsed is None:
            raise GrammarRefused("llama.cpp cannot parse the grammar")
        self._sampler = None if self._triggers else self._parsed

    @property
    def active(self) -> bool:
        return self._sampler is not None

    @property
    def sampler(self):
        return self._sampler

    def allows(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next (a one-candidate apply, as
        llama.cpp's common sampler checks a sampled token)."""
        self._single.id = token
        self._single.logit = 1.0
        self._single.p = 0.0
        self._single_array.data = ctypes.pointer(self._single)
        self._single_array.size = 1
        self._single_array.selected = -1
        self._single_array.sorted = False
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(self._single_array))
        return self._single.logit != -math.inf

    def accept(self, token: int) -> None:
        """Records a sampled token. End-of-generation tokens end the sequence
        and are not fed (llama.cpp aborts on one the grammar does not expect)."""
        if self.dropped or self._model.is_end_of_generation(token):
            return
        if self._sampler is not None:
            llama_cpp.llama_sampler_accept(self._sampler, token)
            return
        self._watch(self._model.token_piece(token, special=True))

    def _watch(self, piece: bytes) -> None:
        self._watched += piece
        if self._after:
            at = self._watched.find(self._after)
            if at < 0:
                del self._watched[: max(0, len(self._watched) - len(self._after) + 1)]
                return
            del self._watched[: at + len(self._after)]
            self._after = b""
        starts = [i for i in (self._watched.find(t) for t in self._triggers) if i >= 0]
        if not starts:
            # Keep only what could be the start of a trigger word.
            keep = max(len(t) for t in self._triggers) - 1
            del self._watched[: max(0, len(self._watched) - keep)]
            return
        constrained = bytes(self._watched[min(starts) :])
        self._watched.clear()
        self._sampler = self._parsed
        tokens = self._model.tokenize_bytes(constrained)
        fits = b"".join(self._model.token_piece(t, special=True) for t in tokens) == constrained
        for token in tokens if fits else ():
            if not self.allows(token):
                fits = False
                break
            llama_cpp.llama_sampler_accept(self._sampler, token)
        if not fits:
            log.warning("output after a grammar trigger does not fit the grammar; generating free text")
            self.close()
            self.dropped = True

    def close(self) -> None:
        if self._parsed is not None:
            llama_cpp.llama_sampler_free(self._parsed)
        self._parsed = self._sampler = None


class Sampler:
    """One sequence's sampling: logit bias, penalties, then top-k/top-p/min-p
    and temperature; optionally a grammar.

    With a grammar the chain samples as usual and only the chosen token is
    checked against the grammar (as llama.cpp's common sampler does). When it
    is rejected, the grammar is applied to the SHORTLIST most likely tokens
    first, and to the whole vocabulary (262k tokens on Gemma: 0.1-0.2 s) only
    when too few of those are allowed for the chain to choose as it would
    from all of them: the best allowed token is always among the most likely
    allowed ones, and a top-k chain never looks further."""

    def __init__(self, params: SamplingParams, seed: int, model: LlamaModel):
        self._model = model
        # Penalties lower at most PENALTY_LAST_N tokens; a positive bias or a
        # negative penalty can raise a token from outside the shortlist.
        raises = any(bias > 0 for _, bias in params.logit_bias) or params.presence_penalty < 0
        raises = raises or params.frequency_penalty < 0
        keeps = 1 if params.temperature <= 0 else params.top_k
        self._shortlist_needs = 0 if raises or keeps <= 0 else keeps + PENALTY_LAST_N
        self._n_vocab = model.n_vocab()
        self._chain = internals.LlamaSampler()
        if params.logit_bias:
            self._chain.add_logit_bias(self._n_vocab, dict(params.logit_bias))
        if params.repeat_penalty != 1.0 or params.presence_penalty or params.frequency_penalty:
            self._chain.add_penalties(
                self._n_vocab, PENALTY_LAST_N, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
            )
        if params.temperature <= 0:
            self._chain.add_greedy()
        else:
            if params.top_k > 0:
                self._chain.add_top_k(params.top_k)
            self._chain.add_top_p(params.top_p, 1)
            self._chain.add_min_p(params.min_p, 1)
            self._chain.add_temp(params.temperature)
            self._chain.add_dist(seed)
        self._grammar: _GrammarConstraint | None = None
        if params.grammar is not None:
            try:
                self._grammar = _GrammarConstraint(
                    model, params.grammar, params.grammar_triggers, params.grammar_triggers_after
                )
            except BaseException:
                self._chain.close()
                raise
            self._candidates = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
            self._ids = np.arange(self._n_vocab, dtype=np.int32)
            self._short = np.zeros(min(SHORTLIST, self._n_vocab), dtype=_TOKEN_DATA)
            self._array = llama_cpp.llama_token_data_array()

    def sample(self, context: LlamaContext, batch_index: int) -> int:
        """Samples from the logits at ``batch_index`` of the last decode, and records the token."""
        grammar = self._grammar
        if grammar is None or not grammar.active:
            token = llama_cpp.llama_sampler_sample(self._chain.sampler, context.ctx, batch_index)
            if grammar is not None:
                grammar.accept(token)  # watches for a trigger word
            return token
        logits = context.logits(batch_index, self._n_vocab)
        token = self._apply(logits, grammar_first=False)
        if not grammar.allows(token):
            token = self._apply_shortlist(logits)
            if token is None:
                token = self._apply(logits, grammar_first=True)
            if not grammar.allows(token):
                raise EngineError("the grammar allows no token here")
        llama_cpp.llama_sampler_accept(self._chain.sampler, token)
        grammar.accept(token)
        return token

    def accept(self, token: int) -> None:
        """Records ``token`` as chosen without sampling it (a token the engine feeds itself)."""
        llama_cpp.llama_sampler_accept(self._chain.sampler, token)
        grammar = self._grammar
        # A grammar never takes a token it does not allow (llama.cpp aborts on one).
        if grammar is not None and (not grammar.active or grammar.allows(token)):
            grammar.accept(token)

    def _apply_shortlist(self, logits: np.ndarray) -> int | None:
        """The chain's choice among the allowed tokens of the shortlist; None
        when too few of them are allowed to be sure it is the whole vocabulary's."""
        short = self._short
        if not self._shortlist_needs or len(short) >= self._n_vocab:
            return None
        top = np.argpartition(logits, -len(short))[-len(short) :]
        short["id"] = top
        short["logit"] = logits[top]
        short["p"] = 0.0
        array = self._array
        array.data = short.ctypes.data_as(llama_cpp.llama_token_data_p)
        array.size = len(short)
        array.selected = -1
        array.sorted = False
        assert self._grammar is not None
        llama_cpp.llama_sampler_apply(self._grammar.sampler, ctypes.byref(array))
        if np.count_nonzero(np.isfinite(short["logit"])) < self._shortlist_needs:
            return None
        llama_cpp.llama_sampler_apply(self._chain.sampler, ctypes.byref(array))
        return int(array.data[array.selected].id)

    def _apply(self, logits: np.ndarray, *, grammar_first: bool) -> int:
        candidates = self._candidates
        candidates["id"] = self._ids
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = self._array
        array.data = candidates.ctypes.data_as(llama_cpp.llama_token_data_p)
        array.size = self._n_vocab
        array.selected = -1
        array.sorted = False
        if grammar_first:
            assert self._grammar is not None
            llama_cpp.llama_sampler_apply(self._grammar.sampler, ctypes.byref(array))
        llama_cpp.llama_sampler_apply(self._chain.sampler, ctypes.byref(array))
        # Samplers may point data elsewhere (sorted copies): read through it.
        return int(array.data[array.selected].id)

    def close(self) -> None:
        if self._grammar is not None:
            self._grammar.close()
        self._chain.close()
