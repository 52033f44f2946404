"""Titles a conversation's own model writes after its first answer, on a real store and the
scripted server: cleaned, never over a title set by hand, the first words when none comes."""

from __future__ import annotations

import asyncio

from scripted_server import ScriptedServer
from test_service import _service

from chat import titles
from chat.identity import Owner
from chat.service import ChatService

ME = Owner(id="anon:" + "8" * 40, kind="anonymous")


def _first_answer(service: ChatService, question: str, rename_to: str = "") -> str:
    """Ask `question` in a new conversation (renaming it as soon as the answer is done),
    wait for its title to be written; the conversation's id."""

    async def work() -> str:
        cid = [u async for u in service.send(ME, question)][-1].conversation_id
        if rename_to:
            service.rename_conversation(ME, cid, rename_to)
        await service.titles_written()
        return cid

    return asyncio.run(work())


def _title(service: ChatService, cid: str) -> str:
    return service.conversation(ME, cid)["title"]


def test_the_model_titles_a_new_conversation_cleaned_of_quotes_and_markdown(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=['Title: "**Apple', " pie** tips", '."\n', "And more."])
        service = _service(srv, tmp_path)
        cid = _first_answer(service, "how do I bake an apple pie that stays crisp?")
        assert _title(service, cid) == "Apple pie tips"
        assert service.conversations(ME)[0]["title"] == "Apple pie tips"  # the sidebar's list
        # The title was asked of the conversation's model with the question, briefly.
        asked = [r["body"] for r in srv.requests if r["body"]][-1]["messages"]
        assert asked == titles.request("how do I bake an apple pie that stays crisp?")
        # Later answers leave the title alone: only the first one is titled.
        srv.script("tokens", tokens=["Second title\n"])
        asyncio.run(_last_frame(service.send(ME, "and a pear one?", cid)))
        assert _title(service, cid) == "Apple pie tips"


async def _last_frame(updates):
    return [u async for u in updates][-1]


def test_a_long_title_is_capped_at_a_word(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["word " * 30])
        service = _service(srv, tmp_path)
        title = _title(service, _first_answer(service, "hello there"))
        assert len(title) <= titles.MAX_CHARS and title.endswith("word…")


def test_a_title_set_by_hand_is_never_replaced_even_while_one_is_written(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["Model", " title", "\n"], delay=0.2)
        service = _service(srv, tmp_path)
        cid = _first_answer(service, "what is a quark?", rename_to="My physics notes")
        assert _title(service, cid) == "My physics notes"
        assert len([r for r in srv.requests if r["body"]]) == 2  # the title was asked for


def test_the_first_words_stay_when_the_model_is_slow_or_writes_no_title(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["Too", " slow", "\n"], delay=0.5)
        service = _service(srv, tmp_path)
        service.title_seconds = 0.2  # the answer takes 1.5 s: so would its title
        cid = _first_answer(service, "tell me about the moons of Jupiter")
        assert _title(service, cid) == "tell me about the moons of Jupiter"

        srv.script("tokens", tokens=['"**"', "\n"])
        service.title_seconds = titles.SECONDS
        cid = _first_answer(service, "and of Saturn")
        assert _title(service, cid) == "and of Saturn"
