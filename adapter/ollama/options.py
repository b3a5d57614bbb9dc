"""Ollama's `options`, `format` and `keep_alive` -> GenerateRequest fields.

Options Hearth honours are set on the request; options that only tune how
Ollama's own runner loads or threads a model mean nothing here and are
ignored; sampling options Hearth cannot honour are refused with a 400 unless
they hold their no-op value. Unknown keys are ignored, as Ollama ignores them."""

import json
import math
import re
from typing import Any

from hearth.adapter.ollama.errors import bad_request
from hearth.client import OLLAMA_SAMPLING
from hearth.engine.v1 import engine_pb2 as pb

# Load-time and runner settings of Ollama's own llama.cpp runner: the engine
# decides these for every request alike (LLM_THREADS, LLM_USE_GPU, ...).
# num_ctx is here too: the engine serves each model with one context size
# (the smaller of its trained context and LLM_CONTEXT_SIZE) and a request
# cannot raise it. num_keep only matters to context shifting, which Hearth
# does not do (a full context ends the answer with "length").
IGNORED = frozenset(
    {
        "num_ctx", "num_batch", "num_gpu", "main_gpu", "low_vram", "f16_kv", "logits_all", "vocab_only",
        "use_mmap", "use_mlock", "embedding_only", "numa", "num_thread", "num_keep", "penalize_newline",
    }
)  # fmt: skip

# Sampling options Hearth's sampler does not have, with the value that leaves
# sampling unchanged (which clients send as "default"), accepted as such.
_UNSUPPORTED_UNLESS = {"mirostat": 0, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "tfs_z": 1.0, "typical_p": 1.0, "repeat_last_n": 64}

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")

# keep_alive_seconds meaning "until unloaded".
FOREVER = -1.0
# Go's longest duration, which Ollama uses for "forever"; anything longer is forever.
LONGEST_SECONDS = (2**63 - 1) / 1e9


def _go_duration_seconds(text: str) -> float | None:
    """Go's time.ParseDuration ("1h30m", "-5m", "300ms"), in seconds; None if malformed."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if not body:
        return None
    total, position = 0.0, 0
    for part in _DURATION_PART.finditer(body):
        if part.start() != position:
            return None
        total += float(part[1]) * _SECONDS_PER_UNIT[part[2]]
        position = part.end()
    return sign * total if position == len(body) else None


def keep_alive_seconds(value: float | str | None) -> float | None:
    """Ollama's keep_alive in the engine's terms: seconds to stay loaded after
    the request; -1 to stay until unloaded (any negative value); 0 to unload
    once idle; None when not given (the engine's default applies)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_request("keep_alive must be a duration such as \"5m\" or a number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        if _NUMBER.match(text):
            # Not Go syntax, but what people type; a bare number means seconds.
            seconds = float(text)
        elif (parsed := _go_duration_seconds(text)) is not None:
            seconds = parsed
        else:
            raise bad_request(f"invalid keep_alive '{value}': use a duration such as \"5m\" or \"1h30m\", or seconds")
    if not math.isfinite(seconds):
        raise bad_request("keep_alive must be a finite duration")
    return FOREVER if seconds < 0 or seconds > LONGEST_SECONDS else seconds


def _typed(name: str, value: Any, kind: type) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"invalid option '{name}': expected a number, got {json.dumps(value)[:40]}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad_request(f"invalid option '{name}': expected an integer, got {value}")
        return int(value)
    if not math.isfinite(value):
        raise bad_request(f"invalid option '{name}': expected a finite number")
    return float(value)


def _stops(value: Any) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad_request("invalid option 'stop': expected a list of strings")
    return [s for s in stops if s]


def apply_options(options: dict[str, Any] | None, generate: pb.GenerateRequest) -> None:
    for name, value in (options or {}).items():
        if value is None or name in IGNORED:
            continue
        if name in OLLAMA_SAMPLING:
            field, kind = OLLAMA_SAMPLING[name]
            number = _typed(name, value, kind)
            if kind is int and not 0 <= number < 2**31:
                raise bad_request(f"invalid option '{name}': {number} is out of range")
            setattr(generate, field, number)
        elif name == "num_predict":
            count = _typed(name, value, int)
            if count < -2:
                raise bad_request("invalid option 'num_predict': use a positive count, or -1 for no limit")
            # -1 (no limit), -2 (until the context is full) and 0 leave it unset:
            # the engine then generates until the model stops or the context is full;
            # -1 and -2 ask for that even where the model's defaults set a length.
            if count > 0:
                generate.max_tokens = min(count, 2**32 - 1)
            elif count < 0:
                generate.without_model_defaults.append("max_tokens")
        elif name == "seed":
            seed = _typed(name, value, int)
            # Ollama's -1 (and any negative seed) means a random one, even where the model's defaults set a seed.
            if seed >= 0:
                generate.seed = seed % 2**64
            else:
                generate.without_model_defaults.append("seed")
        elif name == "stop":
            generate.stop.extend(_stops(value))
        elif name in _UNSUPPORTED_UNLESS:
            if _typed(name, value, float) != _UNSUPPORTED_UNLESS[name]:
                raise bad_request(f"option '{name}' is not supported by Hearth (leave it at {_UNSUPPORTED_UNLESS[name]})")


def apply_format(fmt: str | dict | None, generate: pb.GenerateRequest) -> None:
    """Ollama's `format`: "json" for any JSON object, a JSON schema object for
    output valid against it; absent or "" for free text."""
    if fmt is None or fmt == "":
        return
    if fmt == "json":
        generate.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    elif isinstance(fmt, dict):
        generate.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
        generate.response_format.json_schema = json.dumps(fmt)
    else:
        raise bad_request(f"invalid format '{fmt}': use \"json\" or a JSON schema object")


def apply_keep_alive(value: float | str | None, generate: pb.GenerateRequest) -> float | None:
    seconds = keep_alive_seconds(value)
    if seconds is not None:
        generate.keep_alive_seconds = seconds
    return seconds
