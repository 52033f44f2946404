"""Answers being written: each one a task of the server's, followed by any number of readers.

An answer belongs to its conversation, not to the page or client that asked for it: the
page, a `gradio_client` job, `/api/chat` and a second tab all read the same frames through
`Answer.frames()`, and a reader going away never stops it. Only `stop` does (from anyone),
and it cancels the request to the model at once, even when the model is silent.

This registry is the one place that knows which answers are in progress: a Redis-backed one
can replace it when several replicas share the work (start, follow, stop, in progress).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

Key = tuple[str, str]  # (owner id, conversation id)


class AnswerLost(Exception):
    """The answer's task was cancelled without a stop: the server is going down."""


@dataclass(frozen=True)
class ChatUpdate:
    """One frame of a streamed answer: the whole answer so far, not a delta."""

    conversation_id: str
    text: str
    done: bool = False
    notice: str = ""  # why the answer is incomplete (stopped, failed), empty when complete
    failed: bool = False
    stored: bool = False  # the person's message is on disk (always true of the last frame)
    message_id: str = ""  # the answer's own id
    reasoning: str = ""  # a thinking model's reasoning so far
    finish_reason: str | None = None  # the model's, once done ("stop", "length"...)


class Answer:
    """One answer in progress: its latest frame, and the readers waiting for the next."""

    def __init__(self, key: Key, message_id: str) -> None:
        self.key = key
        self.message_id = message_id
        self.frame: ChatUpdate | None = None
        self.error: BaseException | None = None  # what ended it, when it did not end well
        self.stopping = False  # stop() was asked: the task's cancellation is a stop
        self.finishing = False  # the model is done: its last save is under way
        self.rows: list[dict] = []  # the rows it stores first (question, answer), as shown
        self._version = 0
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None

    def publish(self, frame: ChatUpdate) -> None:
        self.frame = frame
        self._version += 1
        self._wake()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._version += 1
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def frames(self) -> AsyncIterator[ChatUpdate]:
        """The answer from its latest frame to its end. A slow reader skips to the newest
        frame (each holds the whole answer so far); leaving changes nothing for the task."""
        seen = 0
        while True:
            if self._version == seen:
                await self._changed.wait()
                continue
            seen = self._version
            if self.error is not None:
                raise self.error
            frame = self.frame
            if frame is None:
                continue
            yield frame
            if frame.done:
                return

    def stop(self) -> None:
        """Stop from any thread: the task ends its answer as stopped, at once."""
        self._loop.call_soon_threadsafe(self._stop)

    def _stop(self) -> None:
        if self.stopping or self.finishing:
            return
        if self._task is not None and not self._task.done():
            self.stopping = True
            self._task.cancel()


class Answers:
    """The answers in progress, one per conversation at most."""

    def __init__(self) -> None:
        self._live: dict[Key, Answer] = {}

    def __len__(self) -> int:
        return len(self._live)

    def get(self, key: Key) -> Answer | None:
        return self._live.get(key)

    def owned_by(self, owner_id: str) -> list[Answer]:
        return [a for (who, _), a in list(self._live.items()) if who == owner_id]

    def all(self) -> list[Answer]:
        return list(self._live.values())

    def start(
        self, key: Key, message_id: str, write: Callable[[Answer], AsyncIterator[ChatUpdate]]
    ) -> Answer:
        """Run `write(answer)` as a task of the server's; its frames go to the answer's
        readers. The key is taken until the answer's last frame (or its failure)."""
        answer = Answer(key, message_id)
        self._live[key] = answer
        answer._task = asyncio.create_task(self._run(answer, write))
        return answer

    async def _run(
        self, answer: Answer, write: Callable[[Answer], AsyncIterator[ChatUpdate]]
    ) -> None:
        try:
            async with contextlib.aclosing(write(answer)) as frames:
                async for frame in frames:
                    if frame.done:  # free the conversation before anyone hears it ended
                        self._free(answer)
                    answer.publish(frame)
        except asyncio.CancelledError:
            answer.fail(AnswerLost())
            raise
        except BaseException as e:  # handed to every reader
            answer.fail(e)
        finally:
            self._free(answer)

    def _free(self, answer: Answer) -> None:
        if self._live.get(answer.key) is answer:
            del self._live[answer.key]
