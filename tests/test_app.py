"""End to end: the real app on the embedded model, driven by gradio_client."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest
from apprunner import ROOT, RunningApp
from gradio_client import Client

from chat.identity import COOKIE_NAME


def client(app: RunningApp, cookie: str | None = None) -> Client:
    kwargs = {"httpx_kwargs": {"cookies": {COOKIE_NAME: cookie}}} if cookie else {}
    return Client(app.url, verbose=False, **kwargs)


def chat(c: Client, message: str, conversation_id: str = "") -> tuple[str, list]:
    job = c.submit(message, conversation_id, "", api_name="/chat")
    updates = [tuple(u) for u in job]
    job.result()  # raises the app's error, if any
    return job.outputs()[-1][0], updates


def test_chat_streams_and_is_listed(app):
    c = client(app)
    cid, updates = chat(c, "Name three colours.")
    assert len(updates) > 1, "the answer streams in several updates"
    final = updates[-1][1]
    assert final.strip(), "the answer is not empty"
    assert all(final.startswith(u[1]) for u in updates), "each update extends the last"
    listed = c.predict(api_name="/conversations")
    assert [x["id"] for x in listed] == [cid]
    assert listed[0]["title"] == "Name three colours."
    conv = c.predict(cid, api_name="/conversation")
    assert [(m["role"], m["content"]) for m in conv["messages"]] == [
        ("user", "Name three colours."),
        ("assistant", final),
    ]
    assert conv["messages"][1]["model"] == "smollm2-135m"


def test_keep_chatting_in_a_conversation(app):
    c = client(app)
    cid, _ = chat(c, "Hello!")
    again, updates = chat(c, "And goodbye.", cid)
    assert again == cid
    conv = c.predict(cid, api_name="/conversation")
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]
    assert conv["messages"][3]["content"] == updates[-1][1]


def test_another_client_sees_nothing(app):
    owner = client(app)
    cid, _ = chat(owner, "My secret plan.")
    stranger = client(app)
    assert stranger.predict(api_name="/conversations") == []
    with pytest.raises(Exception, match="conversation not found"):
        stranger.predict(cid, api_name="/conversation")
    with pytest.raises(Exception, match="conversation not found"):
        stranger.predict("mine now", cid, "", api_name="/chat")
    assert stranger.predict(cid, api_name="/delete_conversation") == {"deleted": False}
    assert len(owner.predict(cid, api_name="/conversation")["messages"]) == 2


def test_tampered_cookie_gets_a_fresh_identity(app):
    owner = client(app)
    chat(owner, "Private note.")
    cookie = owner.cookies[COOKIE_NAME]
    # One character of the signature changed: not the last one, whose two low bits are
    # base64 padding (A/B/C/D there decode to the same signature, as itsdangerous accepts).
    changed = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    for forged in (cookie[:-2], changed, "garbage"):
        assert client(app, forged).predict(api_name="/conversations") == []
    assert len(client(app, cookie).predict(api_name="/conversations")) == 1


def test_cookie_attributes(app):
    response = httpx.get(app.url)
    header = response.headers["set-cookie"]
    assert header.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in header and "Max-Age=34560000" in header


def test_empty_and_oversized_messages_store_nothing(app):
    c = client(app)
    with pytest.raises(Exception, match="empty message"):
        c.predict("   ", "", "", api_name="/chat")
    with pytest.raises(Exception, match="limit is 16,000"):
        c.predict("x" * 16_001, "", "", api_name="/chat")
    assert c.predict(api_name="/conversations") == []


def test_new_conversation_and_models(app):
    c = client(app)
    models = c.predict(api_name="/models")
    assert [m["id"] for m in models] == ["smollm2-135m"]
    assert models[0]["available"] and models[0]["default"]
    conv = c.predict("", api_name="/new_conversation")
    assert conv["model"] == "smollm2-135m" and conv["title"] == "New chat"
    with pytest.raises(Exception, match="unknown model"):
        c.predict("no-such-model", api_name="/new_conversation")
    cid, updates = chat(c, "Hi there", conv["id"])
    assert cid == conv["id"] and updates[-1][1]


def test_delete_conversation(app):
    c = client(app)
    cid, _ = chat(c, "Forget this.")
    assert c.predict(cid, api_name="/delete_conversation") == {"deleted": True}
    assert c.predict(api_name="/conversations") == []
    with pytest.raises(Exception, match="conversation not found"):
        c.predict(cid, api_name="/conversation")


def test_history_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    first = RunningApp(data).wait_ready()
    try:
        c = client(first)
        cid, updates = chat(c, "Remember the number 42.")
        cid2, _ = chat(c, "Second conversation.")
        cookie = c.cookies[COOKIE_NAME]
    finally:
        first.stop()
    second = RunningApp(data).wait_ready()
    try:
        back = client(second, cookie)
        assert [x["id"] for x in back.predict(api_name="/conversations")] == [cid2, cid]
        conv = back.predict(cid, api_name="/conversation")
        assert [m["content"] for m in conv["messages"]] == [
            "Remember the number 42.",
            updates[-1][1],
        ]
        assert client(second).predict(api_name="/conversations") == []
    finally:
        second.stop()


def test_sigterm_stops_the_embedded_model(tmp_path):
    running = RunningApp(tmp_path / "data").wait_ready()
    children = running.children()
    assert children, "the embedded model runs as a child process"
    running.proc.send_signal(signal.SIGTERM)
    running.proc.wait(timeout=20)
    running.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in children):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{p}") for p in children), "no orphan model process"


def test_health_reports_ready(app):
    assert httpx.get(app.url + "healthz").json() == {"status": "ok"}


def test_broken_models_yaml_stops_start_up_with_a_clear_message(tmp_path):
    broken = tmp_path / "models.yaml"
    broken.write_text("models:\n  - id: x\n    name: X\n    endpoints: [{type: openai}]\n")
    running = RunningApp(tmp_path / "data", models=broken)
    code = running.proc.wait(timeout=60)
    running.stop()
    log = running.log()
    assert code != 0
    assert f"{broken}: model 'x', field 'endpoints[0].base_url': Field required" in log
    assert "Traceback" not in log


def test_retired_model_conversation_opens_with_a_notice_and_continues(tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text(
        (ROOT / "tests" / "models-test.yaml").read_text()
        + "  - id: old-model\n    name: Old Model\n    endpoints: [{type: hf}]\n"
        "    retired: {on: 2024-06-01, transfer_to: smollm2-135m}\n"
    )
    running = RunningApp(tmp_path / "data", models=models).wait_ready()
    try:
        c = client(running)
        with pytest.raises(Exception, match="retired on 2024-06-01"):
            c.predict("old-model", api_name="/new_conversation")
        old = {
            "format": "parlor-export",
            "version": 1,
            "conversations": [
                {
                    "id": "a" * 32,
                    "title": "From 2023",
                    "model": "old-model",
                    "created_at": "2023-05-01T10:00:00+00:00",
                    "updated_at": "2023-05-01T10:00:00+00:00",
                    "messages": [
                        {"role": "user", "content": "Hello old model"},
                        {"role": "assistant", "content": "Hello!", "model": "old-model"},
                    ],
                }
            ],
        }
        assert c.predict(json.dumps(old), api_name="/import") == {"imported": 1}
        conv = c.predict("a" * 32, api_name="/conversation")
        assert conv["notice"] == (
            "Old Model was retired on 2024-06-01. SmolLM2 135M · runs on this machine "
            "continues this conversation."
        )
        chat(c, "Are you still there?", "a" * 32)
        answer = c.predict("a" * 32, api_name="/conversation")["messages"][-1]
        assert answer["model"] == "smollm2-135m" and answer["content"]
    finally:
        running.stop()
