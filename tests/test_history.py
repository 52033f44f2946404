"""The TinyDB store, on real files in a temporary directory."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from chat.history import INDEX_BATCH, History, title_from


@pytest.fixture
def store(tmp_path):
    return History(tmp_path)


def test_create_append_and_read_back(store):
    conv = store.create_conversation("alice", model="m1")
    assert conv["title"] == "New chat"
    store.append_message("alice", conv["id"], role="user", content="What is the capital of France?")
    store.append_message("alice", conv["id"], role="assistant", content="Paris.", model="m1")
    got = store.get_conversation("alice", conv["id"])
    assert [(m["role"], m["content"]) for m in got["messages"]] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
    ]
    assert got["title"] == "What is the capital of France?"
    assert got["messages"][1]["model"] == "m1"


def test_a_conversation_started_with_its_first_message(store, tmp_path):
    conv = store.create_conversation("alice", model="m1", first_message="Where is Lyon, please?")
    assert conv["title"] == "Where is Lyon, please?"
    got = store.get_conversation("alice", conv["id"])
    assert [(m["role"], m["content"]) for m in got["messages"]] == [
        ("user", "Where is Lyon, please?")
    ]
    assert [c["title"] for c in store.list_conversations("alice")] == ["Where is Lyon, please?"]
    # Another process (or a restart) reads the same from disk.
    again = History(tmp_path)
    assert [c["title"] for c in again.list_conversations("alice")] == ["Where is Lyon, please?"]
    assert again.get_conversation("alice", conv["id"])["messages"][0]["content"] == (
        "Where is Lyon, please?"
    )


def test_title_is_the_first_words():
    assert title_from("one two three four five six seven eight nine ten") == (
        "one two three four five six seven eight…"
    )
    assert title_from("   ") == "New chat"


def test_list_is_newest_first(store):
    a = store.create_conversation("alice", model="m")
    b = store.create_conversation("alice", model="m")
    c = store.create_conversation("alice", model="m")
    assert [x["id"] for x in store.list_conversations("alice")] == [c["id"], b["id"], a["id"]]
    store.append_message("alice", a["id"], role="user", content="bump")
    assert store.list_conversations("alice")[0]["id"] == a["id"]


def test_delete_removes_the_file(store, tmp_path):
    conv = store.create_conversation("alice", model="m")
    store.append_message("alice", conv["id"], role="user", content="secret text")
    assert store.delete_conversation("alice", conv["id"]) is True
    assert store.get_conversation("alice", conv["id"]) is None
    assert store.list_conversations("alice") == []
    on_disk = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "secret text" not in on_disk
    assert store.delete_conversation("alice", conv["id"]) is False


def test_delete_all(store):
    for _ in range(3):
        store.create_conversation("alice", model="m")
    keep = store.create_conversation("bob", model="m")
    assert store.delete_all_conversations("alice") == 3
    assert store.list_conversations("alice") == []
    assert store.get_conversation("bob", keep["id"]) is not None


def test_other_owner_sees_nothing(store):
    conv = store.create_conversation("alice", model="m")
    store.append_message("alice", conv["id"], role="user", content="hi")
    assert store.list_conversations("bob") == []
    assert store.get_conversation("bob", conv["id"]) is None
    assert store.append_message("bob", conv["id"], role="user", content="x") is None
    assert store.rename_conversation("bob", conv["id"], "mine") is None
    assert store.delete_conversation("bob", conv["id"]) is False
    assert len(store.get_conversation("alice", conv["id"])["messages"]) == 1


@pytest.mark.parametrize("bad", ["../../etc/passwd", "", "x" * 32, "0" * 31, None])
def test_malformed_ids_are_missing(store, bad):
    assert store.get_conversation("alice", bad) is None


def test_restart_reopens(tmp_path):
    first = History(tmp_path)
    conv = first.create_conversation("alice", model="m")
    first.append_message("alice", conv["id"], role="user", content="remember me")
    again = History(tmp_path)
    assert again.list_conversations("alice")[0]["id"] == conv["id"]
    assert again.get_conversation("alice", conv["id"])["messages"][0]["content"] == "remember me"


def test_concurrent_appends_lose_nothing(store):
    conv = store.create_conversation("alice", model="m")

    def write(i: int) -> None:
        store.append_message("alice", conv["id"], role="user", content=f"message {i}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(200)))
    contents = {m["content"] for m in store.get_conversation("alice", conv["id"])["messages"]}
    assert contents == {f"message {i}" for i in range(200)}


def test_concurrent_new_conversations_all_listed(store):
    with ThreadPoolExecutor(max_workers=16) as pool:
        made = list(pool.map(lambda _: store.create_conversation("alice", model="m"), range(100)))
    assert {c["id"] for c in store.list_conversations("alice")} == {c["id"] for c in made}


def test_no_temporary_files_left(store, tmp_path):
    conv = store.create_conversation("alice", model="m")
    store.append_message("alice", conv["id"], role="user", content="hi")
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_damaged_index_is_rebuilt(store, tmp_path):
    older = store.create_conversation("alice", model="m")
    conv = store.create_conversation("alice", model="m")
    store.append_message("alice", conv["id"], role="user", content="still here")
    (index,) = tmp_path.rglob("index.json")
    index.write_text('{"conversations": {"1": ')  # a torn write from some other tool
    assert [c["id"] for c in store.list_conversations("alice")] == [conv["id"], older["id"]]
    assert list(tmp_path.rglob("index.json.damaged-*")), "the damaged file is kept aside"


def test_every_started_conversation_survives_a_restart_and_a_damaged_index(tmp_path):
    """New conversations reach the index in batches: what a restart lists must not depend on
    where a batch ended, nor on the index at all."""
    store = History(tmp_path)
    store.list_conversations("alice")  # the page lists first, as the app does
    made = [
        store.create_conversation("alice", model="m", first_message=f"Question {n}")
        for n in range(INDEX_BATCH + 5)
    ]
    store.rename_conversation("alice", made[-1]["id"], "Renamed")
    store.delete_conversation("alice", made[-2]["id"])
    shown = [(c["id"], c["title"]) for c in store.list_conversations("alice")]
    assert len(shown) == INDEX_BATCH + 4 and shown[0] == (made[-1]["id"], "Renamed")
    assert made[-2]["id"] not in dict(shown)
    assert [(c["id"], c["title"]) for c in History(tmp_path).list_conversations("alice")] == shown
    (index,) = tmp_path.rglob("index.json")
    index.write_text("{")
    assert [(c["id"], c["title"]) for c in History(tmp_path).list_conversations("alice")] == shown


def test_damaged_conversation_is_kept_untouched(store, tmp_path):
    from chat.history import CorruptFile

    conv = store.create_conversation("alice", model="m")
    (path,) = tmp_path.rglob(f"{conv['id']}.json")
    path.write_text("{oops")
    with pytest.raises(CorruptFile):
        store.get_conversation("alice", conv["id"])
    assert path.read_text() == "{oops"


def test_update_message(store):
    conv = store.create_conversation("alice", model="m")
    msg = store.append_message("alice", conv["id"], role="assistant", content="", incomplete=True)
    store.update_message("alice", conv["id"], msg["id"], content="partial", notice="Stopped.")
    (stored,) = store.get_conversation("alice", conv["id"])["messages"]
    assert (stored["content"], stored["incomplete"], stored["notice"]) == (
        "partial",
        True,
        "Stopped.",
    )


def test_files_are_plain_json(store, tmp_path):
    conv = store.create_conversation("alice", model="m")
    for path in tmp_path.rglob("*.json"):
        json.loads(path.read_text())
    assert "alice" not in str(list(tmp_path.rglob("*"))), "owner ids are hashed on disk"
    assert conv


def test_listing_a_page_gives_the_newest(store):
    ids = [store.create_conversation("alice", model="m")["id"] for _ in range(5)]
    store.append_message("alice", ids[1], role="user", content="back to this one")
    assert [c["id"] for c in store.list_conversations("alice", limit=2)] == [ids[1], ids[4]]
    assert len(store.list_conversations("alice")) == 5
    assert store.list_conversations("alice", limit=0) == []


def test_listing_follows_every_write(store):
    a = store.create_conversation("alice", model="m")["id"]
    b = store.create_conversation("alice", model="m")["id"]
    assert [c["id"] for c in store.list_conversations("alice")] == [b, a]
    store.append_message("alice", a, role="user", content="Plums and pears")
    listed = store.list_conversations("alice")
    assert [(c["id"], c["title"]) for c in listed] == [(a, "Plums and pears"), (b, "New chat")]
    assert listed[0]["updated_at"] == store.get_conversation("alice", a)["updated_at"]
    store.rename_conversation("alice", b, "Renamed")
    assert [(c["id"], c["title"]) for c in store.list_conversations("alice")] == [
        (b, "Renamed"),
        (a, "Plums and pears"),
    ]
    store.delete_conversation("alice", b)
    assert [c["id"] for c in store.list_conversations("alice")] == [a]


def test_listing_sees_changes_made_by_another_process(store, tmp_path):
    """A second store on the same files stands for another process writing them."""
    a = store.create_conversation("alice", model="m")["id"]
    b = store.create_conversation("alice", model="m")["id"]
    assert [c["id"] for c in store.list_conversations("alice")] == [b, a]
    other = History(tmp_path)
    other.append_message("alice", a, role="user", content="Written elsewhere")
    assert [(c["id"], c["title"]) for c in store.list_conversations("alice")] == [
        (a, "Written elsewhere"),
        (b, "New chat"),
    ]
    c = other.create_conversation("alice", model="m")["id"]
    assert store.list_conversations("alice")[0]["id"] == c
    other.delete_conversation("alice", a)
    assert [x["id"] for x in store.list_conversations("alice")] == [c, b]


def test_listings_kept_in_memory_are_bounded(store, monkeypatch):
    monkeypatch.setattr("chat.history.LISTINGS_KEPT", 3)
    owners = [f"person-{n}" for n in range(5)]
    ids = {o: store.create_conversation(o, model="m")["id"] for o in owners}
    for owner in owners:
        assert [c["id"] for c in store.list_conversations(owner)] == [ids[owner]]
    assert len(store._listings) == 3
    assert [c["id"] for c in store.list_conversations("person-0")] == [ids["person-0"]]
