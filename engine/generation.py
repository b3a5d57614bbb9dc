"""The serial generation loop for one request on one llama context."""

import codecs
import logging
import random

import llama_cpp

from hearth.engine import llama_backend
from hearth.engine.requests import Cancelled, Finished, FinishReason, GenerationJob, TextPiece
from hearth.engine.stop_strings import StopMatcher

log = logging.getLogger(__name__)


def run_generation(llm: llama_cpp.Llama, stop_token_ids: frozenset[int], job: GenerationJob) -> None:
    """Decode tokens for ``job`` and send its events; returns when it is done."""
    sampling = job.sampling
    if sampling.seed is not None:
        # Logits of a prompt evaluated in one batch differ in the last bits from
        # those of a cached prefix plus a suffix; a seeded request evaluates its
        # whole prompt so that the same seed gives the same text every time.
        llm.reset()
    llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(32))
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    matcher = StopMatcher(job.stop)
    generated = 0
    finish = FinishReason.LENGTH
    if job.cancel.is_set():
        job.sink(Cancelled(completion_tokens=0))
        return
    tokens = llm.generate(
        job.prompt_tokens,
        temp=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        min_p=sampling.min_p,
        repeat_penalty=sampling.repeat_penalty,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
    )
    try:
        for token in tokens:
            if job.cancel.is_set():
                job.sink(Cancelled(completion_tokens=generated))
                return
            if token in stop_token_ids or llama_backend.is_end_of_generation(llm, token):
                finish = FinishReason.STOP
                break
            generated += 1
            text = matcher.push(decoder.decode(llama_backend.token_piece(llm, token)))
            if text:
                job.sink(TextPiece(text))
            if matcher.stopped:
                finish = FinishReason.STOP
                break
            if generated >= job.max_new_tokens:
                break
    finally:
        tokens.close()
    tail = matcher.push(decoder.decode(b"", final=True)) + matcher.flush()
    if tail:
        job.sink(TextPiece(tail))
    job.sink(Finished(finish, prompt_tokens=len(job.prompt_tokens), completion_tokens=generated))
