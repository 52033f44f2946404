"""The conversation store: the tests taking `store` run on both implementations (TinyDB
files in a temporary directory, PostgreSQL in a fresh database: tests/pg.py); those taking
`files` are about the TinyDB files themselves."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pg import another, stored_text
from store_seams import CountingHistory, count_writes

from chat.history import INDEX_BATCH, MAX_TITLE_CHARS, History, title_from


@pytest.fixture
def files(tmp_path):
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


def test_a_conversation_started_with_its_first_message(store):
    conv = store.create_conversation("alice", model="m1", first_message="Where is Lyon, please?")
    assert conv["title"] == "Where is Lyon, please?"
    got = store.get_conversation("alice", conv["id"])
    assert [(m["role"], m["content"]) for m in got["messages"]] == [
        ("user", "Where is Lyon, please?")
    ]
    assert [c["title"] for c in store.list_conversations("alice")] == ["Where is Lyon, please?"]
    # Another process (or a restart) reads the same from disk.
    again = another(store)
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


def test_delete_removes_the_file(store):
    conv = store.create_conversation("alice", model="m")
    store.append_message("alice", conv["id"], role="user", content="secret text")
    assert "secret text" in stored_text(store)
    assert store.delete_conversation("alice", conv["id"]) is True
    assert store.get_conversation("alice", conv["id"]) is None
    assert store.list_conversations("alice") == []
    assert "secret text" not in stored_text(store)
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


def test_restart_reopens(store):
    conv = store.create_conversation("alice", model="m")
    store.append_message("alice", conv["id"], role="user", content="remember me")
    again = another(store)
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


def test_no_temporary_files_left(files, tmp_path):
    conv = files.create_conversation("alice", model="m")
    files.append_message("alice", conv["id"], role="user", content="hi")
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_damaged_index_is_rebuilt(files, tmp_path):
    older = files.create_conversation("alice", model="m")
    conv = files.create_conversation("alice", model="m")
    files.append_message("alice", conv["id"], role="user", content="still here")
    (index,) = tmp_path.rglob("index.json")
    index.write_text('{"conversations": {"1": ')  # a torn write from some other tool
    assert [c["id"] for c in files.list_conversations("alice")] == [conv["id"], older["id"]]
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


def test_damaged_conversation_is_kept_untouched(files, tmp_path):
    from chat.history import CorruptFile

    conv = files.create_conversation("alice", model="m")
    (path,) = tmp_path.rglob(f"{conv['id']}.json")
    path.write_text("{oops")
    with pytest.raises(CorruptFile):
        files.get_conversation("alice", conv["id"])
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


def test_files_are_plain_json(files, tmp_path):
    conv = files.create_conversation("alice", model="m")
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
    store.rename_conversation("alice", b, "Renamed")  # a new title keeps its place
    assert [(c["id"], c["title"]) for c in store.list_conversations("alice")] == [
        (a, "Plums and pears"),
        (b, "Renamed"),
    ]
    store.delete_conversation("alice", b)
    assert [c["id"] for c in store.list_conversations("alice")] == [a]


def test_listing_sees_changes_made_by_another_process(store):
    """A second store on the same data stands for another process writing them."""
    a = store.create_conversation("alice", model="m")["id"]
    b = store.create_conversation("alice", model="m")["id"]
    assert [c["id"] for c in store.list_conversations("alice")] == [b, a]
    other = another(store)
    other.append_message("alice", a, role="user", content="Written elsewhere")
    assert [(c["id"], c["title"]) for c in store.list_conversations("alice")] == [
        (a, "Written elsewhere"),
        (b, "New chat"),
    ]
    c = other.create_conversation("alice", model="m")["id"]
    assert store.list_conversations("alice")[0]["id"] == c
    other.delete_conversation("alice", a)
    assert [x["id"] for x in store.list_conversations("alice")] == [c, b]


def test_listings_kept_in_memory_are_bounded(files, monkeypatch):
    monkeypatch.setattr("chat.history.LISTINGS_KEPT", 3)
    owners = [f"person-{n}" for n in range(5)]
    ids = {o: files.create_conversation(o, model="m")["id"] for o in owners}
    for owner in owners:
        assert [c["id"] for c in files.list_conversations(owner)] == [ids[owner]]
    assert len(files._listings) == 3
    assert [c["id"] for c in files.list_conversations("person-0")] == [ids["person-0"]]


# -- deleting wins ------------------------------------------------------------------------


def _wait_for_waiter(store: History, path) -> None:
    """Until a second thread waits for the lock of `path`, which this thread holds."""
    deadline = time.monotonic() + 10
    while store._locks.users(path) < 2:
        assert time.monotonic() < deadline, "the writer never came to the file's lock"
        time.sleep(0.001)


def _save_held_at_the_lock(store: History, owner: str, cid: str, act) -> list:
    """An answer's first save that reaches the file's lock just as `act()` (a delete, a
    move) runs: the race of a periodic save with a delete, made certain."""
    (path,) = (store.root).rglob(f"{cid}.json")
    result = []
    writer = threading.Thread(
        target=lambda: result.append(
            store.append_message(owner, cid, role="assistant", content="Answer kept apart")
        )
    )
    with store._locks.hold(path):
        writer.start()
        _wait_for_waiter(store, path)
        act()
    writer.join()
    return result


def _on_disk(tmp_path) -> str:
    return "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())


def test_a_save_landing_after_a_delete_never_brings_the_conversation_back(files, tmp_path):
    conv = files.create_conversation("alice", model="m", first_message="Delete me")
    done = _save_held_at_the_lock(
        files, "alice", conv["id"], lambda: files.delete_conversation("alice", conv["id"])
    )
    assert done == [None], "the save is refused"
    assert not list(tmp_path.rglob(f"{conv['id']}.json")), "deleted for good"
    assert "Answer kept apart" not in _on_disk(tmp_path)
    assert files.list_conversations("alice") == []


def test_a_save_landing_after_sign_in_moved_the_conversation_is_refused(files, tmp_path):
    conv = files.create_conversation("anon", model="m", first_message="Move me")
    done = _save_held_at_the_lock(
        files, "anon", conv["id"], lambda: files.move_owner("anon", "acct")
    )
    assert done == [None]
    assert not files._owner_dir("anon").exists(), "nothing of the visitor's is written again"
    assert "Answer kept apart" not in _on_disk(tmp_path)
    moved = files.get_conversation("acct", conv["id"])
    assert [m["content"] for m in moved["messages"]] == ["Move me"]


# -- costs that must not grow with the square of the count ---------------------------------


def test_deleting_all_rewrites_the_index_once(tmp_path, monkeypatch):
    writes = count_writes(monkeypatch)
    store = CountingHistory(tmp_path)
    for n in range(3 * INDEX_BATCH):
        store.create_conversation("alice", model="m", first_message=f"Question {n}")
    writes.clear()
    assert store.delete_all_conversations("alice") == 3 * INDEX_BATCH
    assert writes["index.json"] == 1
    assert store.list_conversations("alice") == []
    assert not list(tmp_path.rglob("conversations/*.json"))


def test_moving_an_owner_writes_the_index_once(tmp_path, monkeypatch):
    writes = count_writes(monkeypatch)
    store = CountingHistory(tmp_path)
    made = {store.create_conversation("anon", model="m")["id"] for _ in range(3 * INDEX_BATCH)}
    store.list_conversations("acct")
    writes.clear()
    reads = store.listing_reads
    assert store.move_owner("anon", "acct") == len(made)
    assert writes["index.json"] == 1
    assert {c["id"] for c in store.list_conversations("acct")} == made
    assert store.listing_reads - reads <= 2  # the visitor's, then the account's once


# -- durability and titles -------------------------------------------------------------------


def test_a_rename_into_place_is_followed_by_a_sync_of_its_folder(files, monkeypatch):
    """Without it, a power cut after the rename can bring the previous version back."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            events.append(("sync folder", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", os.path.dirname(os.fspath(dst))))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    conv = files.create_conversation("alice", model="m")
    events.clear()
    files.append_message("alice", conv["id"], role="user", content="Keep me")  # and retitle
    folder = str(files._owner_dir("alice"))
    assert events == [
        ("rename", f"{folder}/conversations"),
        ("sync folder", f"{folder}/conversations"),
        ("rename", folder),  # the index, for the new title
        ("sync folder", folder),
    ]


