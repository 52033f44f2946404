"""Usage limits: how many messages one person, and one client address of anonymous people,
may send per minute and per day (`PARLOR_LIMIT_*`; unset: no limit).

Every answer a model is asked to write counts as one message: a message sent, an edited
question, *Retry* and *Continue*. Following an answer, stopping one, switching branches and
titles do not. A message refused (by a limit, or because too many answers are in progress)
is not counted.

Each limit is a fixed window that opens with the first message counted in it and resets
`seconds` later. Counts live in memory only: an address is kept as a keyed hash (a random
key per process, never written anywhere), and at most `kept` keys per limit are tracked,
the oldest windows dropped first (forgetting a count only ever lets someone send sooner).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MINUTE, DAY = 60.0, 86_400.0
KEPT = 100_000  # keys tracked per limit: ~150 bytes each
_KEY = secrets.token_bytes(32)  # this process's key for hashing addresses


def use_key(key: bytes) -> None:
    """Hash addresses with `key` (shared by replicas that count in Redis) from now on."""
    global _KEY
    _KEY = key


def address_key(address: str) -> str:
    """A client address as the limits keep it: a keyed hash, meaningless outside this
    process, and never the address itself."""
    return hmac.new(_KEY, address.encode(), hashlib.sha256).hexdigest()[:32]


def client_address(headers: Mapping[str, str], peer: str, *, trusted_proxy: bool) -> str:
    """The address a request came from: the connection's `peer`, or, behind a proxy the
    deployer declares (`PARLOR_TRUSTED_PROXY`), the last address its `X-Forwarded-For`
    names (the proxy's own word: a client's forged values come before it)."""
    if trusted_proxy:
        forwarded = headers.get("x-forwarded-for") or ""
        if last := forwarded.split(",")[-1].strip():
            return last
    return peer


@dataclass(frozen=True)
class Limit:
    """At most `count` messages per `seconds` for each key; `who` names it in a refusal."""

    count: int
    seconds: float
    who: str  # "you" or "this network address"


class LimitReached(Exception):
    """A message refused by a limit; `retry_after`: seconds until it resets."""

    def __init__(self, limit: Limit, retry_after: float, now: float) -> None:
        self.limit, self.retry_after = limit, retry_after
        span = "minute" if limit.seconds <= MINUTE else "day"
        plural = "s" if limit.count != 1 else ""
        at = dt.datetime.fromtimestamp(now + retry_after, dt.UTC).strftime("%H:%M:%S UTC")
        super().__init__(
            f"Message limit reached: {limit.count} message{plural} per {span} for "
            f"{limit.who}. It resets in {_duration(retry_after)} (at {at}); send your "
            "message again then."
        )


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


class _Windows:
    """Counts per key for one limit: key -> [window start, count], oldest window first."""

    def __init__(self, limit: Limit, kept: int) -> None:
        self.limit, self.kept = limit, kept
        self.rows: OrderedDict[str, list[float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may send again (0: now), dropping expired windows."""
        while self.rows and self._over(next(iter(self.rows.values())), now):
            self.rows.popitem(last=False)
        row = self.rows.get(key)
        if row is None or row[1] < self.limit.count or self._over(row, now):
            return 0.0
        return row[0] + self.limit.seconds - now

    def _over(self, row: list[float], now: float) -> bool:
        return row[0] + self.limit.seconds <= now

    def count(self, key: str, now: float) -> None:
        row = self.rows.get(key)
        if row is not None and not self._over(row, now):
            row[1] += 1
            return
        self.rows.pop(key, None)  # a new window: last in the order of their starts
        self.rows[key] = [now, 1]
        if len(self.rows) > self.kept:
            self.rows.popitem(last=False)


class Limits:
    """The limits of one server; `admit` checks and counts a message, thread-safe."""

    def __init__(
        self,
        *,
        per_minute: int | None = None,
        per_day: int | None = None,
        per_address_minute: int | None = None,
        per_address_day: int | None = None,
        kept: int = KEPT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        def windows(count: int | None, seconds: float, who: str) -> list[_Windows]:
            return [] if count is None else [_Windows(Limit(count, seconds, who), kept)]

        self.person = windows(per_minute, MINUTE, "you") + windows(per_day, DAY, "you")
        address = "this network address (everyone using it without signing in)"
        self.address = windows(per_address_minute, MINUTE, address)
        self.address += windows(per_address_day, DAY, address)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.person or self.address)

    def admit(self, person: str, address: str = "") -> None:
        """Count one message of `person` (and of `address`, a key from `address_key`, for
        anonymous people), or raise LimitReached naming the limit that resets last."""
        checks = [(w, person) for w in self.person]
        checks += [(w, address) for w in self.address if address]
        if not checks:
            return
        with self._lock:
            now = self._clock()
            waits = [(w.wait(key, now), w) for w, key in checks]
            longest, blocking = max(waits, key=lambda pair: pair[0])
            if longest > 0:
                raise LimitReached(blocking.limit, longest, now)
            for w, key in checks:
                w.count(key, now)

    def tracked(self) -> int:
        """How many keys are counted now, all limits together (memory stays bounded)."""
        with self._lock:
            return sum(len(w.rows) for w in (*self.person, *self.address))
