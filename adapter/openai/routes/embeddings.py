"""POST /v1/embeddings"""

import base64

import numpy as np
from fastapi import APIRouter, Request

from hearth.adapter.common.errors import invalid_request
from hearth.adapter.openai.protocol.embeddings import (
    MAX_INPUTS,
    EmbeddingData,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
)
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()


def _texts(body: EmbeddingRequest) -> list[str]:
    inputs = [body.input] if isinstance(body.input, str) else list(body.input)
    if not inputs:
        raise invalid_request("'input' must not be empty", param="input")
    if any(not isinstance(item, str) for item in inputs):
        # Token ids from the client's tokenizer (LangChain's OpenAIEmbeddings
        # sends tiktoken ids unless check_embedding_ctx_length=False) mean
        # nothing to this model's vocabulary.
        raise invalid_request(
            "Token-id input is not supported; send text (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))",
            param="input",
            code="unsupported_value",
        )
    if len(inputs) > MAX_INPUTS:
        raise invalid_request(f"At most {MAX_INPUTS} inputs are allowed per request", param="input")
    for index, text in enumerate(inputs):
        if not text:
            raise invalid_request(f"'input[{index}]' must not be empty", param="input")
    return inputs


def _encode(values, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")
    return list(values)


@router.post("/v1/embeddings")
async def create_embeddings(body: EmbeddingRequest, request: Request) -> EmbeddingList:
    texts = _texts(body)
    reply = await request.app.state.engine.embed(pb.EmbedRequest(model=body.model, inputs=texts))
    if body.dimensions is not None and reply.embeddings and body.dimensions != len(reply.embeddings[0].values):
        raise invalid_request(
            f"This model's embeddings have {len(reply.embeddings[0].values)} dimensions; "
            f"'dimensions' cannot change that",
            param="dimensions",
            code="unsupported_value",
        )
    return EmbeddingList(
        data=[
            EmbeddingData(index=index, embedding=_encode(item.values, body.encoding_format))
            for index, item in enumerate(reply.embeddings)
        ],
        model=body.model,
        usage=EmbeddingUsage(prompt_tokens=reply.prompt_tokens, total_tokens=reply.prompt_tokens),
    )