def test_titles_are_capped():
    long_words = " ".join(["x" * 2_000] * 8)
    title = title_from(long_words)
    assert len(title) == MAX_TITLE_CHARS and title.endswith("…")


def test_stored_titles_are_capped(store):
    conv = store.create_conversation("alice", model="m", first_message="y" * 16_000)
    assert len(conv["title"]) == MAX_TITLE_CHARS
    renamed = store.rename_conversation("alice", conv["id"], "z" * 5_000)
    assert len(renamed["title"]) == MAX_TITLE_CHARS
    assert [len(c["title"]) for c in store.list_conversations("alice")] == [MAX_TITLE_CHARS]


def test_search_finds_every_word_or_its_beginning_in_any_case(store):
    found = store.create_conversation("alice", model="m", first_message="Platypus habitats")
    store.append_message("alice", found["id"], role="assistant", content="Eastern AUSTRALIA.")
    store.create_conversation("alice", model="m", first_message="Groceries")
    store.create_conversation("bob", model="m", first_message="platypus of someone else")
    (hit,) = store.search("alice", ["platyp", "austral"], 10)
    assert (hit["id"], hit["match_in"], hit["snippet"]) == (
        found["id"],
        "message",
        "Eastern AUSTRALIA.",
    )
    assert hit["snippet"][slice(*hit["marks"][0])] == "AUSTRALIA"[:7]
    (titled,) = store.search("alice", ["platypus"], 10)
    assert (titled["match_in"], titled["message_id"], titled["snippet"]) == (
        "title",
        None,
        "Platypus habitats",
    )
    assert store.search("alice", ["platypus", "nowhere"], 10) == []
    assert [h["id"] for h in store.search("bob", ["platypus"], 10)] != [found["id"]]


