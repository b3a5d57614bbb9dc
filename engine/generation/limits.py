"""Every limit a generation request is checked against, defined once (the
validation gate reads them; adapters refuse nothing of their own here)."""

MAX_STOP_STRINGS = 16
MAX_STOP_STRING_CHARS = 1000
MAX_TOP_LOGPROBS = 20
MAX_LOGIT_BIAS = 100.0
MAX_TOOLS = 256

# (low, high) of each sampling parameter, both ends allowed.
SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 1_000_000),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 10.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
