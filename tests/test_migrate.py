"""`python -m chat.migrate --from DATA_DIR --to postgresql://…`: a TinyDB data directory
moved into PostgreSQL (a real server, tests/pg.py), whole and idempotently: data written by
an older Parlor (tests/fixtures/data-v1, stored shape 1) and by today's code (trees, share
links, ratings, consent, retired ids)."""

from __future__ import annotations

import subprocess
import sys

from scripted_server import ScriptedServer
from test_service import _service
from test_stored_v1 import EXPECTED, OWNERS, files, shows_what_the_old_code_showed
from test_stored_v1 import data as data

from chat import sharing
from chat.history import History, message_row
from chat.history_pg import PgHistory
from chat.migrate import migrate
from chat.shares import Shares


def _command(source, url) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chat.migrate", "--from", str(source), "--to", url],
        capture_output=True,
        text=True,
    )


def _run(data_dir, url) -> str:
    done = _command(data_dir, url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_data_directory_of_an_older_parlor_moves_whole_and_only_once(data, pg_url, tmp_path):
    before = files(data)
    conversations = sum(len(o["conversations"]) for o in EXPECTED.values())
    messages = sum(len(c["messages"]) for o in EXPECTED.values() for c in o["conversations"])
    first = _run(data, pg_url)
    assert f"owners: {len(EXPECTED)}, conversations: {conversations}" in first
    assert f"messages: {messages}," in first
    assert _run(data, pg_url) == (
        "added owners: 0, conversations: 0, messages: 0, share links: 0, share snapshots: 0, "
        "retired ids: 0"
    )
    assert files(data) == before, "the data directory is only read"

    store = PgHistory(pg_url, pool_size=2)
    with ScriptedServer() as srv:
        chat = _service(srv, tmp_path, store, data_sharing=True)
        for owner in OWNERS:
            shows_what_the_old_code_showed(chat, owner)
    store.close()


def _written_today(root) -> History:
    """A data directory of today's code: a tree with two answers to one question, a rating,
    a consent, settings, a share link, and a visitor moved to an account at sign-in."""
    files = History(root)
    conv = files.create_conversation(
        "visitor", model="m", first_message="Name a river", consent={"model": "m", "at": "0"}
    )
    question = files.get_conversation("visitor", conv["id"])["messages"][0]
    first = message_row("assistant", "The Loire", parent_id=question["id"], model="m")
    second = message_row("assistant", "The Rhône", parent_id=question["id"], model="m")
    files.add_messages("visitor", conv["id"], [first])
    files.add_messages("visitor", conv["id"], [second])
    files.show_leaf("visitor", conv["id"], first["id"])
    files.update_message("visitor", conv["id"], second["id"], feedback={"rating": "up"})
    files.update_settings("visitor", {"share_with_model_authors": True, "theme": "dark"})
    files.create_conversation("visitor", model="m", first_message="Another one")
    Shares(files).create("visitor", files.get_conversation("visitor", conv["id"]), [question])
    files.create_conversation("someone", model="m", first_message="Moved at sign-in")
    files.move_owner("someone", "account")
    return files


def test_data_written_by_todays_code_reads_the_same_from_postgresql(tmp_path, pg_url):
    files = _written_today(tmp_path / "data")
    added = migrate(tmp_path / "data", pg_url)
    assert (added.owners, added.conversations, added.messages) == (2, 3, 5)
    assert (added.share_links, added.share_snapshots, added.retired_ids) == (1, 1, 1)
    store = PgHistory(pg_url, pool_size=2)
    for owner in ("visitor", "account"):
        listed = files.list_conversations(owner)
        assert store.list_conversations(owner) == listed
        for conv in listed:
            assert store.get_conversation(owner, conv["id"]) == files.get_conversation(
                owner, conv["id"]
            )
        assert store.get_settings(owner) == files.get_settings(owner)
        assert store.share_links(owner) == files.share_links(owner)
        assert store.search(owner, ["river", "rhô"], 5) == files.search(owner, ["river", "rhô"], 5)
    (link,) = files.share_links("visitor")
    assert store.share_snapshot(link["id"]) == files.share_snapshot(link["id"])
    assert store.is_retired("someone") and not store.is_retired("visitor")
    assert sharing.consented(store) == sharing.consented(files)
    assert migrate(tmp_path / "data", pg_url).conversations == 0
    store.close()


def test_a_damaged_file_is_named_and_skipped_and_a_wrong_folder_refused(tmp_path, pg_url):
    files = History(tmp_path / "data")
    kept = files.create_conversation("alice", model="m", first_message="Kept")["id"]
    damaged = files.create_conversation("alice", model="m", first_message="Damaged")["id"]
    (path,) = (tmp_path / "data").rglob(f"{damaged}.json")
    path.write_text("{oops")
    done = _command(tmp_path / "data", pg_url)
    assert done.returncode == 0 and "conversations: 1," in done.stdout
    assert f"{damaged}.json is damaged" in done.stderr and "Traceback" not in done.stderr
    store = PgHistory(pg_url, pool_size=1)
    assert [c["id"] for c in store.list_conversations("alice")] == [kept]
    store.close()
    assert path.read_text() == "{oops", "left as it was"

    wrong = _command(tmp_path, pg_url)
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == f"{tmp_path} is not a Parlor data directory (no owners/ in it)"
