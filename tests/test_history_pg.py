"""The PostgreSQL store's own parts, on a real server (tests/pg.py): versioned migrations at
start-up, deleting wins against a save waiting for the conversation's row, and the choice
of the store by PARLOR_DATABASE_URL. What both stores do is in tests/test_history.py."""

from __future__ import annotations

import inspect
import threading
import time

import psycopg
import pytest
from pg import stored_text
from pydantic import ValidationError

from chat.history import History
from chat.history_pg import PgHistory, SchemaTooNew, migrations
from chat.settings import Settings
from chat.store import Store, open_store


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_the_schema_is_created_at_start_up_and_migrated_once(pg_url):
    first = PgHistory(pg_url, pool_size=2)
    known = [version for version, _ in migrations()]
    assert _versions(pg_url) == known
    first.create_conversation("alice", model="m", first_message="Kept across a restart")
    first.close()
    again = PgHistory(pg_url, pool_size=2)  # a restart, or a second replica: nothing re-run
    assert _versions(pg_url) == known
    assert [c["title"] for c in again.list_conversations("alice")] == ["Kept across a restart"]
    again.close()


def test_a_database_migrated_by_a_newer_parlor_is_refused_and_left_alone(pg_url):
    PgHistory(pg_url, pool_size=2).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_version (version, name) VALUES (9999, 'future.sql')")
    with pytest.raises(SchemaTooNew, match="version 9999, newer than this Parlor's"):
        PgHistory(pg_url, pool_size=2)
    assert _versions(pg_url)[-1] == 9999


def test_a_save_landing_after_a_delete_never_brings_the_conversation_back(pg_url):
    """An answer's save waits for the conversation's row while a delete holds it: once the
    delete commits, the save finds nothing and is refused (the files' version of this race
    is in tests/test_history.py)."""
    store = PgHistory(pg_url, pool_size=2)
    conv = store.create_conversation("alice", model="m", first_message="Delete me")
    result: list = []
    with psycopg.connect(store.pool.conninfo) as conn:
        conn.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conv["id"],))
        writer = threading.Thread(
            target=lambda: result.append(
                store.append_message("alice", conv["id"], role="assistant", content="Kept apart")
            )
        )
        writer.start()
        _wait_for_lock_waiter(conn)
        conn.execute("DELETE FROM conversations WHERE id = %s", (conv["id"],))
    writer.join()
    assert result == [None]
    assert store.list_conversations("alice") == []
    assert "Kept apart" not in stored_text(store)
    store.close()


def _wait_for_lock_waiter(conn: psycopg.Connection) -> None:
    """Until another session waits for a lock (the writer reached the row)."""
    deadline = time.monotonic() + 10
    while not conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    ).fetchone():
        assert time.monotonic() < deadline, "the writer never came to the row's lock"
        time.sleep(0.01)


def test_both_stores_offer_every_call_of_the_interface_alike():
    """What the service may call (chat/store.py's Store) exists on both, with the same
    parameters: a call added to one store only (say, a retention sweep) fails here."""
    calls = [n for n in vars(Store) if not n.startswith("_") and callable(getattr(Store, n))]
    assert {"create_conversation", "search", "move_owner", "save_share"} <= set(calls)
    for name in calls:
        wanted = list(inspect.signature(getattr(Store, name)).parameters)
        for implementation in (History, PgHistory):
            found = list(inspect.signature(getattr(implementation, name)).parameters)
            assert found == wanted, f"{implementation.__name__}.{name}"


def test_the_database_url_chooses_the_store(pg_url, tmp_path):
    assert isinstance(open_store(Settings(data_dir=tmp_path)), History)
    chosen = open_store(Settings(data_dir=tmp_path, database_url=pg_url))
    assert isinstance(chosen, PgHistory)
    chosen.close()
    with pytest.raises(ValidationError, match="PARLOR_DATABASE_URL must be a postgresql://"):
        Settings(database_url="mysql://somewhere/db")
