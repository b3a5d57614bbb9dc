"""An HTTP client that goes away cancels its generation in the engine."""

import time

import httpx

from tests.helpers.models import DEFAULT_MODEL_ID
from tests.helpers.servers import cancelled_during

LONG = {"model": DEFAULT_MODEL_ID, "messages": [{"role": "user", "content": "Count from 1 to 1000."}], "max_tokens": 3000}


def test_stream_disconnect_cancels_generation(server):
    def read_a_little_then_leave():
        with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json={**LONG, "stream": True}, timeout=60) as r:
            for n, _ in enumerate(r.iter_lines()):
                if n > 10:
                    break

    cancelled = cancelled_during(server.engine_address, read_a_little_then_leave)
    assert cancelled[-1].completion_tokens < 300
    _model_is_free(server)


def test_non_stream_disconnect_cancels_generation(server):
    def give_up_early():
        try:
            httpx.post(f"{server.base_url}/v1/chat/completions", json=LONG, timeout=1.5)
        except httpx.TimeoutException:
            pass

    cancelled = cancelled_during(server.engine_address, give_up_early)
    assert cancelled[-1].duration_seconds < 10
    _model_is_free(server)


def _model_is_free(server) -> None:
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": DEFAULT_MODEL_ID, "prompt": "Hello", "max_tokens": 3},
        timeout=30,
    )
    assert response.status_code == 200
    assert time.monotonic() - started < 5
