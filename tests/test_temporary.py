"""Temporary chats (never written to disk) and PARLOR_STORE_MESSAGES=false, through the
client API of the real app on the scripted model (it echoes the question, so the answer
holds the secret too), and on the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from scripted_server import ScriptedServer
from test_browser_tree import Stack, scripted_stack
from test_http_api import gradio, person, post
from test_privacy import error_of
from test_service import _service

from chat.identity import COOKIE_NAME, Owner

SECRET = "okapi-velvet-5521"
NOT_FOUND = "conversation not found"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "temporary", echo=True)


def on_disk(folder: Path) -> str:
    """Every file under `folder`, as text."""
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def cookie_of(client: Client) -> dict:
    return {COOKIE_NAME: client.cookies[COOKIE_NAME]}


def test_a_temporary_chat_works_and_never_reaches_the_disk(stack):
    me = Client(stack.app.url, verbose=False)
    me.predict(f"A saved one about {SECRET[:5]}", "", "", api_name="/chat")  # a saved one
    started = me.predict("", True, api_name="/new_conversation")
    cid = started["id"]
    _, answer = me.predict(f"my code is {SECRET}", cid, "", api_name="/chat")
    assert SECRET in answer  # answered, as any conversation
    assert SECRET not in on_disk(stack.app.data_dir)
    assert cid not in [c["id"] for c in me.predict(api_name="/conversations")]
    assert started["temporary"] is True
    question = me.predict(cid, api_name="/conversation")["messages"][0]
    me.predict(cid, question["id"], f"again: {SECRET}", api_name="/edit")
    me.predict(cid, "", api_name="/retry")
    shown = me.predict(cid, api_name="/conversation")
    assert shown["temporary"] is True
    assert [len(m["siblings"]) for m in shown["messages"]] == [2, 2]
    back = me.predict(cid, question["id"], api_name="/switch_branch")
    assert back["messages"][0]["content"] == f"my code is {SECRET}"
    me.predict(cid, back["messages"][1]["id"], "up", SECRET, api_name="/feedback")
    assert SECRET in me.predict(cid, api_name="/export_markdown")
    other = me.predict("", True, api_name="/new_conversation")["id"]
    me.predict(f"{SECRET} once more", other, "", api_name="/chat")

    listed = [c["id"] for c in me.predict(api_name="/conversations")]
    assert len(listed) == 1 and cid not in listed and other not in listed
    assert me.predict(SECRET, api_name="/search") == []
    assert SECRET not in str(me.predict(api_name="/export"))
    assert "temporary chat" in error_of(me.predict, cid, api_name="/share")
    assert SECRET not in on_disk(stack.app.data_dir)

    # someone else: exactly as a missing id; then deleted, it is missing for its owner too
    stranger = Client(stack.app.url, verbose=False)
    for endpoint, args in [("/conversation", ()), ("/retry", ()), ("/rename_conversation", ("x",))]:
        foreign = error_of(stranger.predict, cid, *args, api_name=endpoint)
        assert NOT_FOUND in foreign and foreign == error_of(
            stranger.predict, "0" * 32, *args, api_name=endpoint
        )
    assert me.predict(cid, api_name="/delete_conversation") == {"deleted": True}
    assert NOT_FOUND in error_of(me.predict, cid, api_name="/conversation")
    assert me.predict(other, api_name="/conversation")["temporary"] is True


def test_a_temporary_chat_over_plain_http(stack):
    with person(stack.app) as c:
        said = post(c, "api/chat", {"message": f"plain {SECRET}", "temporary": True})
        kind, (cid, answer) = said[-1]
        assert kind == "complete" and SECRET in answer
        me = gradio(stack.app, c)
        assert me.predict(cid, api_name="/conversation")["temporary"] is True
        assert me.predict(api_name="/conversations") == []
    assert SECRET not in on_disk(stack.app.data_dir)


def test_a_temporary_chat_goes_when_its_page_closes(stack):
    """Closing a page (its heartbeat stream ends) drops the temporary chats it made."""
    me = Client(stack.app.url, verbose=False)
    cid = me.predict("", True, api_name="/new_conversation")["id"]
    me.predict(f"{SECRET} for this page", cid, "", api_name="/chat")
    beat = f"{stack.app.url}gradio_api/heartbeat/{me.session_hash}"
    with httpx.Client(cookies=cookie_of(me)) as page:
        with page.stream("GET", beat) as alive:
            next(alive.iter_lines())  # the page is open
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server sees the page go, then drops its chats
        if NOT_FOUND in error_of(me.predict, cid, api_name="/conversation"):
            break
        time.sleep(0.1)
    assert NOT_FOUND in error_of(me.predict, cid, api_name="/conversation")


def test_turning_temporary_chat_off_drops_that_pages_chats_and_stops_their_answers(tmp_path):
    with ScriptedServer() as srv:
        srv.script("slow", tokens=[f" {SECRET}"] * 40)
        service = _service(srv, tmp_path)
        me = Owner(id="anon:" + "7" * 40, kind="anonymous")

        async def scenario() -> tuple[str, str, int]:
            here = service.send(me, SECRET, temporary=True, scope="page-1")
            first = await anext(here)
            while not service.is_temporary(me, first.conversation_id):  # stored in memory
                first = await anext(here)
            kept = service.new_conversation(me, temporary=True, scope="page-2")["id"]
            dropped = service.drop_temporary(me, "page-1")
            frames = [first, *[u async for u in here]]  # the answer ends at once, stopped
            return first.conversation_id, kept, dropped, frames[-1]

        gone, kept, dropped, last = asyncio.run(scenario())
        assert dropped == 1 and last.done and last.notice == "Stopped."
        with pytest.raises(Exception, match=NOT_FOUND):
            service.conversation(me, gone)
        assert service.conversation(me, kept)["temporary"] is True  # another page's
        assert SECRET not in on_disk(tmp_path)


@pytest.fixture(scope="module")
def history_off(tmp_path_factory) -> Iterator[Stack]:
    off = {"PARLOR_STORE_MESSAGES": "false"}
    yield from scripted_stack(tmp_path_factory, "nohistory", echo=True, **off)


def test_with_history_off_nothing_is_written_and_nothing_listed(history_off):
    me = Client(history_off.app.url, verbose=False)
    cid, answer = me.predict(f"remember {SECRET}", "", "", api_name="/chat")
    assert SECRET in answer
    assert SECRET not in on_disk(history_off.app.data_dir)
    assert me.predict(api_name="/conversations") == []
    me.predict(f"and {SECRET} again", cid, "", api_name="/chat")  # its conversation goes on
    assert len(me.predict(cid, api_name="/conversation")["messages"]) == 4
    assert me.predict("", api_name="/new_conversation")["temporary"] is True
    assert "History is off" in error_of(me.predict, '{"conversations": []}', api_name="/import")
    assert SECRET not in on_disk(history_off.app.data_dir)
    privacy = httpx.get(history_off.app.url + "privacy").text
    assert "History is off" in privacy
