"""Chat templates: the GGUF's own (untrusted Jinja, rendered in a sandboxed
worker process), a per-model override from the config, or a built-in one
chosen by architecture."""

from jinja2 import Template
from jinja2 import TemplateError as JinjaTemplateError

from hearth.engine.errors import TemplateError
from hearth.engine.templates.builtin import BUILTIN_TEMPLATES, builtin_template_name
from hearth.engine.templates.sandbox import (
    compile_error,
    environment,
    render_bounded,
    render_error,
    render_limit,
)
from hearth.engine.templates.tool_adaptation import adapt_for_template
from hearth.engine.templates.workers import (
    PoolClosed,
    WorkerGone,
    WorkerPool,
    WorkersBusy,
    WorkerTimeout,
)

# Limits for untrusted templates. A render that runs longer is stopped (its
# worker process is killed and replaced); compiling gets longer, once per load.
RENDER_TIMEOUT_SECONDS = 3.0
COMPILE_TIMEOUT_SECONDS = 5.0
# Worker processes at most (concurrent untrusted renders).
WORKERS = 4


_POOL = WorkerPool(WORKERS, "hearth.engine.templates.sandbox")


def shutdown_renderers() -> None:
    """Stop the template worker processes (they also exit when the engine does)."""
    _POOL.close()


def _in_worker(request: dict, timeout: float) -> dict:
    try:
        return _POOL.call(request, timeout)
    except WorkerTimeout as exc:
        message = f"the model's chat template did not finish within {timeout:g} seconds"
        raise TemplateError(message, param="messages") from exc
    except WorkersBusy as exc:
        raise TemplateError("every chat template renderer is busy; try again", param="messages") from exc
    except PoolClosed as exc:
        raise TemplateError("the engine is shutting down", param="messages") from exc
    except WorkerGone as exc:
        message = "the model's chat template used too much memory or crashed its renderer"
        raise TemplateError(message, param="messages") from exc
    except OSError as exc:
        raise TemplateError(f"cannot start a chat template renderer: {exc.strerror or exc}", param="messages") from exc
    except (ValueError, RecursionError) as exc:  # the request does not serialize (circular, too deep)
        raise TemplateError("the messages or tools cannot be passed to the chat template", param="messages") from exc


class ChatTemplate:
    """A template with the special-token strings it is rendered with.

    Built-in templates are trusted and render in this process. Any other
    template (from a GGUF file or the config file) is compiled and rendered in
    a sandboxed worker process, with a time limit, a memory limit and a limit
    on the size of what it writes."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str, origin: str, stop: tuple[str, ...] = ()):
        self.origin = origin
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.stop = stop
        self._source = source
        self._template: Template | None = None
        if origin.startswith("builtin:"):
            try:
                self._template = environment().from_string(source)
            except JinjaTemplateError as exc:
                raise TemplateError(compile_error(exc), param="messages") from exc
            return
        reply = _in_worker({"op": "compile", "source": source}, COMPILE_TIMEOUT_SECONDS)
        if not reply.get("ok"):
            raise TemplateError(str(reply.get("error", "the model's chat template does not compile")), param="messages")

    @property
    def family(self) -> str | None:
        """The built-in template's name ("gemma", "llama3", ...); None for a model's or the config's own."""
        if self.origin.startswith("builtin:"):
            return self.origin.removeprefix("builtin:")
        return None

    @property
    def source(self) -> str:
        return self._source

    def render(self, messages: list[dict], tools: list[dict] | None = None, variables: dict | None = None) -> str:
        """``variables``: more template variables (enable_thinking, reasoning_effort)."""
        if self._template is None:
            messages, tools = adapt_for_template(self._source, messages, tools)
        context = {
            **(variables or {}),
            "messages": messages,
            "add_generation_prompt": True,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        if tools is not None:
            context["tools"] = tools
        max_chars = render_limit(messages, tools)
        if self._template is not None:
            try:
                return render_bounded(self._template, context, max_chars)
            except Exception as exc:  # template bugs and limits alike fail this request only
                raise TemplateError(render_error(exc), param="messages") from exc
        reply = _in_worker(
            {"op": "render", "source": self._source, "context": context, "max_chars": max_chars},
            RENDER_TIMEOUT_SECONDS,
        )
        if not reply.get("ok"):
            raise TemplateError(str(reply.get("error", "the model's chat template failed")), param="messages")
        return str(reply["text"])


def choose_template(
    *, gguf_template: str | None, override: str | None, architecture: str, bos_token: str, eos_token: str
) -> ChatTemplate:
    if override:
        return ChatTemplate(override, bos_token=bos_token, eos_token=eos_token, origin="config")
    if gguf_template:
        return ChatTemplate(gguf_template, bos_token=bos_token, eos_token=eos_token, origin="gguf")
    name = builtin_template_name(architecture)
    builtin = BUILTIN_TEMPLATES[name]
    return ChatTemplate(
        builtin.source, bos_token=bos_token, eos_token=eos_token, origin=f"builtin:{name}", stop=builtin.stop
    )


def normalize_messages(messages: list[dict]) -> list[dict]:
    """OpenAI's 'developer' role is a system message to every template we know."""
    return [{**m, "role": "system" if m["role"] == "developer" else m["role"]} for m in messages]
