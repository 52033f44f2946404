"""Usage limits counted in Redis (`PARLOR_REDIS_URL`): the same limits as chat/limits.py,
counted once for all the replicas. Each window is a counter key that expires `seconds`
after the first message counted in it (INCR, then PEXPIRE), checked and counted in one
script, so that two replicas never both admit the message past a limit."""

from __future__ import annotations

import hashlib
import time

import redis

from . import limits
from .limits import LimitReached, Limits

# KEYS: the counters; ARGV: each one's count and window (ms). Refused: {which, ms left}.
_ADMIT = """
local longest, which = 0, 0
for i, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') >= tonumber(ARGV[2 * i - 1]) then
    local left = redis.call('PTTL', k)
    if left > longest then longest, which = left, i end
  end
end
if which > 0 then return {which, longest} end
for i, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, ARGV[2 * i]) end
end
return {0, 0}
"""


class SharedLimits(Limits):
    """`Limits` whose counts live in Redis, shared by every replica."""

    def __init__(self, client: redis.Redis, **bounds: int | None) -> None:
        super().__init__(**bounds)
        self._admit = client.register_script(_ADMIT)

    def admit(self, person: str, address: str = "") -> None:
        checks = [(w.limit, f"p:{person}") for w in self.person]
        checks += [(w.limit, f"a:{address}") for w in self.address if address]
        if not checks:
            return
        keys = [f"parlor:limit:{int(limit.seconds)}:{who}" for limit, who in checks]
        args = [n for limit, _ in checks for n in (limit.count, int(limit.seconds * 1000))]
        which, left = self._admit(keys=keys, args=args)
        if which:
            raise LimitReached(checks[which - 1][0], left / 1000, time.time())


def shared_limits(client: redis.Redis, secret: str, **bounds: int | None) -> SharedLimits:
    """The limits for every replica: an address is hashed with a key derived from the
    shared PARLOR_SECRET, so that each replica counts it under the same name."""
    limits.use_key(hashlib.sha256(b"parlor-limits:" + secret.encode()).digest())
    return SharedLimits(client, **bounds)
