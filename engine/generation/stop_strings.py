"""Stop strings over streamed text: emit what cannot be the start of a stop
string, hold back the rest until it is decided."""


class StopMatcher:
    def __init__(self, stops: tuple[str, ...]):
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False
        # The stop string that ended the text, once one did.
        self.matched = ""

    def push(self, text: str) -> str:
        """Text that is safe to emit now; sets ``stopped`` when a stop string appears."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        self._held += text
        found = [(i, s) for s in self._stops if (i := self._held.find(s)) >= 0]
        first = min((i for i, _ in found), default=-1)
        if first >= 0:
            self.stopped = True
            self.matched = next(s for i, s in found if i == first)
            out, self._held = self._held[:first], ""
            return out
        keep = self._longest_partial_stop()
        out = self._held[: len(self._held) - keep]
        self._held = self._held[len(self._held) - keep :]
        return out

    def flush(self) -> str:
        """Whatever is still held once generation ends without a stop string."""
        out, self._held = ("" if self.stopped else self._held), ""
        return out

    def _longest_partial_stop(self) -> int:
        """Length of the longest tail of the held text that begins some stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._held)), best, -1):
                if self._held.endswith(stop[:n]):
                    best = n
                    break
        return best
