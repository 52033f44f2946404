"""`chat.service.ChatService` on a real store and the scripted server: when a conversation
takes its next message."""

from __future__ import annotations

import asyncio
import time

from scripted_server import ScriptedServer

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService


def _service(srv: ScriptedServer, tmp_path, **options) -> ChatService:
    endpoint = {"type": "openai", "base_url": srv.base_url, "model": "m"}
    catalog = parse_catalog({"models": [{"id": "m", "name": "M", "endpoints": [endpoint]}]})
    return ChatService(
        catalog=catalog,
        history=History(tmp_path),
        endpoints=Endpoints(environ={}),
        max_message_chars=1000,
        **{"frame_seconds": 0, **options},
    )


def test_a_conversation_takes_its_next_message_as_soon_as_an_answer_ends(tmp_path):
    """A caller that stops reading at the answer's last frame (and never resumes the
    stream) can send the next message at once: it is not told an answer is still being
    written."""
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["One", " two"])
        service = _service(srv, tmp_path)
        me = Owner(id="anon:" + "1" * 40, kind="anonymous")

        async def two_messages() -> list[str]:
            answers = []
            conversation_id = ""
            for text in ("first", "second"):
                async for update in service.send(me, text, conversation_id):
                    if update.done:
                        break  # the stream is left as it is, not resumed nor closed
                assert not update.failed, update.notice
                conversation_id = update.conversation_id
                answers.append(update.text)
            return answers

        assert asyncio.run(two_messages()) == ["One two", "One two"]


TOKENS = [f" w{i}" for i in range(20)]  # 20 tokens 50 ms apart: a one-second answer


def test_many_answers_at_once_share_the_frames_and_still_stream(tmp_path):
    """One answer alone comes a token at a time. Ten at once under a budget of 50 frames a
    second come a few words at a time, each still in several frames and whole at the end,
    so that no one's answer falls behind the model while the server sends them all."""
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=TOKENS, delay=0.05)
        service = _service(srv, tmp_path, frame_budget=50)

        async def answer(n: int) -> tuple[list[str], str]:
            owner = Owner(id="anon:" + f"{n:040d}", kind="anonymous")
            frames = []
            async for update in service.send(owner, "hello"):
                if update.done:
                    return frames, update.text
                frames.append(update.text)
            raise AssertionError("the answer never ended")

        async def at_once(n: int) -> tuple[list[tuple[list[str], str]], float]:
            start = time.monotonic()
            answers = await asyncio.gather(*(answer(i) for i in range(n)))
            return answers, time.monotonic() - start

        [(alone, text)], _ = asyncio.run(at_once(1))
        assert text == "".join(TOKENS)
        assert len(alone) >= 15, alone  # a frame per token, near enough

        answers, seconds = asyncio.run(at_once(10))
        for frames, text in answers:
            assert text == "".join(TOKENS)
            words = [f.count(" w") for f in frames]
            assert words == sorted(words) and len(set(words)) >= 3, frames  # it streamed
        sent = sum(len(frames) for frames, _ in answers)
        # Each answer's first frame (before any token) is sent at once, then 50 a second.
        assert sent <= 10 + 50 * seconds + 10, (sent, seconds)
