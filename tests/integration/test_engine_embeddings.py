"""Embed, Tokenize and Detokenize over gRPC, against a real `hearth engine`
running real llama.cpp on the default model (Gemma 3 270M) and the tiny model."""

import threading
import time

import gguf
import grpc
import numpy as np
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import EngineProcess

# Gemma 3 270M's hidden size (gemma3.embedding_length).
GEMMA_WIDTH = 640
CAT = "The cat sat on the mat"
CAT_AGAIN = "A cat was sitting on the mat"
TAXES = "Quarterly tax filings are due in April"


@pytest.fixture
def stub(engine):
    with grpc.insecure_channel(engine.address) as channel:
        yield engine_pb2_grpc.EngineStub(channel)


def embed(stub, model: str, inputs: list[str], **fields) -> tuple[np.ndarray, int]:
    reply = stub.Embed(pb.EmbedRequest(model=model, inputs=inputs, **fields), timeout=300)
    return np.array([list(e.values) for e in reply.embeddings], dtype=np.float32), reply.prompt_tokens


def rpc_error(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, timeout=120, **kwargs)
    return read_rpc_error(raised.value)


# Embeddings


def test_one_unit_vector_per_input_with_the_models_width(stub):
    vectors, prompt_tokens = embed(stub, DEFAULT_MODEL_ID, [CAT, CAT_AGAIN, TAXES])
    assert vectors.shape == (3, GEMMA_WIDTH)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Usage counts the tokens the model read, BOS included, as Tokenize gives them.
    counted = [len(stub.Tokenize(pb.TokenizeRequest(model=DEFAULT_MODEL_ID, text=t)).tokens) for t in (CAT, CAT_AGAIN, TAXES)]
    assert prompt_tokens == sum(counted)


def test_similar_texts_are_closer_than_unrelated_ones(stub):
    (cat, cat_again, taxes), _ = embed(stub, DEFAULT_MODEL_ID, [CAT, CAT_AGAIN, TAXES])
    assert float(cat @ cat_again) > float(cat @ taxes)


def test_same_input_same_vector(stub):
    first, _ = embed(stub, DEFAULT_MODEL_ID, [TAXES])
    second, _ = embed(stub, DEFAULT_MODEL_ID, [TAXES])
    np.testing.assert_array_equal(first, second)


def test_batch_keeps_order_and_equals_one_by_one(stub):
    texts = [TAXES, CAT, "Un chat était assis sur le tapis 🐈", CAT_AGAIN]
    batch, batch_tokens = embed(stub, DEFAULT_MODEL_ID, texts)
    singles = [embed(stub, DEFAULT_MODEL_ID, [t]) for t in texts]
    for i, (vector, _) in enumerate(singles):
        np.testing.assert_allclose(batch[i], vector[0], atol=1e-4, err_msg=f"input {i}")
    assert batch_tokens == sum(tokens for _, tokens in singles)


def test_input_longer_than_the_context_fails_unless_truncated(stub):
    window = stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.context_window
    long_text = "hello world " * window
    info = rpc_error(stub.Embed, pb.EmbedRequest(model=TINY_MODEL_ID, inputs=["short", long_text]))
    assert (info.code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "CONTEXT_LENGTH_EXCEEDED")
    assert info.metadata["param"] == "input"
    assert "input[1]" in info.message

    vectors, prompt_tokens = embed(stub, TINY_MODEL_ID, ["short", long_text], truncate=True)
    assert vectors.shape[0] == 2
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    short_tokens = len(stub.Tokenize(pb.TokenizeRequest(model=TINY_MODEL_ID, text="short")).tokens)
    assert prompt_tokens == short_tokens + window


def test_far_too_long_input_is_refused_before_tokenizing_and_cut_when_truncated(stub):
    window = stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.context_window
    huge = "x" * (window * 64 + 1000)
    info = rpc_error(stub.Embed, pb.EmbedRequest(model=TINY_MODEL_ID, inputs=[huge]))
    assert (info.reason, info.metadata["param"]) == ("CONTEXT_LENGTH_EXCEEDED", "input")
    vectors, prompt_tokens = embed(stub, TINY_MODEL_ID, [huge], truncate=True)
    assert vectors.shape[0] == 1 and prompt_tokens <= window


