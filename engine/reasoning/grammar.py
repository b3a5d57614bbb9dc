"""Grammars on a reasoning model: the answer's grammar (a forced tool call,
JSON mode) applies once the reasoning has ended, so the model thinks first."""

import re

from hearth.engine.domain import ReasoningPlan
from hearth.engine.grammar.converter import gbnf_literal

# The answer's own start rule, renamed so that a new root can put the reasoning before it.
ANSWER_RULE = "reasoned-answer"
_WS = "[ \\t\\n]*"
# String literals and character classes are copied; a bare ``root`` is a reference to rename.
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|(?<![\w-])root(?![\w-])')


def _renamed_root(grammar: str) -> str:
    return _TOKEN.sub(lambda m: ANSWER_RULE if m.group(0) == "root" else m.group(0), grammar)


def _class_char(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char


def _thought(close: str) -> str:
    """Any text that does not contain the first two characters of ``close``."""
    if len(close) < 2:
        return f"[^{_class_char(close)}]*"
    first, second = _class_char(close[0]), _class_char(close[1])
    return f"([^{first}] | {gbnf_literal(close[0])} [^{second}])*"


def after_reasoning(grammar: str, plan: ReasoningPlan) -> tuple[str, tuple[str, ...]]:
    """``grammar`` (root rule "root") for the answer of a sequence that
    reasons first, and its lazy triggers. Where the prompt opened the
    reasoning the grammar waits for the text that closes it (the model's or
    the engine's when a budget is spent). Otherwise the model may open a
    reasoning block itself (its thinking then cannot hold the first two
    characters of the close tag) or answer at once."""
    answer = _renamed_root(grammar)
    closing = gbnf_literal(plan.closing)
    if plan.started:
        return f"{answer}\nroot ::= {closing} {_WS} {ANSWER_RULE}", (plan.closing,)
    opening = gbnf_literal(plan.open_tag)
    root = f"root ::= ({_WS} {opening} reasoned-thought {closing} {_WS})? {ANSWER_RULE}"
    return f"{answer}\n{root}\nreasoned-thought ::= {_thought(plan.close_tag)}", ()
