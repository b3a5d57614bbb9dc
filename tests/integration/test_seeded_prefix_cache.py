"""A seeded request reuses a cached prefix of its prompt and still gives the
same text as without the cache: a follow-up turn over a long history reads
only what is past the last aligned chunk the slot already holds. Real
inference on the default model, one slot so that each case decides exactly
what that slot holds."""

import random
from pathlib import Path

import grpc
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.servers import EngineProcess

MODEL = "gemma-3-270m-q4_k_m"
SOURCE = Path(__file__).resolve().parents[2] / ".cache" / "models" / f"{MODEL}.gguf"
CHUNK = 128  # the scheduler's aligned chunk for seeded prompts (SEEDED_CHUNK)
WORDS = "river stone garden window morning quiet engine paper silver mountain letter forest".split()


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    if not SOURCE.exists():
        pytest.fail(f"{SOURCE} is missing: make test fetches the default model first")
    folder = tmp_path_factory.mktemp("seeded-models")
    (folder / f"{MODEL}.gguf").symlink_to(SOURCE)
    (folder / "config.json").write_text('{"models": []}')
    engine = EngineProcess(folder, folder / "config.json", folder / "engine.log", LLM_PARALLEL="1")
    try:
        with grpc.insecure_channel(engine.address) as channel:
            yield engine_pb2_grpc.EngineStub(channel)
    finally:
        engine.stop()


def generate(stub, prompt: str, seed: int) -> tuple[str, pb.Usage]:
    request = pb.GenerateRequest(model=MODEL, prompt=prompt, max_tokens=32, temperature=1.0, seed=seed)
    text, last = [], None
    for message in stub.Generate(request, timeout=300):
        text.append(message.text)
        last = message
    return "".join(text), last.usage


def cases(count: int) -> list[tuple[str, str, int]]:
    rng = random.Random(5)
    out = []
    for _ in range(count):
        history = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(300, 700)))
        follow_up = history + " " + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 120)))
        out.append((history, follow_up, rng.randrange(10**6)))
    return out


def test_a_seeded_follow_up_reads_from_the_cache_and_gives_the_same_text(stub):
    reused = 0
    for history, follow_up, seed in cases(4):
        # Uncached: the slot holds an unrelated prompt.
        generate(stub, "an unrelated prompt", 1)
        cold_text, cold = generate(stub, follow_up, seed)
        assert cold.cached_prompt_tokens == 0
        # Cached: the slot holds the history the follow-up extends.
        generate(stub, history, seed)
        warm_text, warm = generate(stub, follow_up, seed)
        assert warm.prompt_tokens == cold.prompt_tokens
        # Reused in whole aligned chunks, never the whole prompt.
        assert warm.cached_prompt_tokens % CHUNK == 0
        assert warm.cached_prompt_tokens < warm.prompt_tokens
        reused += warm.cached_prompt_tokens
        assert warm_text == cold_text, f"seed {seed}: the cached prefix changed the text"
    # Histories of 300+ words span at least two whole chunks each, and those were read from the cache.
    assert reused >= 2 * CHUNK * 4


def test_the_same_seeded_prompt_twice_reuses_its_own_chunks(stub):
    history, _, seed = cases(1)[0]
    first_text, first = generate(stub, history, seed)
    again_text, again = generate(stub, history, seed)
    assert again.cached_prompt_tokens >= CHUNK
    assert again_text == first_text
