"""End to end: the real app on a machine in offline mode (`HF_HUB_OFFLINE=1`) and with
secrets in its environment.

The embedded model and a server on 127.0.0.1 (the scripted one, as an `openai` endpoint)
answer; the Inference Providers model is unavailable and says why; and the embedded model's
own process sees none of the app's secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from playwright.sync_api import expect
from scripted_server import ScriptedServer

REASON = "offline mode is on (HF_HUB_OFFLINE)"
SECRETS = {
    "HF_TOKEN": "hf_offline_suite_server_secret",
    "OAUTH_CLIENT_SECRET": "oauth-client-secret-of-the-suite",
    "TEAM_KEY": "team-key-of-the-suite",
}
CATALOG = """
models:
  - id: smollm2-135m
    name: SmolLM2 135M · runs on this machine
    system_prompt: You are a helpful assistant.
    parameters: {{temperature: 0.7, top_p: 0.9, max_tokens: 48}}
    endpoints: [{{type: local}}]
  - id: openai/gpt-oss-120b
    name: gpt-oss 120B
    endpoints: [{{type: hf}}]
  - id: team-model
    name: Team model
    endpoints: [{{type: openai, base_url: "{base_url}", model: served, token_env: TEAM_KEY}}]
"""


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory, scripted: ScriptedServer) -> Iterator[RunningApp]:
    root: Path = tmp_path_factory.mktemp("offline")
    models = root / "models.yaml"
    models.write_text(CATALOG.format(base_url=scripted.base_url))
    env = {"HF_HUB_OFFLINE": "1", **SECRETS}
    running = RunningApp(root / "data", models=models, env=env).wait_ready()
    yield running
    running.stop()


def ask(client: Client, message: str, model_id: str = "") -> str:
    job = client.submit(message, "", model_id, api_name="/chat")
    return job.result()[1]  # raises the app's error, if any


def test_embedded_model_answers_in_offline_mode(offline_app):
    answer = ask(Client(offline_app.url, verbose=False), "Name three colours.")
    assert answer.strip(), "the embedded model wrote an answer"
    assert "stream_cut" not in offline_app.log()


def test_local_network_server_answers_in_offline_mode(offline_app, scripted):
    scripted.script("tokens", tokens=["Offline", " but", " here."])
    scripted.clear()
    c = Client(offline_app.url, verbose=False)
    assert ask(c, "Hello?", "team-model") == "Offline but here."
    [request] = scripted.requests
    assert request["headers"]["authorization"] == "Bearer team-key-of-the-suite"


def test_inference_providers_model_is_unavailable_and_says_why(offline_app):
    c = Client(offline_app.url, verbose=False)
    models = {m["id"]: m for m in c.predict(api_name="/models")}
    remote = models["openai/gpt-oss-120b"]
    assert remote["available"] is False
    assert "offline mode" in remote["unavailable_reason"]
    assert "HF_HUB_OFFLINE" in remote["unavailable_reason"]
    assert models["smollm2-135m"]["available"] and models["team-model"]["available"]
    assert all(models[i]["unavailable_reason"] == "" for i in ("smollm2-135m", "team-model"))
    assert f"Unavailable: {REASON}" in httpx.get(offline_app.url + "models").text

    for attempt in (
        lambda: c.predict("openai/gpt-oss-120b", api_name="/new_conversation"),
        lambda: ask(c, "Hello?", "openai/gpt-oss-120b"),
    ):
        with pytest.raises(Exception, match=re.escape(REASON)):
            attempt()
    assert c.predict(api_name="/conversations") == [], "a refused model stores nothing"


def test_embedded_model_process_sees_none_of_the_apps_secrets(offline_app):
    [child] = offline_app.children()
    names = dict(
        entry.split("=", 1)
        for entry in Path(f"/proc/{child}/environ").read_text().split("\0")
        if "=" in entry
    )
    seen = "\0".join(f"{k}={v}" for k, v in names.items())
    secrets = [*SECRETS.values(), "test-secret-for-the-suite-0123456789"]  # PARLOR_SECRET
    assert not [s for s in secrets if s in seen], "a secret reached the model's process"
    assert not {"HF_TOKEN", "PARLOR_SECRET", "OAUTH_CLIENT_SECRET", "TEAM_KEY"} & set(names)
    assert names["PARLOR_LOCAL_TOKEN"] and names["PATH"]


def test_model_menu_says_why_a_model_is_unavailable(offline_app, people):
    me = people(offline_app.url).open()
    me.page.locator("#model input").click()
    remote = me.page.get_by_role("option", name=f"gpt-oss 120B (unavailable: {REASON}")
    expect(remote).to_be_visible()
    expect(me.page.get_by_role("option", name="Team model", exact=True)).to_be_visible()
