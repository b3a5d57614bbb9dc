"""Tokenize and Detokenize: the model's own tokenizer, and the prompt a chat
request would get, token for token."""

from hearth.engine.blocking import run_to_completion
from hearth.engine.domain import GenerateParams, SamplingParams, TokenizeParams
from hearth.engine.errors import InvalidArgument
from hearth.engine.generation.prepare import check_text_fits, output_plan, prompt_tokens
from hearth.engine.generation.validation import validate_tokenize
from hearth.engine.runtime.loaded import LoadedModel
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.engine.service.models import ModelService
from hearth.engine.service.views import TokenizeResult


def _tokenize(loaded: LoadedModel, params: TokenizeParams) -> TokenizeResult:
    if params.messages is not None:
        chat = GenerateParams(
            model=loaded.id,
            messages=params.messages,
            prompt=None,
            max_tokens=None,
            stop=(),
            sampling=SamplingParams(),
            request_id="",
            tools=params.tools,
        )
        plan = output_plan(loaded, chat)[0] if params.tools else None
        tokens = prompt_tokens(loaded, chat, plan.template_tools if plan else None)
    else:
        assert params.text is not None
        check_text_fits(params.text, loaded.n_ctx, param="text", model=loaded.id, what="text")
        tokens = loaded.model.tokenize(params.text, add_special=params.add_special)
    pieces = [loaded.model.token_piece(t, special=True).decode("utf-8", "replace") for t in tokens]
    return TokenizeResult(tokens=tokens, pieces=pieces, context_window=loaded.n_ctx)


def _detokenize(loaded: LoadedModel, tokens: list[int]) -> str:
    n_vocab = loaded.model.n_vocab()
    outside = [t for t in tokens if not 0 <= t < n_vocab]
    if outside:
        raise InvalidArgument(
            f"'tokens' holds {outside[0]}, outside this model's vocabulary (0-{n_vocab - 1})", param="tokens"
        )
    return loaded.model.detokenize(tokens)


class TokenService:
    def __init__(self, models: ModelService, runtime: ModelRuntime):
        self._models = models
        self._runtime = runtime

    async def tokenize(self, params: TokenizeParams) -> TokenizeResult:
        """Tokens of ``text`` (BOS added when ``add_special``, special tokens
        parsed), or of ``messages`` (and ``tools``) rendered with the chat
        template exactly as generation renders them."""
        validate_tokenize(params.text, params.messages)
        loaded = await self._runtime.acquire(await self._models.record(params.model))
        try:
            return await run_to_completion(_tokenize, loaded, params)
        finally:
            self._runtime.release(loaded)

    async def detokenize(self, model_id: str, tokens: list[int]) -> str:
        loaded = await self._runtime.acquire(await self._models.record(model_id))
        try:
            return await run_to_completion(_detokenize, loaded, tokens)
        finally:
            self._runtime.release(loaded)