def test_signing_in_moves_a_visitors_history_to_the_account_and_retires_the_visitor(store):
    mine = store.create_conversation("visitor", model="m", first_message="Mine before")["id"]
    theirs = store.create_conversation("account", model="m", first_message="Already")["id"]
    store.update_settings("visitor", {"theme": "dark", "language": "fr"})
    store.update_settings("account", {"language": "en"})
    assert store.move_owner("visitor", "account") == 1
    assert {c["id"] for c in store.list_conversations("account")} == {mine, theirs}
    assert store.get_conversation("account", mine)["messages"][0]["content"] == "Mine before"
    assert store.get_settings("account") == {"theme": "dark", "language": "en"}
    assert store.list_conversations("visitor") == [] and store.get_settings("visitor") == {}
    assert store.is_retired("visitor") and not store.is_retired("account")
    assert not store.has_files("visitor") and store.has_files("account")
    assert store.append_message("visitor", mine, role="user", content="late") is None


def test_retention_deletes_untouched_conversations_with_their_links_on_both_stores(store):
    """`delete_untouched` (PARLOR_RETENTION_DAYS): the old conversation goes, with its share
    link and snapshot; the recent one and its link stay; another owner is swept too."""
    from chat.history import iso, message_row, new_id
    from chat.shares import Shares

    def made(owner: str, title: str, ns: int, **extra: str) -> dict:
        stamp = iso(ns)
        question = message_row("user", f"{title}?", parent_id=None, stamp=stamp)
        row = {"id": new_id(), "title": title, "model": "m", "created_at": stamp}
        row |= {"updated_at": stamp, "leaf_id": question["id"], "shape": 2, **extra}
        assert store.add_conversations(owner, [(row, [question])]) == 1
        return row

    day = 86_400 * 10**9
    now = time.time_ns()
    old, recent = made("alice", "Old", now - 40 * day), made("alice", "Recent", now - day)
    bobs = made("bob", "Bob's old", now - 90 * day)
    # An import keeps its dates; the retention clock starts at the import (chat/portability.py).
    imported = made("alice", "Imported old", now - 400 * day, imported_at=iso(now))
    shares = Shares(store)
    old_link = shares.create("alice", old, [])
    recent_link = shares.create("alice", recent, [])

    swept = store.delete_untouched(now - 30 * day)
    assert sorted(cid for ids in swept.values() for cid in ids) == sorted([old["id"], bobs["id"]])
    assert [c["title"] for c in store.list_conversations("alice")] == ["Recent", imported["title"]]
    assert store.list_conversations("bob") == []
    assert shares.snapshot(old_link["id"]) is None
    assert shares.snapshot(recent_link["id"]) is not None
    assert [r["id"] for r in shares.listing("alice")] == [recent_link["id"]]
    assert store.delete_untouched(now - 30 * day) == {}  # nothing left to sweep
