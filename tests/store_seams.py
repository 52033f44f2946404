"""Small instrumented seams of the store, for tests that count what it does."""

from __future__ import annotations

from collections import Counter

import pytest

from chat.history import AtomicJSONStorage, History


class CountingHistory(History):
    """Counts how often an owner's listing is read from disk."""

    listing_reads = 0

    def _read_listing(self, owner, stamp):
        self.listing_reads += 1
        return super()._read_listing(owner, stamp)


def count_writes(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How many times each file name was written (index.json, settings.json, <id>.json)."""
    counts: Counter = Counter()
    real = AtomicJSONStorage.flush

    def counted(self, **kwargs):
        if self._dirty:
            counts[self.path.name] += 1
        return real(self, **kwargs)

    monkeypatch.setattr(AtomicJSONStorage, "flush", counted)
    return counts
