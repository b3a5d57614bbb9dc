"""GET /metrics: Prometheus text with request counts and latencies, tokens
from the engine's usage, and the engine's loaded models and queue."""

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hearth.adapter.app import create_app
from hearth.settings.adapter import AdapterSettings
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import free_port

MESSAGES = [{"role": "user", "content": "Monday, Tuesday,"}]


def scrape(server) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_tokens_and_engine_state(server):
    before = scrape(server)
    usages = []
    reply = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": TINY_MODEL_ID, "messages": MESSAGES, "max_tokens": 3, "temperature": 0},
        timeout=60,
    ).json()
    usages.append(reply["usage"])
    with httpx.stream(
        "POST",
        f"{server.base_url}/v1/completions",
        json={
                "model": TINY_MODEL_ID,
                "prompt": "Hello",
                "max_tokens": 4,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        timeout=60,
    ) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: {")]
    usages.append(json.loads(lines[-1][6:])["usage"])
    missing = httpx.post(
        f"{server.base_url}/v1/chat/completions", json={"model": "no-such-model", "messages": MESSAGES}, timeout=30
    )
    assert missing.status_code == 404
    after = scrape(server)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert delta("hearth_http_requests_total", status="200", **chat) == 1
    assert delta("hearth_http_requests_total", status="404", **chat) == 1
    assert delta("hearth_http_requests_total", route="/v1/completions", method="POST", status="200") == 1
    assert delta("hearth_http_request_duration_seconds_count", **chat) == 2
    assert delta("hearth_prompt_tokens_total", model=TINY_MODEL_ID) == sum(u["prompt_tokens"] for u in usages)
    assert delta("hearth_completion_tokens_total", model=TINY_MODEL_ID) == sum(u["completion_tokens"] for u in usages)
    assert delta("hearth_generations_total", model=TINY_MODEL_ID, outcome="length") == 2
    assert delta("hearth_time_to_first_token_seconds_count", model=TINY_MODEL_ID) == 2
    # Unknown model names never become labels.
    assert not any(("no-such-model" in str(labels)) for _, labels in after)
    assert value(after, "hearth_engine_up") == 1
    assert value(after, "hearth_loaded_models") >= 1
    assert value(after, "hearth_model_memory_bytes", model=TINY_MODEL_ID) > 0
    assert value(after, "hearth_model_active_requests", model=TINY_MODEL_ID) == 0
    assert value(after, "hearth_engine_memory_bytes") > 0


def test_queue_depth_and_cancelled_generations_are_seen(server):
    before = scrape(server)
    body = {"model": DEFAULT_MODEL_ID, "prompt": "Count from 1 to 500:", "max_tokens": 400, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/v1/completions", json=body, timeout=60) as stream:
        lines = stream.iter_lines()
        next(lines)
        during = scrape(server)
    assert value(during, "hearth_model_active_requests", model=DEFAULT_MODEL_ID) >= 1
    assert value(during, "hearth_queue_depth") >= 1
    assert value(during, "hearth_http_requests_in_flight") >= 2  # the stream and this scrape
    for _ in range(50):
        after = scrape(server)
        if value(after, "hearth_model_active_requests", model=DEFAULT_MODEL_ID) == 0:
            break
    cancelled = value(after, "hearth_generations_total", model=DEFAULT_MODEL_ID, outcome="cancelled") - value(
        before, "hearth_generations_total", model=DEFAULT_MODEL_ID, outcome="cancelled"
    )
    assert cancelled == 1


def test_metrics_when_the_engine_is_down():
    async def go() -> str:
        app = create_app(AdapterSettings(engine_address=f"127.0.0.1:{free_port()}", health_timeout=0.5))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:11434") as client:
                await client.get("/health")
                response = await client.get("/metrics")
                assert response.status_code == 200
                return response.text

    text = asyncio.run(go())
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["hearth_engine_up"].value == 0
    assert samples["hearth_loaded_models"].value == 0
    assert 'route="/health",status="503"' in text
