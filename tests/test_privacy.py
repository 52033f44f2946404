"""Every promise of the privacy page, checked end to end on the real app."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from apprunner import ROOT, RunningApp
from gradio_client import Client
from test_adopt import account, service_on, visitor

from chat import sharing
from chat.history import History, message_row
from chat.identity import COOKIE_NAME


def client(app: RunningApp, cookie: str | None = None) -> Client:
    kwargs = {"httpx_kwargs": {"cookies": {COOKIE_NAME: cookie}}} if cookie else {}
    return Client(app.url, verbose=False, **kwargs)


def chat(c: Client, message: str, conversation_id: str = "") -> str:
    return c.predict(message, conversation_id, "", api_name="/chat")[0]


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(Exception) as info:
        call(*args, **kwargs)
    return str(info.value)


def stored_text(app: RunningApp) -> str:
    return "".join(p.read_text() for p in app.data_dir.rglob("*.json"))


def test_foreign_ids_look_exactly_like_missing_ones(app):
    owner = client(app)
    cid = chat(owner, "walnut-orbit-913 is my secret")
    before = owner.predict(cid, api_name="/conversation")
    stranger = client(app)
    missing = "0" * 32
    for endpoint, args in [
        ("/conversation", ()),
        ("/rename_conversation", ("stolen",)),
        ("/retry", ()),
    ]:
        foreign = error_of(stranger.predict, cid, *args, api_name=endpoint)
        absent = error_of(stranger.predict, missing, *args, api_name=endpoint)
        assert "conversation not found" in foreign
        assert foreign == absent, endpoint
    chat_error = error_of(lambda: stranger.predict("mine", cid, "", api_name="/chat"))
    assert chat_error == error_of(lambda: stranger.predict("mine", missing, "", api_name="/chat"))
    assert stranger.predict(cid, api_name="/delete_conversation") == {"deleted": False}
    assert stranger.predict(cid, api_name="/stop") == {"stopped": False}
    assert stranger.predict(api_name="/delete_all_conversations") == {"deleted": 0}
    assert stranger.predict(api_name="/export")["conversations"] == []
    assert owner.predict(cid, api_name="/conversation") == before, "nothing changed"


def test_a_session_id_does_not_reveal_what_that_person_saw(app):
    """Gradio's deep links would save a session's last inputs and outputs (the message and
    its answer) for anyone who names the session, and serve them back in the page config."""
    owner = client(app)
    chat(owner, "quartz-lantern-208 is my secret")
    with httpx.Client(base_url=app.url) as stranger:
        link = stranger.get("/gradio_api/deep_link", params={"session_hash": owner.session_hash})
        assert link.status_code == 404
        page = stranger.get("/config", params={"deep_link": link.text.strip('"') or "x"})
        assert "quartz-lantern-208" not in page.text


def test_rename(app):
    c = client(app)
    cid = chat(c, "rename me")
    assert c.predict(cid, "  Holiday   plans ", api_name="/rename_conversation")["title"] == (
        "Holiday plans"
    )
    assert c.predict(api_name="/conversations")[0]["title"] == "Holiday plans"
    assert "cannot be empty" in error_of(
        lambda: c.predict(cid, "   ", api_name="/rename_conversation")
    )


def test_export_import_round_trip(app):
    alice = client(app)
    first = chat(alice, "lantern-fig-205 first")
    chat(alice, "and a follow-up", first)
    second = chat(alice, "another conversation")
    exported = alice.predict(api_name="/export")
    assert exported["format"] == "parlor-export" and exported["version"] == 2
    assert {c["id"] for c in exported["conversations"]} == {first, second}

    fresh_browser = client(app)
    text = json.dumps(exported)
    assert fresh_browser.predict(text, api_name="/import") == {"imported": 2}
    assert fresh_browser.predict(text, api_name="/import") == {"imported": 0}, "no duplicates"
    got = fresh_browser.predict(first, api_name="/conversation")
    assert [m["content"] for m in got["messages"]] == [
        m["content"] for m in alice.predict(first, api_name="/conversation")["messages"]
    ]
    # The imported copy is the new browser's own: keep chatting in it.
    assert chat(fresh_browser, "continue here", first) == first


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not json", "not valid JSON"),
        ('{"format": "something-else"}', "not a Parlor export"),
        ('{"format": "parlor-export", "version": 99}', "newer version"),
        ('{"format": "parlor-export", "version": 1, "conversations": [{"id": "x"}]}', "damaged"),
    ],
)
def test_bad_imports_are_explained(app, data, reason):
    c = client(app)
    assert reason in error_of(lambda: c.predict(data, api_name="/import"))
    assert c.predict(api_name="/conversations") == []


def test_delete_all_removes_the_data_from_disk(app):
    c = client(app)
    for text in ("quasar-pickle-1 one", "quasar-pickle-2 two"):
        chat(c, text)
    assert "quasar-pickle-1" in stored_text(app)
    assert c.predict(api_name="/delete_all_conversations") == {"deleted": 2}
    assert c.predict(api_name="/conversations") == []
    assert "quasar-pickle" not in stored_text(app), "gone from disk, not flagged"


def test_message_text_never_reaches_the_log(app):
    c = client(app)
    chat(c, "marmalade-vortex-771 should stay private")
    assert "marmalade-vortex-771" not in app.log()


def test_settings_without_sharing(app):
    c = client(app)
    assert "share_with_model_authors" not in c.predict(api_name="/settings")
    assert "Unknown setting" in error_of(
        lambda: c.predict({"share_with_model_authors": True}, api_name="/update_settings")
    )


def test_privacy_and_models_pages(app):
    page = httpx.get(app.url + "privacy").text
    assert "shared with <strong>no one</strong>" in page
    assert "SmolLM2 135M" in page and "smollm2-135m" in page
    assert "cookie" in page and "Delete all my conversations" in page
    models = httpx.get(app.url + "models").text
    assert "Start a chat with this model" in models and "/?model=smollm2-135m" in models


@pytest.fixture(scope="module")
def sharing_app(tmp_path_factory):
    running = RunningApp(
        tmp_path_factory.mktemp("sharing") / "data",
        env={"PARLOR_DATA_SHARING": "true", "PARLOR_FEEDBACK_URL": "https://example.org/talk"},
    ).wait_ready()
    yield running
    running.stop()


def test_sharing_is_opt_in_and_recorded(sharing_app, tmp_path):
    page = httpx.get(sharing_app.url + "privacy").text
    assert "<strong>off</strong>" in page and "https://example.org/talk" in page
    private, sharer = client(sharing_app), client(sharing_app)
    assert private.predict(api_name="/settings")["share_with_model_authors"] is False
    chat(private, "kept-private-123")
    shared = sharer.predict({"share_with_model_authors": True}, api_name="/update_settings")
    assert shared["share_with_model_authors"] is True
    shared_id = chat(sharer, "shared-with-authors-456")

    out = tmp_path / "export"
    env = {"PARLOR_DATA_DIR": str(sharing_app.data_dir), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "chat.sharing", "--out", str(out)], cwd=ROOT, env=env, check=True
    )
    (path,) = out.glob("*.jsonl")
    assert path.name == "smollm2-135m.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["model"] == "smollm2-135m" and rows[0]["consented_at"]
    assert rows[0]["messages"][0]["content"] == "shared-with-authors-456"
    assert "kept-private-123" not in path.read_text()

    # Turning sharing off withdraws the consent of conversations not yet handed over.
    sharer.predict({"share_with_model_authors": False}, api_name="/update_settings")
    chat(sharer, "after withdrawal", shared_id)
    out2 = tmp_path / "export2"
    subprocess.run(
        [sys.executable, "-m", "chat.sharing", "--out", str(out2)], cwd=ROOT, env=env, check=True
    )
    assert not list(out2.glob("*.jsonl"))


CONSENT = {"at": "2000-01-01T00:00:00.000000+00:00", "model": "m"}


def shared_texts(history: History) -> list[str]:
    return [
        m["content"]
        for rows in sharing.consented(history).values()
        for r in rows
        for m in r["messages"]
    ]


def test_conversations_moved_at_sign_in_follow_the_accounts_sharing(store):
    """A visitor who shares signs in to an account that does not: the account's "off" wins
    the settings, so the page says sharing is off, and the moved conversations must not be
    shared either (their consent came along with them)."""
    history = store
    service = service_on(history, data_sharing=True)
    me, mine = visitor(5), account("no-share")
    service.update_settings(mine, {service.SHARE: False})
    service.update_settings(me, {service.SHARE: True})
    cid = history.create_conversation(
        me.id, model="m", first_message="moved-consent-777", consent=CONSENT
    )["id"]
    assert shared_texts(history) == ["moved-consent-777"]

    assert service.adopt(mine, me) == 1
    assert service.settings(mine)[service.SHARE] is False
    assert history.conversation_row(mine.id, cid)["consent"] is None
    assert shared_texts(history) == []


def test_an_account_without_a_setting_takes_the_visitors_sharing(store):
    history = store
    service = service_on(history, data_sharing=True)
    me, mine = visitor(6), account("fresh")
    service.update_settings(me, {service.SHARE: True})
    history.create_conversation(me.id, model="m", first_message="still-shared-778", consent=CONSENT)
    assert service.adopt(mine, me) == 1
    assert service.settings(mine)[service.SHARE] is True
    assert shared_texts(history) == ["still-shared-778"]


def test_sharing_exports_only_people_whose_setting_is_on(store):
    """A conversation's consent alone is not enough: its owner must share now (consents
    stored before sign-in followed the setting, or written by an older Parlor)."""
    history = store
    sharer, stopped, never = visitor(7), visitor(8), visitor(9)
    history.update_settings(sharer.id, {"share_with_model_authors": True})
    history.update_settings(stopped.id, {"share_with_model_authors": False})
    for owner, text in ((sharer, "on-779"), (stopped, "off-780"), (never, "unset-781")):
        history.create_conversation(owner.id, model="m", first_message=text, consent=CONSENT)
    assert shared_texts(history) == ["on-779"]


def test_shared_conversations_keep_their_branches_apart(store):
    """An edited question and its first version are both shared, each with its parent, so
    model authors can tell an alternative from the next turn."""
    history = store
    sharer = visitor(10)
    history.update_settings(sharer.id, {"share_with_model_authors": True})
    conv = history.create_conversation(sharer.id, model="m", first_message="q-782", consent=CONSENT)
    first = history.get_conversation(sharer.id, conv["id"])["messages"][0]
    edited = message_row("user", "q-783", parent_id=None)
    history.add_messages(sharer.id, conv["id"], [edited])
    (line,) = sharing.consented(history)["m"]
    assert [(m["content"], m["parent_id"]) for m in line["messages"]] == [
        ("q-782", None),
        ("q-783", None),
    ]
    assert [m["id"] for m in line["messages"]] == [first["id"], edited["id"]]
