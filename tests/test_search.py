"""Search (`ChatService.search`, `History.search`, chat/search_index.py): a person's
conversations found by title and by any message of any branch, on a real store and the
scripted server; only their own, never a deleted one, right after imports, sign-in moves,
other processes' writes and damaged files."""

from __future__ import annotations

import asyncio
import json

import pytest
from apprunner import RunningApp
from gradio_client import Client
from pg import another, stored_text
from scripted_server import ScriptedServer, echo_catalog
from test_adopt import account, service_on, visitor
from test_portability import CHAIN, v2
from test_service import _service

from chat.history import History
from chat.service import MAX_QUERY_CHARS, ServiceError

ME, OTHER = visitor(3), visitor(4)


async def _answered(updates) -> str:
    return [u async for u in updates][-1].conversation_id


def _ids(hits: list[dict]) -> list[str]:
    return [h["id"] for h in hits]


def _marked(hit: dict) -> list[str]:
    """The words the snippet marks."""
    return [hit["snippet"][start:end] for start, end in hit["marks"]]


def _on_disk(root, word: str) -> list[str]:
    """The files under the store's folder whose bytes hold `word`."""
    return [str(p) for p in root.rglob("*") if p.is_file() and word.encode() in p.read_bytes()]


def test_a_word_of_an_old_answer_in_another_branch_is_found(tmp_path, store):
    """The first answer was written again: it is on a branch no longer shown, and search
    still finds it, with the message and a snippet around the word."""
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path, store)
        srv.script("tokens", tokens=["Try ", "the ", "Okapi ", "trail ", "at ", "dawn."])
        cid = asyncio.run(_answered(service.send(ME, "Where should I walk?")))
        old = service.conversation(ME, cid)["messages"][-1]
        srv.script("tokens", tokens=["Walk ", "by ", "the ", "river."])
        asyncio.run(_answered(service.retry(ME, cid)))
        assert "okapi" not in str(service.conversation(ME, cid)["messages"]).lower()
        other = asyncio.run(_answered(service.send(ME, "Something else")))

        (hit,) = service.search(ME, "okapi")
        assert hit["id"] == cid and hit["match_in"] == "message"
        assert hit["message_id"] == old["id"]
        assert hit["snippet"] == "Try the Okapi trail at dawn."
        assert _marked(hit) == ["Okapi"]
        assert {"title", "model", "updated_at"} <= hit.keys()
        # every word must appear, wherever in the conversation; case does not matter
        assert _ids(service.search(ME, "WALK okapi")) == [cid]
        assert service.search(ME, "okapi nowhere-at-all") == []
        assert _ids(service.search(ME, "river walk")) == [other, cid]  # newest first


def test_a_title_is_found_and_the_newest_conversation_comes_first(store):
    history = store
    service = service_on(history)
    older = history.create_conversation(ME.id, model="m", first_message="Plan a trip")["id"]
    newer = history.create_conversation(ME.id, model="m", first_message="Cook dinner")["id"]
    service.rename_conversation(ME, older, "Holiday in Lisbon")
    service.rename_conversation(ME, newer, "Lisbon recipes")

    hits = service.search(ME, "lisbon")
    assert _ids(hits) == [newer, older]  # renamed last, so updated last
    assert [h["match_in"] for h in hits] == ["title", "title"]
    assert hits[0]["message_id"] is None and hits[0]["snippet"] == "Lisbon recipes"
    assert _marked(hits[0]) == ["Lisbon"]
    assert _ids(service.search(ME, "lisbon", limit=1)) == [newer]
    # a word of the title and one of a message
    (hit,) = service.search(ME, "holiday trip")
    assert hit["id"] == older and hit["match_in"] == "message" and hit["snippet"] == "Plan a trip"
    assert service.search(ME, "") == [] and service.search(ME, "   ") == []


def test_an_over_long_query_is_refused_clearly(tmp_path):
    service = service_on(History(tmp_path))
    with pytest.raises(ServiceError, match=f"at most {MAX_QUERY_CHARS} characters"):
        service.search(ME, "word " * MAX_QUERY_CHARS)


def test_a_deleted_conversation_is_not_found_and_its_words_are_gone_from_disk(store):
    history = store
    service = service_on(history)
    gone = history.create_conversation(ME.id, model="m", first_message="secret-pelican-41")["id"]
    kept = history.create_conversation(ME.id, model="m", first_message="kept-heron-42")["id"]
    assert _ids(service.search(ME, "pelican")) == [gone]  # the index has read it

    assert service.delete_conversation(ME, gone)
    assert service.search(ME, "pelican") == []
    assert "pelican" not in stored_text(store)
    assert _ids(service.search(ME, "heron")) == [kept]

    service.delete_all_conversations(ME)
    assert service.search(ME, "heron") == []
    assert "heron" not in stored_text(store)


