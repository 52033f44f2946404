"""`chat.service.ChatService` on a real store and the scripted server: when a conversation
takes its next message."""

from __future__ import annotations

import asyncio

from scripted_server import ScriptedServer

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService


def test_a_conversation_takes_its_next_message_as_soon_as_an_answer_ends(tmp_path):
    """A caller that stops reading at the answer's last frame (and never resumes the
    stream) can send the next message at once: it is not told an answer is still being
    written."""
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["One", " two"])
        endpoint = {"type": "openai", "base_url": srv.base_url, "model": "m"}
        catalog = parse_catalog({"models": [{"id": "m", "name": "M", "endpoints": [endpoint]}]})
        service = ChatService(
            catalog=catalog,
            history=History(tmp_path),
            endpoints=Endpoints(environ={}),
            max_message_chars=1000,
            frame_seconds=0,
        )
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
