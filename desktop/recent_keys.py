"""The keys of the items last taken in from an engine stream that replays its
recent past to each new watch: a replayed item already taken is told apart."""

from collections import deque
from collections.abc import Hashable


class RecentKeys:
    """The last ``limit`` keys added, oldest forgotten first."""

    def __init__(self, limit: int):
        self._order: deque[Hashable] = deque()
        self._keys: set[Hashable] = set()
        self._limit = limit

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        self._order.append(key)
        self._keys.add(key)
        if len(self._order) > self._limit:
            self._keys.discard(self._order.popleft())