@pytest.mark.parametrize("inputs", [[], [""], ["fine", ""]])
def test_empty_inputs_are_invalid(stub, inputs):
    info = rpc_error(stub.Embed, pb.EmbedRequest(model=TINY_MODEL_ID, inputs=inputs))
    assert (info.code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["param"] == "input"


def test_embedding_context_is_freed_with_the_model_and_made_again(stub):
    before, _ = embed(stub, TINY_MODEL_ID, [CAT])
    unloaded = stub.UnloadModel(pb.UnloadModelRequest(id=TINY_MODEL_ID)).model
    assert unloaded.state == pb.MODEL_STATE_UNLOADED
    after, _ = embed(stub, TINY_MODEL_ID, [CAT])
    np.testing.assert_array_equal(before, after)
    assert stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.state == pb.MODEL_STATE_READY


def test_embedding_while_a_generation_streams_on_the_same_model(stub):
    alone, _ = embed(stub, DEFAULT_MODEL_ID, [CAT])
    stream = stub.Generate(
        pb.GenerateRequest(
            model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=48, temperature=0
        ),
        timeout=300,
    )
    messages: list[pb.GenerateResponse] = []
    first_piece = threading.Event()

    def read() -> None:
        for message in stream:
            messages.append(message)
            first_piece.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert first_piece.wait(120)
        during, _ = embed(stub, DEFAULT_MODEL_ID, [CAT])
        received_by_then = len(messages)
    finally:
        reader.join(300)
    np.testing.assert_allclose(during, alone, atol=1e-4)
    # The stream went on after the embedding and ended normally.
    assert len(messages) > received_by_then
    final = messages[-1]
    assert final.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)
    assert final.usage.completion_tokens > 0
    assert "Thursday" in "".join(m.text for m in messages)


def test_cancelled_embedding_stops_and_frees_the_model(stub):
    # A full context of Gemma takes tens of seconds on two cores (every token's logits are computed).
    whole_context = "The cat sat on the mat. " * 2000
    call = stub.Embed.future(pb.EmbedRequest(model=DEFAULT_MODEL_ID, inputs=[whole_context], truncate=True), timeout=300)
    time.sleep(1.0)
    call.cancel()
    started = time.monotonic()
    vectors, _ = embed(stub, DEFAULT_MODEL_ID, [CAT])
    assert vectors.shape == (1, GEMMA_WIDTH)
    # It waited for at most the decode under way, not the rest of the input.
    assert time.monotonic() - started < 10


