"""Thumbs up / down on answers: stored with the message, cleared, refused on a question and
on someone else's conversation, exported and imported back, carried by consented sharing."""

from __future__ import annotations

import asyncio
import json

import pytest
from scripted_server import ScriptedServer
from test_privacy import chat, client, error_of
from test_service import _service

from chat import sharing
from chat.history import message_row
from chat.identity import Owner
from chat.service import NO_MESSAGE, NOT_FOUND, ServiceError

ME = Owner(id="anon:" + "7" * 40, kind="anonymous")
OTHER = Owner(id="anon:" + "8" * 40, kind="anonymous")
CONSENT = {"at": "2000-01-01T00:00:00.000000+00:00", "model": "m"}


async def _ask(service, text: str) -> str:
    updates = [u async for u in service.send(ME, text)]
    return updates[-1].conversation_id


def test_a_rating_is_stored_with_the_answer_cleared_and_kept_for_answers_only(tmp_path):
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        cid = asyncio.run(_ask(service, "apples"))
        question, answer = service.conversation(ME, cid)["messages"]

        done = service.feedback(ME, cid, answer["id"], "down", "  wrong fruit  ")
        assert done["feedback"]["rating"] == "down"
        shown = service.conversation(ME, cid)["messages"][1]["feedback"]
        assert (shown["rating"], shown["comment"]) == ("down", "wrong fruit")
        assert shown["at"]

        service.feedback(ME, cid, answer["id"], "")
        assert service.conversation(ME, cid)["messages"][1]["feedback"] is None

        with pytest.raises(ServiceError, match="Only answers"):
            service.feedback(ME, cid, question["id"], "up")
        with pytest.raises(ServiceError, match="rating"):
            service.feedback(ME, cid, answer["id"], "meh")
        with pytest.raises(ServiceError) as foreign:
            service.feedback(OTHER, cid, answer["id"], "up")
        with pytest.raises(ServiceError) as missing:
            service.feedback(ME, "0" * 32, answer["id"], "up")
        assert str(foreign.value) == str(missing.value) == NOT_FOUND
        with pytest.raises(ServiceError, match=NO_MESSAGE):
            service.feedback(ME, cid, "no-such-message", "up")


def test_a_rating_travels_through_export_and_import(tmp_path):
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        cid = asyncio.run(_ask(service, "pears"))
        answer = service.conversation(ME, cid)["messages"][1]
        service.feedback(ME, cid, answer["id"], "up", "lovely")
        document = service.export(ME)
        exported = document["conversations"][0]["messages"][1]["feedback"]
        assert (exported["rating"], exported["comment"]) == ("up", "lovely")

        service.import_report(OTHER, json.dumps(document))
        theirs = service.conversations(OTHER)[0]["id"]
        back = service.conversation(OTHER, theirs)["messages"][1]["feedback"]
        assert back == exported


def test_a_consented_conversation_carries_its_ratings_to_model_authors(store):
    history = store
    history.update_settings(ME.id, {"share_with_model_authors": True})
    conv = history.create_conversation(ME.id, model="m", first_message="q-901", consent=CONSENT)
    question = history.get_conversation(ME.id, conv["id"])["messages"][0]
    answer = message_row("assistant", "a-901", parent_id=question["id"])
    history.add_messages(ME.id, conv["id"], [answer])
    rating = {"rating": "down", "comment": "too short", "at": "2026-01-01T00:00:00Z"}
    history.update_message(ME.id, conv["id"], answer["id"], feedback=rating)
    (line,) = sharing.consented(history)["m"]
    assert [m["feedback"] for m in line["messages"]] == [None, rating]


def test_feedback_through_the_client_api(app):
    me, stranger = client(app), client(app)
    cid = chat(me, "Name a colour.")
    answer = me.predict(cid, api_name="/conversation")["messages"][1]
    done = me.predict(cid, answer["id"], "up", "nice", api_name="/feedback")
    assert done["feedback"]["rating"] == "up"
    shown = me.predict(cid, api_name="/conversation")["messages"][1]["feedback"]
    assert (shown["rating"], shown["comment"]) == ("up", "nice")

    exported = me.predict(api_name="/export")
    assert exported["conversations"][0]["messages"][1]["feedback"] == shown
    assert stranger.predict(json.dumps(exported), api_name="/import")["imported"] == 1
    theirs = stranger.predict(api_name="/conversations")[0]["id"]
    assert stranger.predict(theirs, api_name="/conversation")["messages"][1]["feedback"] == shown

    outsider = client(app)
    foreign = error_of(outsider.predict, cid, answer["id"], "down", api_name="/feedback")
    missing = error_of(outsider.predict, "0" * 32, answer["id"], "down", api_name="/feedback")
    assert foreign == missing
    me.predict(cid, answer["id"], "", api_name="/feedback")
    assert me.predict(cid, api_name="/conversation")["messages"][1]["feedback"] is None
