"""Retention (`PARLOR_RETENTION_DAYS`, chat/retention.py): conversations untouched for the
period are deleted from disk with their share links and sharing records, and recent ones
stay; through the service on a real store, a periodic sweeper, and the real app."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from apprunner import RunningApp
from gradio_client import Client
from scripted_server import ScriptedServer, echo_catalog
from test_service import _service

from chat import retention, sharing
from chat.history import History, iso, message_row, new_id
from chat.identity import COOKIE_NAME, CookieSigner, Owner, anonymous_id
from chat.shares import Shares

DAY = 86_400
SECRET = "test-secret-for-the-suite-0123456789"  # tests/apprunner.py's PARLOR_SECRET


def _conversation(history: History, owner: str, title: str, days_ago: float) -> str:
    """A conversation last written `days_ago` days ago, stored through the store (as an
    import keeps its dates), with a consent to share it with the model's authors."""
    stamp = iso(int((time.time() - days_ago * DAY) * 1e9))
    question = message_row("user", f"{title}?", parent_id=None, stamp=stamp)
    answer = message_row("assistant", f"{title}.", parent_id=question["id"], stamp=stamp)
    row = {
        "id": new_id(),
        "title": title,
        "model": "echo",
        "created_at": stamp,
        "updated_at": stamp,
        "leaf_id": answer["id"],
        "shape": 2,
        "consent": {"at": stamp, "model": "echo"},
    }
    assert history.add_conversations(owner, [(row, [question, answer])]) == 1
    return row["id"]


def _on_disk(root: Path) -> str:
    return "".join(p.read_text() for p in root.rglob("*.json"))


def wait_until(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def test_a_sweep_deletes_old_conversations_their_links_and_records(tmp_path):
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path, data_sharing=True)
        me = Owner(id="anon:" + "5" * 40, kind="anonymous")
        service.update_settings(me, {sharing.SETTING: True})
        old = _conversation(service.history, me.id, "walnut-old-417", days_ago=31)
        recent = _conversation(service.history, me.id, "walnut-new-418", days_ago=29)
        old_link = service.share(me, old)["id"]
        recent_link = service.share(me, recent)["id"]
        assert len(service.conversations(me)) == 2  # the listing is in memory now

        deleted = retention.sweep(service.history, days=30)
        # Written to before anything is listed: the listing kept in memory must not bring
        # the old one back.
        service.rename_conversation(me, recent, "still here")

        assert deleted == 1
        assert [c["id"] for c in service.conversations(me)] == [recent]
        assert service.history.get_conversation(me.id, old) is None
        assert service.shared(old_link) is None and service.shared(recent_link) is not None
        assert [s["id"] for s in service.shares(me)] == [recent_link]
        assert [hit["id"] for hit in service.search(me, "walnut")] == [recent]
        records = sharing.consented(service.history)["echo"]
        assert [r["messages"][0]["content"] for r in records] == ["walnut-new-418?"]
        text = _on_disk(tmp_path)
        assert "walnut-old-417" not in text and "walnut-new-418?" in text
        assert [c["title"] for c in service.conversations(me)] == ["still here"]


def test_the_sweeper_sweeps_again_while_the_server_runs(tmp_path):
    history = History(tmp_path)
    owner = "anon:" + "6" * 40
    kept = _conversation(history, owner, "kept", days_ago=1)
    later = _conversation(history, owner, "ages later", days_ago=1)
    sweeper = retention.Sweeper(history, days=7, every=0.05).start()
    try:
        wait_until(lambda: sweeper.sweeps >= 1, "a first sweep")
        assert {c["id"] for c in history.list_conversations(owner)} == {kept, later}
        path = next(tmp_path.rglob(f"{later}.json"))
        old = time.time() - 8 * DAY
        os.utime(path, (old, old))  # untouched for 8 days now
        wait_until(lambda: not path.exists(), "the aged conversation deleted")
    finally:
        sweeper.stop()
    assert [c["id"] for c in history.list_conversations(owner)] == [kept]


def test_the_app_sweeps_at_start_up_and_its_privacy_page_says_so(tmp_path):
    """Conversations stored before the app starts: those untouched for 30 days are gone
    once it runs (their share link answers 404), the others are listed as before."""
    data = tmp_path / "data"
    session = CookieSigner.new_session_id()
    owner, history = anonymous_id(session), History(data)
    old = _conversation(history, owner, "acorn-old-733", days_ago=45)
    recent = _conversation(history, owner, "acorn-new-734", days_ago=3)
    shares = Shares(history)
    links = [
        shares.create(owner, history.get_conversation(owner, cid), [])["id"]
        for cid in (old, recent)
    ]
    with ScriptedServer() as srv:
        srv.script("echo")
        env = {"PARLOR_RETENTION_DAYS": "30", "PARLOR_SECRET": SECRET}
        app = RunningApp(data, models=echo_catalog(tmp_path, srv), env=env).wait_ready()
        try:
            cookies = {COOKIE_NAME: CookieSigner(SECRET).sign(session)}
            me = Client(app.url, verbose=False, httpx_kwargs={"cookies": cookies})
            wait_until(lambda: "acorn-old-733" not in _on_disk(data), "the start-up sweep")
            listed = me.predict(api_name="/conversations")
            assert [c["id"] for c in listed] == [recent]
            assert "conversation not found" in _error(me, old)
            shared = [httpx.get(f"{app.url}r/{link}").status_code for link in links]
            assert shared == [404, 200]
            page = httpx.get(app.url + "privacy").text
            assert "nobody has written in for <strong>30 days</strong> is deleted" in page
            assert "deleted 1 conversation(s) untouched for 30 days" in app.log()
        finally:
            app.stop()


def _error(client: Client, conversation_id: str) -> str:
    try:
        client.predict(conversation_id, api_name="/conversation")
    except Exception as e:
        return str(e)
    return ""


def test_a_conversation_imported_today_is_kept_for_the_period_from_its_import(tmp_path):
    """An export of last year's conversations, imported now, keeps its dates in the list;
    the sweep that follows must not delete what `/import` just said it added."""
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path)
        me = Owner(id="anon:" + "7" * 40, kind="anonymous")
        stamp = "2025-01-15T10:00:00.000000+00:00"
        document = {
            "format": "parlor-export",
            "version": 1,
            "conversations": [
                {
                    "id": "c" * 32,
                    "title": "Last winter's plans",
                    "model": "echo",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "messages": [{"role": "user", "content": "Plans for the winter?"}],
                }
            ],
        }
        assert service.import_data(me, json.dumps(document)) == 1
        assert retention.sweep(service.history, days=30) == 0
        [listed] = service.conversations(me)
        assert (listed["title"], listed["updated_at"][:10]) == ("Last winter's plans", "2025-01-15")
        # Its clock runs from the import: once the period has passed, it goes.
        later = time.time_ns() + 31 * DAY * 10**9
        assert retention.sweep(service.history, days=30, now_ns=later) == 1
        assert service.conversations(me) == []
