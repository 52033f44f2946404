"""Share links in the service and the store (chat/shares.py): a snapshot, revoked or
deleted links gone from disk, ownership, and the move at sign-in."""

from __future__ import annotations

import pytest
from pg import stored_text

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.identity import Owner
from chat.service import ChatService, ServiceError

ME = Owner(id="anon:" + "1" * 40, kind="anonymous")
OTHER = Owner(id="anon:" + "2" * 40, kind="anonymous")
ACCOUNT = Owner(id="hf:12345", kind="hf", name="someone")


def _service(history) -> ChatService:
    endpoint = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    catalog = parse_catalog({"models": [{"id": "m", "name": "M", "endpoints": [endpoint]}]})
    return ChatService(
        catalog=catalog,
        history=history,
        endpoints=Endpoints(environ={}),
        max_message_chars=1000,
        frame_seconds=0,
    )


def _chat(service: ChatService, owner: Owner, *texts: str) -> str:
    cid = service.new_conversation(owner, "m")["id"]
    for i, text in enumerate(texts):
        role = "user" if i % 2 == 0 else "assistant"
        service.history.append_message(owner.id, cid, role=role, content=text)
    return cid


def _snapshots_kept(service: ChatService, link_id: str) -> bool:
    """Whether the store still holds a link's snapshot (a file, or a row)."""
    return link_id in stored_text(service.history)


def test_a_link_shows_the_conversation_as_it_was_when_shared(store):
    service = _service(store)
    cid = _chat(service, ME, "What is a parlor?", "A room for talking.")
    link = service.share(ME, cid)
    assert link["url"] == f"/r/{link['id']}" and len(link["id"]) >= 22
    service.history.append_message(ME.id, cid, role="user", content="later secret")
    shown = service.shared(link["id"])
    assert [m["content"] for m in shown["messages"]] == ["What is a parlor?", "A room for talking."]
    assert shown["title"] == link["title"] == "What is a parlor?"
    assert ME.id not in str(service.history.share_snapshot(link["id"]))
    assert [s["id"] for s in service.shares(ME)] == [link["id"]]


def test_a_revoked_link_is_gone_and_its_file_too(store):
    service = _service(store)
    link = service.share(ME, _chat(service, ME, "hello"))
    assert service.revoke_share(ME, link["id"]) is True
    assert service.shared(link["id"]) is None
    assert service.shares(ME) == [] and not _snapshots_kept(service, link["id"])
    assert service.revoke_share(ME, link["id"]) is False


def test_a_foreign_link_looks_missing_to_its_non_owner(store):
    service = _service(store)
    link = service.share(ME, _chat(service, ME, "mine"))
    assert service.revoke_share(OTHER, link["id"]) is False
    assert service.shares(OTHER) == []
    assert service.shared(link["id"]) is not None  # still there for its owner
    with pytest.raises(ServiceError, match="not found"):
        service.share(OTHER, service.conversations(ME)[0]["id"])


def test_deleting_a_conversation_or_everything_deletes_its_links(store):
    service = _service(store)
    first, second, third = (_chat(service, ME, t) for t in ("one", "two", "three"))
    a, b = service.share(ME, first), service.share(ME, second)
    c = service.share(ME, third)
    service.delete_conversation(ME, first)
    assert service.shared(a["id"]) is None and service.shared(b["id"]) is not None
    assert {s["id"] for s in service.shares(ME)} == {b["id"], c["id"]}
    service.delete_all_conversations(ME)
    assert service.shares(ME) == []
    assert not any(_snapshots_kept(service, link["id"]) for link in (a, b, c))


def test_continuing_a_link_copies_it_into_the_visitors_history(store):
    service = _service(store)
    link = service.share(ME, _chat(service, ME, "question", "answer"))
    new_id = service.continue_shared(OTHER, link["id"])
    copied = service.conversation(OTHER, new_id)
    assert [m["content"] for m in copied["messages"]] == ["question", "answer"]
    service.revoke_share(ME, link["id"])
    with pytest.raises(ServiceError, match="not found"):
        service.continue_shared(OTHER, link["id"])
    assert service.conversation(OTHER, new_id)["title"] == "question"  # the copy stays


def test_signing_in_keeps_a_visitors_links_under_the_account(store):
    service = _service(store)
    cid = _chat(service, ME, "before signing in")
    link = service.share(ME, cid)
    service.adopt(ACCOUNT, ME)
    assert [s["id"] for s in service.shares(ACCOUNT)] == [link["id"]]
    assert service.shared(link["id"])["messages"][0]["content"] == "before signing in"
    service.delete_conversation(ACCOUNT, cid)
    assert service.shared(link["id"]) is None
