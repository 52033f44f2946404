"""Answers in progress shared by several replicas through Redis (`PARLOR_REDIS_URL`).

The replica writing an answer keeps it as a task of its own (chat/answers.py) and publishes
it: each frame goes to a Redis Stream per (owner, conversation), bounded (MAXLEN) and
expiring, and a `live` key (the answer's id) is refreshed at every frame and at least every
`BEAT` seconds while the model is silent. Any replica sees the answer through that key,
follows the stream, and stops it by setting a `stop` key, which the writer reads with every
frame it publishes and at every beat. A writer that dies stops refreshing: its `live` key
expires after `LIVE_TTL` seconds, and the others then show what it saved as interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable

import redis
import redis.asyncio

from .answers import Answer, Answers, ChatUpdate, Key
from .settings import SettingsError

log = logging.getLogger(__name__)

BEAT = 1.0  # seconds between two signs of life of a silent answer's writer
LIVE_TTL = 6  # seconds without a sign of life before the others think the writer gone
STREAM_TTL = 120  # seconds a finished (or abandoned) answer's frames are kept
MAXLEN = 64  # frames kept per answer: each holds the whole answer so far
INTERRUPTED = "Interrupted: the server stopped before the answer ended."


def _keys(key: Key) -> tuple[str, str, str]:
    """The stream, live and stop keys of an answer. The conversation id (no colon) comes
    first, so that any owner id makes distinct keys."""
    owner, cid = key
    base = f"parlor:answer:{cid}:{owner}"
    return f"{base}:frames", f"{base}:live", f"{base}:stop"


def _encode(frame: ChatUpdate) -> str:
    return json.dumps(dataclasses.asdict(frame))


def _decode(fields: dict) -> ChatUpdate:
    return ChatUpdate(**json.loads(fields[b"f"]))


class RemoteAnswer:
    """An answer another replica is writing, as seen from this one: its latest frame, its
    frames to come (from the stream), and a stop any replica can ask for."""

    rows: tuple = ()  # the writer stored them before publishing

    def __init__(self, answers: RedisAnswers, key: Key, message_id: str, latest) -> None:
        self.key, self.message_id, self._answers = key, message_id, answers
        self._last_id = latest[0] if latest else b"0-0"
        self.frame = _decode(latest[1]) if latest else None

    async def frames(self) -> AsyncIterator[ChatUpdate]:
        """From the latest frame to the end; an interrupted last frame if the writer dies."""
        stream, live, _ = _keys(self.key)
        r = self._answers.r
        if self.frame is not None:
            yield self.frame
            if self.frame.done:
                return
        while True:
            got = await r.xread({stream: self._last_id}, block=int(BEAT * 2000))
            if not got:
                if not await r.exists(live) and not await r.xread({stream: self._last_id}):
                    yield self._interrupted()
                    return
                continue
            entries = got[0][1]
            self._last_id, fields = entries[-1]  # each frame holds the whole answer so far
            self.frame = _decode(fields)
            yield self.frame
            if self.frame.done:
                return

    def _interrupted(self) -> ChatUpdate:
        last = self.frame or ChatUpdate(self.key[1], "", message_id=self.message_id)
        return dataclasses.replace(last, done=True, notice=INTERRUPTED, stored=True)

    def stop(self) -> None:
        """Ask the writing replica to stop; it does within a frame (or a beat)."""
        self._answers.sync.set(_keys(self.key)[2], b"1", ex=LIVE_TTL * 2)


class RedisAnswers(Answers):
    """`Answers`, with each local answer published and the other replicas' ones visible."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.r = redis.asyncio.Redis.from_url(url)
        # For the service's synchronous look-ups (`get`, `stop`): one round trip on a LAN.
        self.sync = redis.Redis.from_url(url)
        self._pumps: set[asyncio.Task] = set()
        self._publishing: set[Key] = set()  # written here: its `live` key is not another's

    def get(self, key: Key) -> Answer | RemoteAnswer | None:  # type: ignore[override]
        local = super().get(key)
        if local is not None or key in self._publishing:  # ended here, key being dropped
            return local
        stream, live, _ = _keys(key)
        with self.sync.pipeline(transaction=False) as p:
            message_id, latest = p.get(live).xrevrange(stream, count=1).execute()
        if message_id is None:
            return None
        return RemoteAnswer(self, key, message_id.decode(), latest[0] if latest else None)

    def start(
        self, key: Key, message_id: str, write: Callable[[Answer], AsyncIterator[ChatUpdate]]
    ) -> Answer:
        answer = super().start(key, message_id, write)
        pump = asyncio.create_task(self._publish(answer))
        self._pumps.add(pump)
        self._publishing.add(key)
        pump.add_done_callback(lambda _: (self._pumps.discard(pump), self._published(key)))
        return answer

    async def _publish(self, answer: Answer) -> None:
        """Publish the answer's frames (the newest, when Redis is slower than the model) and
        obey a stop asked on any replica, until its end."""
        _, live, stop = _keys(answer.key)
        await self.r.delete(stop)  # a stop asked for an earlier answer is not for this one
        await self.r.set(live, answer.message_id, ex=LIVE_TTL)
        try:
            frames = answer.frames()
            nxt = asyncio.ensure_future(anext(frames))
            while True:
                done, _ = await asyncio.wait({nxt}, timeout=BEAT)
                frame = None
                if done:
                    frame = nxt.result()
                    nxt = asyncio.ensure_future(anext(frames))
                if await self._beat(answer, frame):
                    answer.stop()
                if frame is not None and frame.done:
                    nxt.cancel()
                    return
        except (StopAsyncIteration, Exception) as e:  # the answer failed: no more frames
            if not isinstance(e, StopAsyncIteration):
                log.info("answer ended without a last frame: %s", type(e).__name__)
        finally:
            with contextlib.suppress(Exception):
                await self.r.delete(live, stop)

    def _published(self, key: Key) -> None:
        if super().get(key) is None:  # not a newer answer's in the same conversation
            self._publishing.discard(key)

    async def _beat(self, answer: Answer, frame: ChatUpdate | None) -> bool:
        """One round trip: the frame (if any) and a sign of life out, the stop flag in."""
        stream, live, stop = _keys(answer.key)
        p = self.r.pipeline(transaction=False)
        if frame is not None:
            p.xadd(stream, {"f": _encode(frame)}, maxlen=MAXLEN, approximate=True)
            p.expire(stream, STREAM_TTL)
        if frame is None or not frame.done:
            p.set(live, answer.message_id, ex=LIVE_TTL)
        p.get(stop)
        return (await p.execute())[-1] is not None


def shared_answers(url: str) -> RedisAnswers:
    """The registry for `PARLOR_REDIS_URL`, its server reached once: an unreachable one
    stops the start in one line (never with the URL, which may hold a password)."""
    answers = RedisAnswers(url)
    try:
        answers.sync.ping()
    except redis.RedisError as e:
        raise SettingsError(
            f"PARLOR_REDIS_URL cannot be reached ({type(e).__name__}): start Redis, or "
            "check the URL"
        ) from None
    return answers
