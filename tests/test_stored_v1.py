"""A data directory written before conversations were trees (stored shape 1, by commit
e1d0c7f: tests/fixtures/make_v1_data.py) opens with today's store and service: every
conversation and message is there, in order, as one branch; a file is rewritten in shape 2
only when its conversation changes, and the others stay byte for byte as they were."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from scripted_server import ScriptedServer
from test_service import _service

from chat.history import History
from chat.identity import Owner
from chat.service import ServiceError

FIXTURES = Path(__file__).parent / "fixtures"
# What the old code showed of each owner (conversations newest first): see make_v1_data.py.
EXPECTED: dict[str, dict] = json.loads(
    (FIXTURES / "data-v1.expected.json").read_text(encoding="utf-8")
)["owners"]
OWNERS = [Owner(id=o, kind="hf" if o.startswith("hf:") else "anonymous") for o in EXPECTED]
MESSAGE_FIELDS = ("id", "role", "content", "created_at", "model", "incomplete", "notice")


@pytest.fixture
def data(tmp_path) -> Path:
    """A copy of the fixture's data directory. Git keeps no modification times, and a
    conversation file's is its `updated_at`: each gets back the one it was written with."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "data-v1", root)
    for path in root.glob("owners/*/conversations/*.json"):
        [row] = json.loads(path.read_text(encoding="utf-8"))["conversation"].values()
        ns = _ns(row["updated_at"])
        os.utime(path, ns=(ns, ns))
    return root


def _ns(stamp: str) -> int:
    when = datetime.fromisoformat(stamp)
    return (int(when.timestamp()) * 1_000_000 + when.microsecond) * 1000


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def chat(data, tmp_path):
    """Today's service on the copy, its model the scripted server's echo."""
    with ScriptedServer() as srv:
        srv.script("echo")
        yield _service(srv, tmp_path, History(data), data_sharing=True)


def shows_what_the_old_code_showed(chat, owner: Owner) -> list[dict]:
    """The owner's conversations (newest first), settings and messages, each conversation
    one branch, as the old code showed them (also run on PostgreSQL: tests/test_migrate.py).
    The listing."""
    expected = EXPECTED[owner.id]
    listed = [
        {k: c[k] for k in ("id", "title", "model", "updated_at")} for c in expected["conversations"]
    ]
    assert chat.conversations(owner) == listed, "all of them, newest first"
    assert chat.settings(owner).items() >= expected["settings"].items()
    for conv in expected["conversations"]:
        shown = chat.conversation(owner, conv["id"])
        assert {k: shown[k] for k in ("title", "model", "created_at")} == {
            k: conv[k] for k in ("title", "model", "created_at")
        }
        assert [{k: m[k] for k in MESSAGE_FIELDS} for m in shown["messages"]] == conv["messages"]
        one_branch(shown)
        ids = [m["id"] for m in shown["messages"]]
        assert shown["path"] == ids and [m["id"] for m in shown["all_messages"]] == ids
    return listed


def test_every_conversation_and_message_written_by_older_code_is_there(data, chat):
    before = files(data)
    for owner in OWNERS:
        expected = EXPECTED[owner.id]
        listed = shows_what_the_old_code_showed(chat, owner)
        exported = chat.export(owner)
        assert exported["version"] == 2
        assert [c["id"] for c in exported["conversations"]] == [c["id"] for c in listed]
        for conv, out in zip(expected["conversations"], exported["conversations"], strict=True):
            fields = ("id", "role", "content", "created_at", "model", "incomplete")
            assert [{k: m[k] for k in fields} for m in out["messages"]] == [
                {k: m[k] for k in fields} for m in conv["messages"]
            ]
            one_branch(out)
    assert files(data) == before, "reading changes no file"


def one_branch(conv: dict) -> None:
    """Its messages are one branch: each follows the one before it, the last is shown."""
    messages = conv["messages"]
    ids = [m["id"] for m in messages]
    assert [m["parent_id"] for m in messages] == [None, *ids][: len(ids)]
    assert conv["leaf_id"] == (ids[-1] if ids else None)


def _plain(owner: Owner) -> dict:
    """The owner's conversation of most messages, as the old code showed it."""
    return max(EXPECTED[owner.id]["conversations"], key=lambda c: len(c["messages"]))


async def _last(updates) -> object:
    async for update in updates:
        last = update
    return last


def test_a_conversation_is_rewritten_in_shape_2_the_first_time_it_changes(data, chat):
    owner = OWNERS[0]
    conv = _plain(owner)
    [path] = data.glob(f"owners/*/conversations/{conv['id']}.json")
    old = json.loads(path.read_text(encoding="utf-8"))
    assert "parent_id" not in next(iter(old["messages"].values())), "written in shape 1"
    before = files(data)

    update = asyncio.run(_last(chat.send(owner, "One more thing.", conv["id"])))
    assert update.done and not update.failed, update.notice

    after = files(data)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {str(path.relative_to(data))}, "the other files are untouched"
    raw = json.loads(path.read_text(encoding="utf-8"))
    [row] = raw["conversation"].values()
    messages = list(raw["messages"].values())
    assert row["shape"] == 2
    assert [{k: m[k] for k in MESSAGE_FIELDS} for m in messages[:-2]] == [
        {k: m[k] for k in MESSAGE_FIELDS} for m in old["messages"].values()
    ], "every old message is still there, as it was"
    assert [(m["role"], m["content"]) for m in messages[-2:]] == [
        ("user", "One more thing."),
        ("assistant", "One more thing."),
    ]
    one_branch({"messages": messages, "leaf_id": row["leaf_id"]})


def test_a_branched_conversation_of_older_code_is_deleted_whole(data, chat):
    """Retrying an old conversation's answer branches it; deleting it removes its file."""
    owner = OWNERS[0]
    conv = _plain(owner)
    [path] = data.glob(f"owners/*/conversations/{conv['id']}.json")
    update = asyncio.run(_last(chat.retry(owner, conv["id"])))
    assert update.done and not update.failed, update.notice
    shown = chat.conversation(owner, conv["id"])
    answers = [m for m in shown["all_messages"] if m["parent_id"] == conv["messages"][-2]["id"]]
    assert len(answers) == 2, "the old answer and the new one, side by side"

    assert chat.delete_conversation(owner, conv["id"])
    assert not path.exists()
    with pytest.raises(ServiceError, match="conversation not found"):
        chat.conversation(owner, conv["id"])
    assert conv["id"] not in [c["id"] for c in chat.conversations(owner)]


def test_an_answer_stopped_by_older_code_can_be_continued(chat):
    """The stopped answer is offered *Continue*; no complete message is."""
    owner = OWNERS[0]
    stopped = complete = 0
    for conv in EXPECTED[owner.id]["conversations"]:
        for m in chat.conversation(owner, conv["id"])["messages"]:
            if m["notice"] == "Stopped.":
                stopped += 1
                assert m["continuable"], m
            elif not m["incomplete"]:
                complete += 1
                assert not m["continuable"], m
    assert stopped == 1 and complete > 1
