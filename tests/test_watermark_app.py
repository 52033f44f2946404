"""The watermark end to end, on the real app and the real embedded model: an answer of the
model that marks is found by /detect_watermark and /check, one of the same model unmarked is
not, the conversation says which is which, older files read as unmarked, and the key is in no
log, page, API answer, or the embedded model's command line or environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from test_stored_v1 import EXPECTED, OWNERS, chat, data, files  # noqa: F401 - fixtures

MODELS = Path(__file__).resolve().parent / "models-watermark.yaml"
MARKED, PLAIN = "smollm2-135m", "smollm2-plain"
PROMPT = "Write a story about a lighthouse keeper."


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[RunningApp]:
    """The app with the embedded model twice: watermarked and not; its key generated."""
    app = RunningApp(tmp_path_factory.mktemp("watermark") / "data", models=MODELS).wait_ready()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def answers(served) -> dict[str, dict]:
    """One answer of each model, as /conversation gives its last message, and the client."""
    client = Client(served.url, verbose=False)
    out = {}
    for model in (MARKED, PLAIN):
        cid, _ = client.predict(PROMPT, "", model, api_name="/chat")
        out[model] = client.predict(cid, api_name="/conversation")["messages"][-1]
    return out


def detect(app: RunningApp, text: str, model_id: str = MARKED) -> dict:
    return Client(app.url, verbose=False).predict(text, model_id, api_name="/detect_watermark")


def test_a_watermarked_answer_is_found_and_a_plain_one_is_not(served, answers):
    marked, plain = answers[MARKED], answers[PLAIN]
    assert marked["watermark"] == {"model": MARKED, "gamma": 0.25, "delta": 2.0}
    assert plain["watermark"] is None
    found = detect(served, marked["content"])
    assert found["watermarked"] is True and found["z"] >= 4 and found["p_value"] < 1e-4
    assert found["verdict"].startswith("Watermarked") and found["model"] == MARKED
    missed = detect(served, plain["content"])
    assert missed["watermarked"] is False and missed["z"] < 4
    assert missed["verdict"] == "No watermark found."


def test_check_page_and_detect_watermark_refuse_what_they_cannot_judge(served, answers):
    few = detect(served, "Hello there, friend.")
    assert few["watermarked"] is None and few["verdict"].startswith("Cannot judge")
    for text, model, why in (
        ("   ", MARKED, "Paste the text to check."),
        (answers[MARKED]["content"], PLAIN, "'smollm2-plain' does not watermark its answers"),
        ("word " * 5000, MARKED, "too long to check here"),
    ):
        with pytest.raises(Exception, match=why):
            detect(served, text, model)
    page = httpx.post(served.url + "check", data={"text": " ", "model": MARKED})
    assert page.status_code == 200 and "Paste the text to check." in page.text


def test_the_key_never_leaves_the_server(served, answers):
    key = (served.data_dir / "watermark.key").read_text()
    assert len(key) >= 32
    client = Client(served.url, verbose=False)
    cid, _ = client.predict(PROMPT, "", MARKED, api_name="/chat")
    seen = [
        served.log(),
        json.dumps(client.predict(cid, api_name="/conversation")),
        json.dumps(client.predict(api_name="/export")),
        json.dumps(client.view_api(print_info=False, return_format="dict")),
        json.dumps(detect(served, answers[MARKED]["content"])),
        httpx.post(served.url + "check", data={"text": answers[MARKED]["content"]}).text,
    ]
    seen += [
        httpx.get(served.url + path).text for path in ("", "config", "check", "models", "privacy")
    ]
    for pid in served.children():  # the embedded model: its key came down a pipe
        proc = Path("/proc") / str(pid)
        seen += [(proc / "cmdline").read_bytes().decode(), (proc / "environ").read_bytes().decode()]
    assert served.children(), "the embedded model runs in a child process"
    assert not [i for i, text in enumerate(seen) if key in text]


def test_messages_of_an_older_parlor_read_as_unmarked(data, chat):  # noqa: F811
    before = files(data)
    marks = [
        m["watermark"]
        for owner in OWNERS
        for conv in EXPECTED[owner.id]["conversations"]
        for m in chat.conversation(owner, conv["id"])["all_messages"]
    ]
    assert len(marks) > 10 and set(marks) == {None}
    assert files(data) == before, "reading rewrites nothing"
