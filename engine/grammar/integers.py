"""Integer bounds in GBNF.

The converter bundled with llama-cpp-python ignores minimum, maximum and
their exclusive forms: a schema asking for an offset > 0 got -1. This spells
an integer range out in GBNF, digit by digit; grammar.converter uses it for
every integer schema with bounds."""

import math

# Digits of an unbounded integer, as the converter's own integral-part allows.
MAX_DIGITS = 16


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer_bounds(schema: dict) -> tuple[int | None, int | None]:
    """The smallest and largest integer ``schema`` allows (None: unbounded);
    both the draft-4 boolean and the later numeric exclusive forms are read."""
    low = high = None
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    exclusive_min, exclusive_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _number(minimum):
        low = math.floor(minimum) + 1 if exclusive_min is True and minimum == math.floor(minimum) else math.ceil(minimum)
    if _number(exclusive_min):
        low = max(low if low is not None else -math.inf, math.floor(exclusive_min) + 1)
    if _number(maximum):
        high = math.ceil(maximum) - 1 if exclusive_max is True and maximum == math.ceil(maximum) else math.floor(maximum)
    if _number(exclusive_max):
        high = min(high if high is not None else math.inf, math.ceil(exclusive_max) - 1)
    if low is not None and high is not None and low > high:
        raise ValueError(f"no integer lies between the schema's bounds {low} and {high}")
    return low, high


def _same_length(low: str, high: str) -> list[str]:
    """GBNF alternatives for the digit strings of one length from ``low`` to ``high``."""
    if low == high:
        return [f'"{low}"']
    if len(low) == 1:
        return [f"[{low}-{high}]"]
    if low[0] == high[0]:
        return [f'"{low[0]}" (' + " | ".join(_same_length(low[1:], high[1:])) + ")"]
    rest = len(low) - 1
    alternatives = []
    first, last, tail = low[0], high[0], None
    if low[1:] != "0" * rest:
        alternatives.append(f'"{low[0]}" (' + " | ".join(_same_length(low[1:], "9" * rest)) + ")")
        first = chr(ord(low[0]) + 1)
    if high[1:] != "9" * rest:
        tail = f'"{high[0]}" (' + " | ".join(_same_length("0" * rest, high[1:])) + ")"
        last = chr(ord(high[0]) - 1)
    if first <= last:
        alternatives.append(f"[{first}-{last}] [0-9]{{{rest}}}")
    if tail is not None:
        alternatives.append(tail)
    return alternatives


def _naturals(low: int, high: int | None) -> list[str]:
    """Alternatives for the decimal forms of the integers from ``low`` (>= 0) to ``high`` (None: any)."""
    alternatives = []
    shortest = len(str(low))
    longest = len(str(high)) if high is not None else MAX_DIGITS
    for digits in range(shortest, longest + 1):
        if high is None and digits > shortest:
            alternatives.append(f"[1-9] [0-9]{{{digits - 1},{MAX_DIGITS - 1}}}")
            break
        start = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        end = 10**digits - 1 if high is None else min(high, 10**digits - 1)
        if start <= end:
            alternatives.extend(_same_length(str(start), str(end)))
    return alternatives


def integer_range_gbnf(low: int | None, high: int | None) -> str:
    """A GBNF expression matching exactly the integers from ``low`` to ``high``
    (None: unbounded on that side), written as JSON writes them."""
    alternatives = []
    if low is None or low < 0:
        magnitudes = _naturals(1 if high is None or high >= 0 else -high, None if low is None else -low)
        alternatives.append('"-" (' + " | ".join(magnitudes) + ")")
    if high is None or high >= 0:
        alternatives.extend(_naturals(max(low, 0) if low is not None else 0, high))
    return "(" + " | ".join(alternatives) + ")"
