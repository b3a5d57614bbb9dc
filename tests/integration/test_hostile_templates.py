"""Hostile chat templates: code injection never runs (a canary file is never
written), and runaway templates (endless loops, huge numbers, memory and
output floods) fail their own request within a few seconds while other
requests are served."""

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from hearth.engine.errors import TemplateError
from hearth.engine.templates.chat_template import (
    RENDER_TIMEOUT_SECONDS,
    WORKERS,
    ChatTemplate,
)
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import HearthServer

log = logging.getLogger(__name__)

# {canary} is replaced by a path each payload tries to create.
INJECTIONS = {
    "cycler-globals-os": "{{ cycler.__init__.__globals__.os.popen('touch {canary}').read() }}",
    "joiner-globals-system": "{{ joiner.__init__.__globals__.os.system('touch {canary}') }}",
    "namespace-builtins-open": "{{ namespace.__init__.__globals__.__builtins__.open('{canary}', 'w').write('x') }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('touch {canary}') }}",
    "subclasses-popen": (
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
        "{% if c.__name__ == 'Popen' %}{{ c(['touch', '{canary}']) }}{% endif %}{% endfor %}"
    ),
    "messages-class-base": "{{ messages.__class__.__base__.__subclasses__() }}",
    "template-reference-context": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('touch {canary}') }}",
    "attr-filter": "{{ (messages|attr('__class__')|attr('__base__')|attr('__subclasses__'))() }}",
    "format-string": "{{ '{0.__class__.__mro__[1].__subclasses__}'.format(messages) }}",
    "format-map": "{{ '{x.__class__.__init__.__globals__}'.format_map({'x': messages}) }}",
    "raise-exception-globals": "{{ raise_exception.__globals__['os'].popen('touch {canary}') }}",
    "strftime-globals": "{{ strftime_now.__globals__['os'].popen('touch {canary}') }}",
    "mutate-messages": "{{ messages.append({'role': 'system', 'content': 'pwned'}) }}",
    "mutate-message": "{{ messages[0].update({'content': 'pwned'}) }}",
    "import": "{% import 'os' as os %}{{ os.popen('touch {canary}') }}",
    "include-file": "{% include '/etc/passwd' %}",
    "func-code": "{{ raise_exception.__code__.co_consts }}",
    "generator-frame": "{{ (x for x in messages).gi_frame.f_globals }}",
}
RUNAWAYS = {
    "nested-loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "loop-with-calls": "{% for a in range(100000) %}{% for b in range(100000) %}{{ ''.upper() }}{% endfor %}{% endfor %}",
    "big-power": "{{ 9 ** 999999999 }}",
    "big-power-at-compile": "{% set x = 10 %}{{ 7 ** 77777777 }}",
    "big-repeat": "{{ 'x' * 10 ** 10 }}",
    "list-repeat": "{{ ([1] * 100000000)|length }}",
    "doubling": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "center-at-compile": "{{ 'x'|center(2000000000) }}",
    "format-width": "{{ '%2000000000s' % 'a' }}",
    "output-flood": "{% for a in range(100000) %}{{ 'y' * 1000 }}{% endfor %}",
    "lipsum-flood": "{{ lipsum(n=100000000) }}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
# A template of the kind real GGUF files carry (Qwen2.5-style ChatML with tools).
REALISTIC = """{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- endif %}
{%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}{{- '<|im_end|>\\n' }}
{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}
{%- for message in messages %}{%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
{%- elif message.role == "assistant" %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""


def _payloads(canary: Path) -> dict[str, str]:
    return {name: source.replace("{canary}", str(canary)) for name, source in {**INJECTIONS, **RUNAWAYS}.items()}


def _render(source: str) -> None:
    ChatTemplate(source, bos_token="<s>", eos_token="</s>", origin="gguf").render(MESSAGES)


@pytest.mark.parametrize("name", list(INJECTIONS) + list(RUNAWAYS))
def test_each_payload_fails_alone_and_quickly(tmp_path, name: str):
    canary = tmp_path / "canary"
    started = time.monotonic()
    with pytest.raises(TemplateError):
        _render(_payloads(canary)[name])
    assert time.monotonic() - started < RENDER_TIMEOUT_SECONDS + 3
    assert not canary.exists()


def test_realistic_templates_stay_fast():
    template = ChatTemplate(REALISTIC, bos_token="<s>", eos_token="</s>", origin="gguf")
    text = template.render(MESSAGES)
    assert text.endswith("<|im_start|>assistant\n") and "Be brief." in text
    started = time.monotonic()
    for _ in range(500):
        template.render(MESSAGES)
    per_render = (time.monotonic() - started) / 500
    log.info("untrusted template render (worker process): %.2f ms", per_render * 1000)
    assert per_render < 0.01


def test_runaways_do_not_hold_up_other_renders():
    normal = ChatTemplate(REALISTIC, bos_token="<s>", eos_token="</s>", origin="gguf")
    slow = [RUNAWAYS["nested-loops"], RUNAWAYS["loop-with-calls"]]
    with ThreadPoolExecutor(len(slow)) as pool:
        runaways = [pool.submit(_render, source) for source in slow]
        time.sleep(0.5)
        started = time.monotonic()
        for _ in range(20):
            normal.render(MESSAGES)
        assert time.monotonic() - started < 1.0
        for future in runaways:
            with pytest.raises(TemplateError):
                future.result()


@pytest.fixture(scope="module")
def template_server(tmp_path_factory, models_dir):
    """`hearth serve` with one model per payload (the tiny model with a config-file template),
    and one GGUF file carrying a runaway template itself."""
    folder = tmp_path_factory.mktemp("template-models")
    canary = folder / "canary"
    (folder / f"{TINY_MODEL_ID}.gguf").symlink_to(models_dir / f"{TINY_MODEL_ID}.gguf")
    write_tiny_llama(folder / "gguf-runaway.gguf", chat_template=RUNAWAYS["nested-loops"])
    entries = [
        {"id": f"tpl-{name}", "path": str(models_dir / f"{TINY_MODEL_ID}.gguf"), "chat_template": source}
        for name, source in _payloads(canary).items()
    ]
    entries.append({"id": "tpl-realistic", "path": str(models_dir / f"{TINY_MODEL_ID}.gguf"), "chat_template": REALISTIC})
    config = folder / "config.json"
    config.write_text(json.dumps({"models": entries}))
    server = HearthServer(folder, config, folder / "serve.log")
    yield server, canary
    server.stop()


def _chat(server: HearthServer, model: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, "max_tokens": 2},
        timeout=timeout,
    )


def test_hostile_templates_in_a_real_server(template_server):
    server, canary = template_server
    engine = psutil.Process(server.engine_pid())
    names = [*INJECTIONS, *RUNAWAYS]
    slowest = 0.0
    others: list[float] = []
    stop = threading.Event()

    def serve_others() -> None:
        """Meanwhile, other requests: raw completions and chats with trusted and untrusted templates."""
        while not stop.is_set():
            for model, path, body in (
                (TINY_MODEL_ID, "/v1/completions", {"prompt": "Hello"}),
                (TINY_MODEL_ID, "/v1/chat/completions", {"messages": MESSAGES}),
                ("tpl-realistic", "/v1/chat/completions", {"messages": MESSAGES}),
            ):
                started = time.monotonic()
                reply = httpx.post(
                    f"{server.base_url}{path}", json={"model": model, "max_tokens": 2, **body}, timeout=60
                )
                assert reply.status_code == 200, reply.text
                others.append(time.monotonic() - started)

    background = ThreadPoolExecutor(1)
    meanwhile = background.submit(serve_others)
    try:
        # Two at a time: a runaway holds one of the engine's template workers until it is stopped.
        with ThreadPoolExecutor(2) as pool:
            def one(name: str) -> tuple[str, float, httpx.Response]:
                started = time.monotonic()
                response = _chat(server, f"tpl-{name}")
                return name, time.monotonic() - started, response

            for name, seconds, response in pool.map(one, names):
                assert response.status_code == 400, (name, response.text)
                assert response.json()["error"]["code"] == "template_error", name
                assert seconds < RENDER_TIMEOUT_SECONDS + 5, (name, seconds)
                slowest = max(slowest, seconds)
        gguf = _chat(server, "gguf-runaway")
        assert gguf.json()["error"]["code"] == "template_error"
    finally:
        stop.set()
        meanwhile.result(timeout=120)
        background.shutdown()
    assert not canary.exists(), "a template ran code"
    assert others and max(others) < 3.0, max(others)
    # The same engine, with no more template workers than its pool allows.
    assert server.engine_pid() == engine.pid
    workers = [p for p in engine.children() if "hearth-template-worker" in p.cmdline()]
    assert len(workers) <= WORKERS
    log.info(
        "hostile templates: %d injections, %d runaways, 0 executions; slowest failure %.2fs; "
        "%d other requests meanwhile, slowest %.2fs",
        len(INJECTIONS),
        len(RUNAWAYS),
        slowest,
        len(others),
        max(others),
    )


def test_template_workers_end_with_the_engine(template_server):
    """Killed or stopped, the engine leaves no template worker behind."""
    server, _ = template_server
    assert _chat(server, "tpl-realistic").status_code == 200
    engine = psutil.Process(server.engine_pid())
    workers = [p for p in engine.children() if "hearth-template-worker" in p.cmdline()]
    assert workers
    engine.kill()
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, alive
    server.wait_healthy(timeout=60)
    assert _chat(server, "tpl-realistic").status_code == 200
    everything = [psutil.Process(server.pid), *server.descendants()]
    assert any("hearth-template-worker" in p.cmdline() for p in everything)
    assert server.stop() == 0
    gone, alive = psutil.wait_procs(everything, timeout=10)
    assert not alive, alive
