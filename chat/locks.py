"""A lock per key (a file, a token, a visitor), that exists only while someone holds or
awaits it."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class KeyedLocks:
    """`with locks.hold(key):` serialises the threads that name the same key, and no others;
    a thread holding a key may take it again. A table of every key ever seen would grow
    with each new visitor, token or file, forever (~1 KiB a person)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, list] = {}  # key -> [lock, threads holding or waiting]

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.RLock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[key]

    def users(self, key: Hashable) -> int:
        """How many threads hold or await `key` now."""
        with self._guard:
            entry = self._locks.get(key)
            return entry[1] if entry else 0
