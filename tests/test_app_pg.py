"""The launched app on PostgreSQL (PARLOR_DATABASE_URL, a real server: tests/pg.py),
through gradio_client: people chat, list, search and share, their history is in the
database and nowhere under the data directory; a database that cannot be used stops the
start in one clear line."""

from __future__ import annotations

import pytest
from apprunner import RunningApp
from gradio_client import Client
from scripted_server import ScriptedServer, echo_catalog

from chat.history_pg import PgHistory


def test_the_app_on_postgresql_chats_lists_and_searches(tmp_path, pg_url):
    word = "okapi-lantern-23"
    with ScriptedServer() as srv:
        env = {"PARLOR_DATABASE_URL": pg_url}
        app = RunningApp(tmp_path / "data", models=echo_catalog(tmp_path, srv), env=env)
        try:
            app.wait_ready()
            me, other = (Client(app.url, verbose=False) for _ in range(2))
            job = me.submit(f"Tell me about the {word}", "", "echo", api_name="/chat")
            cid = [frame for frame in job][-1][0]
            second = [f for f in me.submit("And then?", cid, "echo", api_name="/chat")][-1]
            assert second[0] == cid
            other.predict("Something of my own", "", "echo", api_name="/chat")

            (listed,) = me.predict(api_name="/conversations")
            assert listed["id"] == cid and listed["title"] == f"Tell me about the {word}"
            shown = me.predict(cid, api_name="/conversation")
            assert [m["content"] for m in shown["messages"]][::2] == [
                f"Tell me about the {word}",
                "And then?",
            ]
            (hit,) = me.predict(word.upper(), api_name="/search")
            assert hit["id"] == cid and hit["match_in"] == "title"
            assert other.predict(word, api_name="/search") == []
            assert [c["id"] for c in other.predict(api_name="/conversations")] != [cid]
            with pytest.raises(Exception, match="not found"):
                other.predict(cid, api_name="/conversation")
        finally:
            app.stop()
    assert word not in app.log(), "message text never goes to the log"
    assert not list((tmp_path / "data").rglob("conversations/*.json")), "no TinyDB files"
    store = PgHistory(pg_url, pool_size=1)
    titles = sorted(c["title"] for key in store.owners() for c in store.conversations_by_key(key))
    assert titles == ["Something of my own", f"Tell me about the {word}"]
    store.close()


def test_a_database_that_cannot_be_used_stops_the_start_clearly(tmp_path, postgres):
    url = postgres.url("no_such_database")
    app = RunningApp(tmp_path / "data", env={"PARLOR_DATABASE_URL": url})
    with pytest.raises(RuntimeError, match="app exited early") as stopped:
        app.wait_ready()
    app.stop()
    message = f"Parlor cannot start: the database 127.0.0.1:{postgres.port}/no_such_database"
    assert message in str(stopped.value)
    assert 'database "no_such_database" does not exist' in str(stopped.value)
    assert "Traceback" not in app.log()
