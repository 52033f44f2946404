"""Retention (`PARLOR_RETENTION_DAYS`): conversations nobody has touched for that many days
are deleted from disk, with their share links, by a sweep at start-up and then every hour.

"Touched" is the conversation's `updated_at` (a message or an answer; not a rename), or
its import when it came in an import (which keeps its own dates). What people
chose to share with model authors is read from the conversation files themselves
(chat/sharing.py), so it goes with them. The sweep sees only owner keys, never who they are.
"""

from __future__ import annotations

import logging
import threading
import time

from .store import Store

log = logging.getLogger("parlor.retention")

EVERY = 3600.0  # seconds between two sweeps
DAY_NS = 86_400 * 10**9


def sweep(history: Store, days: int, now_ns: int | None = None) -> int:
    """Delete the conversations untouched for `days` days, and their share links (the store
    drops them with the conversations); how many conversations."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    swept = history.delete_untouched(now_ns - days * DAY_NS)
    deleted = sum(map(len, swept.values()))
    if deleted:
        log.info("retention: deleted %d conversation(s) untouched for %d days", deleted, days)
    return deleted


class Sweeper:
    """Sweeps at `start()`, then every `every` seconds, in a thread of its own, until
    `stop()`. A sweep that fails is logged, and the next one tries again."""

    def __init__(self, history: Store, days: int, every: float = EVERY):
        self.history, self.days, self.every = history, days, every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parlor-retention", daemon=True)
        self.sweeps = 0  # sweeps done (for tests and logs)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                sweep(self.history, self.days)
            except Exception as e:  # a damaged index, a full disk: try again next time
                log.error("retention sweep failed: %s", type(e).__name__)
            self.sweeps += 1
            self._stopped.wait(self.every)
