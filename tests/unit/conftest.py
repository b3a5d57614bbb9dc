"""Fixtures the desktop window's state tests share: a clock the test sets,
and a DesktopState that reads it."""

import pytest

from hearth.desktop.state import DesktopState


class Clock:
    def __init__(self, now: float = 990.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock) -> DesktopState:
    return DesktopState("127.0.0.1:50051", "http://127.0.0.1:11434", clock=clock)
