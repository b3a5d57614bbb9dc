"""POST /tokenize and /detokenize: the model's own tokenizer, for clients that
count tokens (paths as vLLM and llama.cpp's server have them)."""

from fastapi import APIRouter, Request

from hearth.adapter.common.errors import invalid_request
from hearth.adapter.openai.protocol.chat import ChatCompletionRequest
from hearth.adapter.openai.protocol.tokenize import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from hearth.adapter.openai.translate import chat_to_generate
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()


def _tokenize_request(body: TokenizeRequest) -> pb.TokenizeRequest:
    given = [name for name in ("prompt", "content", "messages") if getattr(body, name) is not None]
    if len(given) != 1:
        raise invalid_request("Give exactly one of 'prompt', 'content' and 'messages'", param="prompt")
    request = pb.TokenizeRequest(model=body.model, add_special=body.add_special_tokens)
    if body.messages is not None:
        # The chat endpoint's own translation, so that counts match what a chat request evaluates.
        chat = chat_to_generate(ChatCompletionRequest(model=body.model, messages=body.messages), "tokenize")
        request.messages.extend(chat.messages)
    else:
        request.text = body.prompt if body.prompt is not None else body.content or ""
    return request


@router.post("/tokenize")
@router.post("/v1/tokenize")
async def tokenize(body: TokenizeRequest, request: Request) -> TokenizeResponse:
    reply = await request.app.state.engine.tokenize(_tokenize_request(body))
    return TokenizeResponse(
        tokens=list(reply.tokens),
        count=len(reply.tokens),
        max_model_len=reply.context_window,
        pieces=list(reply.pieces) if body.with_pieces else None,
    )


@router.post("/detokenize")
@router.post("/v1/detokenize")
async def detokenize(body: DetokenizeRequest, request: Request) -> DetokenizeResponse:
    for index, token in enumerate(body.tokens):
        if not 0 <= token < 2**31:
            raise invalid_request(f"'tokens[{index}]' is not a token id", param="tokens")
    reply = await request.app.state.engine.detokenize(pb.DetokenizeRequest(model=body.model, tokens=body.tokens))
    return DetokenizeResponse(prompt=reply.text)
