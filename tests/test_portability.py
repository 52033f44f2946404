"""`chat.portability`: exports of version 2 keep a conversation's branches and the branch
shown; version 1 (an older Parlor's) still imports; a document whose messages make no tree
is refused, saying which conversation and why, and nothing of it is stored."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from test_import_limits import LIMITS, service

from chat.history import History
from chat.identity import Owner
from chat.service import ChatService, ServiceError

FIXTURES = Path(__file__).parent / "fixtures"
ME = Owner(id="anon:" + "6" * 40, kind="anonymous")
OTHER = Owner(id="hf:4242", kind="hf")


def _message(mid: str, parent: str | None, role: str, content: str, **fields) -> dict:
    return {"id": mid, "parent_id": parent, "role": role, "content": content, **fields}


# A question edited once (q1 / q1b), its first answer retried (a1 / a1b), a follow-up on the
# retried answer; the branch shown is the first answer's, which is not the last message.
BRANCHED = {
    "id": "b" * 32,
    "title": "Branches",
    "model": "m",
    "created_at": "2026-05-01T10:00:00+00:00",
    "updated_at": "2026-05-01T10:09:00+00:00",
    "leaf_id": "a1",
    "messages": [
        _message("q1", None, "user", "Name a colour."),
        _message("a1", "q1", "assistant", "Blue.", finish_reason="stop"),
        _message(
            "a1b", "q1", "assistant", "Green, I think.", reasoning="Not blue again.", model="m"
        ),
        _message("q2", "a1b", "user", "Why green?"),
        _message(
            "a2",
            "q2",
            "assistant",
            "Because",
            incomplete=True,
            notice="Stopped.",
            finish_reason="length",
        ),
        _message("q1b", None, "user", "Name a fruit."),
        _message("a3", "q1b", "assistant", "A pear.", created_at="2026-05-01T10:08:00+00:00"),
    ],
}
CHAIN = {
    "id": "c" * 32,
    "title": "Second",
    "model": "m",
    "created_at": "2026-05-02T10:00:00+00:00",
    "updated_at": "2026-05-02T10:01:00+00:00",
    "messages": [
        _message("x", None, "user", "Hello?"),
        _message("y", "x", "assistant", "Hi."),
    ],
}


def v2(*conversations: dict) -> str:
    return json.dumps({"format": "parlor-export", "version": 2, "conversations": conversations})


def tree(conversation: dict) -> tuple[set, str | None]:
    """A conversation's shape, whatever its ids: each message as (what it says, what the
    one it follows says), and what the shown leaf says. (Every message here says something
    of its own.)"""
    said = {m["id"]: m["content"] for m in conversation["messages"]}
    shape = {(m["role"], m["content"], said.get(m["parent_id"])) for m in conversation["messages"]}
    return shape, said.get(conversation["leaf_id"])


def exported(chat: ChatService, owner: Owner, cid: str) -> dict:
    document = chat.export(owner)
    assert document["version"] == 2
    return next(c for c in document["conversations"] if c["id"] == cid)


def test_a_version_2_export_keeps_branches_and_the_branch_shown_through_two_imports(store):
    chat = service(store)
    assert chat.import_data(ME, v2(BRANCHED, CHAIN)) == 2
    first = exported(chat, ME, BRANCHED["id"])
    assert tree(first) == tree(BRANCHED)
    ids = [m["id"] for m in first["messages"]]
    assert len(set(ids)) == 7 and not set(ids) & {m["id"] for m in BRANCHED["messages"]}, (
        "each message gets a new id of its own"
    )
    kept = ("role", "content", "reasoning", "incomplete", "notice", "finish_reason")
    for stored, original in zip(first["messages"], BRANCHED["messages"], strict=True):
        assert {k: stored[k] for k in kept} == {
            "reasoning": "",
            "incomplete": False,
            "notice": "",
            "finish_reason": None,
            **{k: original[k] for k in kept if k in original},
        }
    assert first["messages"][6]["created_at"] == "2026-05-01T10:08:00+00:00"
    shown = chat.conversation(ME, BRANCHED["id"])
    q1, a1 = BRANCHED["messages"][:2]
    assert [m["content"] for m in shown["messages"]] == [q1["content"], a1["content"]]
    assert [len(m["siblings"]) for m in shown["messages"]] == [2, 2], "edited, and retried"
    assert len(shown["all_messages"]) == len(BRANCHED["messages"])

    assert chat.import_data(OTHER, json.dumps(chat.export(ME))) == 2
    second = exported(chat, OTHER, BRANCHED["id"])
    assert tree(second) == tree(BRANCHED)
    assert not {m["id"] for m in second["messages"]} & set(ids)
    assert tree(exported(chat, OTHER, CHAIN["id"])) == tree({**CHAIN, "leaf_id": "y"})


@pytest.mark.parametrize("leaf", ["absent", None])
def test_a_version_2_conversation_without_a_leaf_shows_its_last_message(store, leaf):
    conversation = copy.deepcopy(BRANCHED)
    if leaf == "absent":
        del conversation["leaf_id"]
    else:
        conversation["leaf_id"] = leaf
    chat = service(store)
    assert chat.import_data(ME, v2(conversation)) == 1
    assert tree(exported(chat, ME, BRANCHED["id"]))[1] == "A pear."


def test_an_export_of_an_older_parlor_imports_whole_as_one_branch_each(store):
    """export-v1.json was written by e1d0c7f (tests/fixtures/make_v1_data.py): every
    conversation and message comes in, in order, each message following the one before."""
    expected = json.loads((FIXTURES / "data-v1.expected.json").read_text(encoding="utf-8"))
    [shown] = [v for o, v in expected["owners"].items() if o.startswith("anon:")]
    document = (FIXTURES / "export-v1.json").read_text(encoding="utf-8")
    assert json.loads(document)["version"] == 1
    chat = service(store)
    assert chat.import_data(ME, document) == len(shown["conversations"])

    listed = {c["id"]: c for c in chat.conversations(ME)}
    fields = ("role", "content", "created_at", "model", "incomplete", "notice")
    for conv in shown["conversations"]:
        assert listed[conv["id"]]["title"] == conv["title"]
        got = chat.conversation(ME, conv["id"])
        assert (got["title"], got["model"]) == (conv["title"], conv["model"])
        assert [{k: m[k] for k in fields} for m in got["messages"]] == [
            {k: m[k] for k in fields} for m in conv["messages"]
        ]
        again = exported(chat, ME, conv["id"])
        ids = [m["id"] for m in again["messages"]]
        assert [m["parent_id"] for m in again["messages"]] == [None, *ids][: len(ids)]
        assert again["leaf_id"] == (ids[-1] if ids else None)


BAD_TREES = [
    pytest.param(
        lambda c: c["messages"][1].update(parent_id="nowhere"),
        "message 'y' follows 'nowhere', which is not one of its messages",
        id="unknown-parent",
    ),
    pytest.param(
        lambda c: c["messages"][0].update(parent_id="y"),
        "follows itself through its 'parent_id's",
        id="cycle",
    ),
    pytest.param(
        lambda c: c["messages"][0].update(parent_id="x"),
        "message 'x' follows itself",
        id="own-parent",
    ),
    pytest.param(
        lambda c: c["messages"][1].update(id="x"),
        "two of its messages have the id 'x'",
        id="same-id",
    ),
    pytest.param(lambda c: c["messages"][1].pop("id"), "its message 2 has no 'id'", id="no-id"),
    pytest.param(
        lambda c: c.update(leaf_id="z"),
        "its leaf_id 'z' is not one of its messages",
        id="unknown-leaf",
    ),
]


@pytest.mark.parametrize(("damage", "reason"), BAD_TREES)
def test_a_conversation_whose_messages_make_no_tree_is_refused_saying_which(store, damage, reason):
    bad = copy.deepcopy(CHAIN)
    damage(bad)
    chat = service(store)
    with pytest.raises(ServiceError) as refused:
        chat.import_data(ME, v2(BRANCHED, bad))
    assert str(refused.value).startswith('Conversation 2 of this export ("Second"): ')
    assert reason in str(refused.value)
    assert chat.conversations(ME) == [], "nothing of the document is stored"


def test_a_version_1_document_is_one_branch_whatever_ids_it_carries(store):
    """Version 1 has no tree: fields of a later version in it are not read as one."""
    chain = {**copy.deepcopy(CHAIN), "leaf_id": "x"}
    chain["messages"][1]["parent_id"] = "nowhere"
    document = json.dumps({"format": "parlor-export", "version": 1, "conversations": [chain]})
    chat = service(store)
    assert chat.import_data(ME, document) == 1
    again = exported(chat, ME, CHAIN["id"])
    first, second = again["messages"]
    assert (first["parent_id"], second["parent_id"]) == (None, first["id"])
    assert again["leaf_id"] == second["id"]


def test_a_newer_version_is_refused_saying_so(tmp_path):
    document = json.dumps({"format": "parlor-export", "version": 3, "conversations": []})
    with pytest.raises(ServiceError, match=r"newer version \(3\) than this Parlor reads \(2\)"):
        service(History(tmp_path)).import_data(ME, document)


def test_an_answers_reasoning_past_the_answer_limit_is_refused(tmp_path):
    long = copy.deepcopy(CHAIN)
    long["messages"][1]["reasoning"] = "r" * (LIMITS.answer_chars + 1)
    chat = service(History(tmp_path), LIMITS)
    with pytest.raises(
        ServiceError, match=f"an answer's reasoning of {LIMITS.answer_chars + 1} characters"
    ):
        chat.import_data(ME, v2(long))
    long["messages"][1]["reasoning"] = "r" * LIMITS.answer_chars
    assert chat.import_data(ME, v2(long)) == 1
    assert (
        exported(chat, ME, CHAIN["id"])["messages"][1]["reasoning"]
        == long["messages"][1]["reasoning"]
    )