@pytest.fixture(scope="module")
def pooling_engine(tmp_path_factory, monkeypatch_module):
    """An engine serving the tiny model twice: as is (a causal LM, mean-pooled
    by Hearth) and declaring MEAN pooling as embedding models do (pooled by llama.cpp)."""
    folder = tmp_path_factory.mktemp("pooling-models")
    write_tiny_llama(folder / "plain.gguf")
    add_bos = gguf.GGUFWriter.add_add_bos_token

    def add_bos_and_pooling(writer, value):
        add_bos(writer, value)
        writer.add_pooling_type(gguf.PoolingType.MEAN)

    monkeypatch_module.setattr(gguf.GGUFWriter, "add_add_bos_token", add_bos_and_pooling)
    write_tiny_llama(folder / "pooled.gguf")
    monkeypatch_module.undo()
    process = EngineProcess(folder, folder / "config.json", tmp_path_factory.mktemp("logs") / "engine.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_declared_pooling_agrees_with_hearths_own_mean_pooling(pooling_engine):
    texts = ["hello world", "a b c d e f g " * 30, "x" * 600]
    with grpc.insecure_channel(pooling_engine.address) as channel:
        pooling_stub = engine_pb2_grpc.EngineStub(channel)
        plain, plain_tokens = embed(pooling_stub, "plain", texts, truncate=True)
        pooled, pooled_tokens = embed(pooling_stub, "pooled", texts, truncate=True)
    assert plain.shape == pooled.shape == (3, 64)
    assert plain_tokens == pooled_tokens
    np.testing.assert_allclose(plain, pooled, atol=1e-5)
    assert "mean pooling" in pooling_engine.log() and "the model's pooling" in pooling_engine.log()


# Tokenize and detokenize


@pytest.mark.parametrize(
    "text",
    ["Monday, Tuesday, Wednesday,", "naïve café, Grüße aus Köln — 東京タワー", "emoji 🙂👍🏽 and 🐈‍⬛!"],
)
def test_tokenize_detokenize_round_trip(stub, text):
    reply = stub.Tokenize(pb.TokenizeRequest(model=DEFAULT_MODEL_ID, text=text))
    assert reply.context_window == 32768  # the trained context: the memory budget allows it
    assert reply.pieces[0] == "<bos>"  # added as generation adds it
    assert len(reply.pieces) == len(reply.tokens)
    assert stub.Detokenize(pb.DetokenizeRequest(model=DEFAULT_MODEL_ID, tokens=reply.tokens)).text == text
    bare = stub.Tokenize(pb.TokenizeRequest(model=DEFAULT_MODEL_ID, text=text, add_special=False))
    assert list(bare.tokens) == list(reply.tokens[1:])
    assert stub.Detokenize(pb.DetokenizeRequest(model=DEFAULT_MODEL_ID, tokens=bare.tokens)).text == text


def test_pieces_join_to_the_text(stub):
    text = "naïve café, Grüße aus Köln. The cat sat on the mat."
    reply = stub.Tokenize(pb.TokenizeRequest(model=DEFAULT_MODEL_ID, text=text, add_special=False))
    assert len(reply.tokens) > 5
    assert "".join(reply.pieces) == text


def test_special_tokens_written_in_text_are_parsed(stub):
    reply = stub.Tokenize(pb.TokenizeRequest(model=DEFAULT_MODEL_ID, text="<start_of_turn>user", add_special=False))
    assert reply.pieces[0] == "<start_of_turn>"
    assert len(reply.tokens) == 2


def test_messages_are_rendered_with_the_chat_template(stub):
    reply = stub.Tokenize(
        pb.TokenizeRequest(model=DEFAULT_MODEL_ID, messages=[pb.ChatMessage(role="user", content="Name three colours.")])
    )
    assert reply.pieces[0] == "<bos>"
    assert list(reply.pieces).count("<start_of_turn>") == 2  # the user turn and the model's
    assert "<end_of_turn>" in reply.pieces
    text = stub.Detokenize(pb.DetokenizeRequest(model=DEFAULT_MODEL_ID, tokens=reply.tokens)).text
    assert "<start_of_turn>user\nName three colours.<end_of_turn>" in text
    assert text.endswith("<start_of_turn>model\n")


def test_tokenize_needs_exactly_one_of_text_and_messages(stub):
    info = rpc_error(stub.Tokenize, pb.TokenizeRequest(model=TINY_MODEL_ID))
    assert (info.reason, info.metadata["param"]) == ("INVALID_ARGUMENT", "text")
    both = pb.TokenizeRequest(model=TINY_MODEL_ID, text="hi", messages=[pb.ChatMessage(role="user", content="hi")])
    assert rpc_error(stub.Tokenize, both).reason == "INVALID_ARGUMENT"
    bad_role = pb.TokenizeRequest(model=TINY_MODEL_ID, messages=[pb.ChatMessage(role="wizard", content="hi")])
    assert rpc_error(stub.Tokenize, bad_role).metadata["param"] == "messages.role"


@pytest.mark.parametrize("tokens", [[-1], [2, 10**9]])
def test_detokenize_refuses_ids_outside_the_vocabulary(stub, tokens):
    info = rpc_error(stub.Detokenize, pb.DetokenizeRequest(model=DEFAULT_MODEL_ID, tokens=tokens))
    assert (info.code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["param"] == "tokens"


def test_unknown_model_is_not_found(stub):
    calls = [
        (stub.Embed, pb.EmbedRequest(model="no-such-model", inputs=["hi"])),
        (stub.Tokenize, pb.TokenizeRequest(model="no-such-model", text="hi")),
        (stub.Detokenize, pb.DetokenizeRequest(model="no-such-model", tokens=[1])),
    ]
    for call, request in calls:
        info = rpc_error(call, request)
        assert (info.code, info.reason) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
        assert info.metadata["param"] == "model"