def test_another_persons_conversations_are_never_found(store):
    history = store
    service = service_on(history)
    history.create_conversation(OTHER.id, model="m", first_message="their-walrus-7")
    history.create_conversation(ME.id, model="m", first_message="my-walrus-8")
    assert [h["snippet"] for h in service.search(ME, "walrus")] == ["my-walrus-8"]
    assert [h["snippet"] for h in service.search(OTHER, "walrus")] == ["their-walrus-7"]
    assert service.search(visitor(9), "walrus") == []


def test_search_follows_writes_made_after_it_read_the_files(store):
    """Answers grow, messages are added, and another process writes the same store: each
    search sees the files as they are now."""
    history = store
    service = service_on(history)
    cid = history.create_conversation(ME.id, model="m", first_message="Hello")["id"]
    assert service.search(ME, "marmot") == []
    answer = history.append_message(ME.id, cid, role="assistant", content="A")
    history.update_message(ME.id, cid, answer["id"], content="A marmot")
    assert [h["message_id"] for h in service.search(ME, "marmot")] == [answer["id"]]

    elsewhere = another(store)  # another worker process on the same data
    theirs = elsewhere.create_conversation(ME.id, model="m", first_message="A marmot too")["id"]
    assert _ids(service.search(ME, "marmot")) == [theirs, cid]
    elsewhere.delete_conversation(ME.id, cid)
    assert _ids(service.search(ME, "marmot")) == [theirs]


def test_damaged_files_do_not_stop_search(tmp_path):
    """A damaged or removed index is rebuilt from the files, and a damaged conversation
    file is left out (as from the listing) while the others are still found."""
    history = History(tmp_path)
    cids = [
        history.create_conversation(ME.id, model="m", first_message=f"badger {n}")["id"]
        for n in range(3)
    ]
    folder = next((tmp_path / "owners").iterdir())
    (folder / "index.json").write_text("{not json")
    (folder / "conversations" / f"{cids[0]}.json").write_text("{damaged")
    service = service_on(History(tmp_path))  # a restart: nothing read yet
    assert _ids(service.search(ME, "badger")) == cids[:0:-1]  # the damaged one: no title left
    history.rename_conversation(ME.id, cids[1], "Honey badger")
    (folder / "index.json").unlink()
    assert set(_ids(service.search(ME, "honey"))) == {cids[1]}


def test_imported_and_moved_conversations_are_found_by_their_new_owner(store):
    history = store
    service = service_on(history)
    me, mine = visitor(5), account("searcher")
    history.create_conversation(me.id, model="m", first_message="a quokka at sign-in")
    assert len(service.search(me, "quokka")) == 1
    assert service.import_data(me, v2(CHAIN)) == 1
    assert _ids(service.search(me, "hello")) == [CHAIN["id"]]

    assert service.adopt(mine, me) == 2
    assert len(service.search(mine, "quokka")) == 1
    assert _ids(service.search(mine, "hello")) == [CHAIN["id"]]
    assert service.search(me, "quokka") == [] and service.search(me, "hello") == []
    exported = json.dumps(service.export(mine))
    assert service.import_data(mine, exported) == 0  # nothing new: nothing found twice
    assert len(service.search(mine, "quokka")) == 1


def test_search_through_the_client_api_finds_only_your_own(tmp_path):
    """/search on the launched app, through gradio_client: a word of an answer, found by
    the person who chatted, never by another; bad input refused clearly, nothing logged."""
    word = "capybara-lantern-19"
    with ScriptedServer() as srv:
        app = RunningApp(tmp_path / "data", models=echo_catalog(tmp_path, srv)).wait_ready()
        try:
            me, other = (Client(app.url, verbose=False) for _ in range(2))
            job = me.submit(f"Tell me about the {word}", "", "echo", api_name="/chat")
            cid = [frame for frame in job][-1][0]
            me.predict(cid, "Lanterns", api_name="/rename_conversation")

            (hit,) = me.predict(word.upper(), api_name="/search")
            assert hit["id"] == cid and hit["title"] == "Lanterns"
            assert hit["match_in"] == "message"
            assert hit["snippet"] == f"Tell me about the {word}"
            assert me.predict("lanterns", 5, api_name="/search")[0]["match_in"] == "title"
            assert other.predict(word, api_name="/search") == []
            assert me.predict("", api_name="/search") == []
            with pytest.raises(Exception, match=f"at most {MAX_QUERY_CHARS} characters"):
                me.predict("x" * (MAX_QUERY_CHARS + 1), api_name="/search")
            with pytest.raises(Exception, match="'limit' must be a whole number"):
                me.predict(word, "ten", api_name="/search")
        finally:
            app.stop()
    assert word not in app.log(), "message text and searches never go to the log"
