"""The desktop window's playground conversation, long actions' progress bars
and notices, and frame pacing, without a display."""

import pytest

from hearth.desktop import messages as msg
from hearth.desktop.frame_pacing import FramePacer
from hearth.desktop.state import task_view

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- playground


def test_a_streamed_reply_grows_then_ends_with_its_usage(state, clock):
    chat_id = state.begin_chat("Name three colours.")
    assert state.chat.streaming
    assert [(t.role, t.content) for t in state.chat.history()] == [("user", "Name three colours.")]
    state.apply(msg.ChatDelta(chat_id, "Red, "))
    state.apply(msg.ChatDelta(chat_id, "green."))
    assert state.chat.turns[-1].content == "Red, green."
    clock.now += 2
    state.apply(msg.ChatEnded(chat_id, finish_reason="stop", prompt_tokens=10, completion_tokens=4))
    assert not state.chat.streaming
    assert "10 prompt + 4 completion tokens" in state.chat.last_result and "stop" in state.chat.last_result
    assert [t.role for t in state.chat.history()] == ["user", "assistant"]


def test_stopped_failed_and_stale_streams(state):
    first = state.begin_chat("one")
    state.apply(msg.ChatEnded(first, cancelled=True))
    assert "stopped" in state.chat.last_result
    second = state.begin_chat("two")
    state.apply(msg.ChatDelta(first, "late text from a stopped stream"))
    assert state.chat.turns[-1].content == ""
    state.apply(msg.ChatEnded(second, error="not_found: no model has that id [MODEL_NOT_FOUND]"))
    assert state.chat.last_result.startswith("error: not_found")
    assert state.chat.turns[-1].role == "user"  # the empty reply is dropped
    state.chat.clear()
    assert state.chat.turns == [] and not state.chat.streaming


# ---------------------------------------------------------------- long actions and notices


def test_progress_bars_know_when_progress_is_unknown(state):
    state.apply(msg.TaskProgress("load:m", "Loading m"))
    state.apply(msg.TaskProgress("copy:x", "Adding x.gguf", 50_000_000, 200_000_000))
    views = {view.label: view for view in state.task_views()}
    assert views["Loading m"].fraction is None
    assert views["Adding x.gguf"].fraction == 0.25
    assert "50.0 MB of 200.0 MB (25%)" in views["Adding x.gguf"].overlay
    state.apply(msg.TaskEnded("copy:x", False, "Could not add x.gguf: disk full"))
    assert [view.label for view in state.task_views()] == ["Loading m"]
    assert state.notices.latest == msg.Notice("Could not add x.gguf: disk full", "error")
    assert task_view(msg.TaskProgress("t", "T", 5, 4)).fraction == 1.0


# ---------------------------------------------------------------- frame pacing


def test_the_frame_rate_is_high_while_the_user_acts_and_low_when_idle(clock):
    pacer = FramePacer(active=0.02, idle=0.1, linger=1.0, clock=clock)
    assert pacer.delay(clock.now, busy=True) == pytest.approx(0.02)
    clock.now += 0.5
    assert pacer.delay(clock.now, busy=False) == pytest.approx(0.02)  # still lingering
    clock.now += 0.6
    assert pacer.delay(clock.now, busy=False) == pytest.approx(0.1)
    started = clock.now
    clock.now += 0.04  # a slow frame: only the rest of the interval is slept
    assert pacer.delay(started, busy=False) == pytest.approx(0.06)
    clock.now += 1.0
    assert pacer.delay(started, busy=False) == 0.0
