"""How long the render loop waits between frames.

With a GPU and vsync a frame costs little, but where the window is drawn in
software (a VM, a remote desktop, Xvfb) each frame costs CPU time that the
engine, on the same cores, needs for inference. So: 60 frames a second while
the user moves the mouse, clicks or types, 15 once they have not for a second.
A streamed reply or a progress bar moves smoothly enough at 15."""

import time
from collections.abc import Callable

ACTIVE_FRAME_SECONDS = 1 / 60
IDLE_FRAME_SECONDS = 1 / 15
# How long after the last activity the window keeps the fast rate.
LINGER_SECONDS = 1.0


class FramePacer:
    def __init__(
        self,
        active: float = ACTIVE_FRAME_SECONDS,
        idle: float = IDLE_FRAME_SECONDS,
        linger: float = LINGER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.active, self.idle, self.linger = active, idle, linger
        self._clock = clock
        self._last_activity = clock()

    def delay(self, frame_started: float, busy: bool) -> float:
        """Seconds to sleep before the next frame, given when this one started."""
        now = self._clock()
        if busy:
            self._last_activity = now
        interval = self.active if now - self._last_activity < self.linger else self.idle
        return max(0.0, interval - (now - frame_started))
