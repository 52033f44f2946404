"""Journeys in a real browser: headless Chromium on the launched app and embedded model.

Each test is one person's (or two people's) visit, asserting what they see on the page.
One browser serves the session (`tests/browser.py`); each person gets a fresh context, that
is a fresh cookie jar. End states are saved as screenshots under tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import browser as chromium
import pytest
import yaml
from apprunner import TEST_MODELS, RunningApp
from browser import Person
from playwright.sync_api import expect

EMPTY_CHAT = "Ask anything."  # the chat's placeholder, shown while it has no messages
MODEL_NAME = "SmolLM2 135M · runs on this machine"  # tests/models-test.yaml


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """The apps of this module, by name: started on first use, stopped at the end."""
    started: dict[str, RunningApp] = {}

    def start(name: str, **kwargs) -> RunningApp:
        if name not in started:
            data = tmp_path_factory.mktemp(f"browser-{name}") / "data"
            started[name] = RunningApp(data, **kwargs)
        return started[name]

    try:
        yield start
    finally:
        for running in started.values():
            running.stop()


@pytest.fixture(scope="module")
def long_models(tmp_path_factory) -> Path:
    """tests/models-test.yaml with room for 400 tokens: answers long enough to stop."""
    catalog = yaml.safe_load(TEST_MODELS.read_text())
    for model in catalog["models"]:
        model.setdefault("parameters", {})["max_tokens"] = 400
    path = tmp_path_factory.mktemp("browser-models") / "models-long.yaml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def url(apps, long_models) -> str:
    """The app with short answers (tests/models-test.yaml)."""
    ready = apps("short").wait_ready().url
    apps("long", models=long_models)  # starts loading now, while the first journeys run
    return ready


@pytest.fixture(scope="module")
def long_url(apps, long_models) -> str:
    """An app whose answers run to 400 tokens, for the Stop journey."""
    return apps("long", models=long_models).wait_ready().url


def words(text: str) -> str:
    """Text as words, without Markdown marks (a half-written `**title` shows its stars)."""
    return " ".join(re.sub(r"[*_#`>]", " ", text).split())


def expect_empty_chat(person: Person) -> None:
    expect(person.bubbles).to_have_count(0)
    expect(person.page.locator("#chatbot")).to_contain_text(EMPTY_CHAT)


def what_shows(me: Person) -> dict:
    """What a person sees of the chat, in one comparable piece."""
    return {
        "messages": me.messages(),
        "sidebar": me.sidebar(),
        "selected": me.selected(),
        "model": me.page.locator("#model input").input_value(),
        "message box": me.box.input_value(),
        "send button": me.send_button.inner_text().strip(),
    }


def test_first_visit_chat_streams(people, url):
    me = people(url).open()
    expect_empty_chat(me)
    assert me.sidebar() == []
    expect(me.stop_button).to_be_hidden()

    question = "Describe, in a few sentences, why the sky looks blue during the day."
    me.watch_stream()
    joined = me.type_and_send(question)
    expect(me.bubbles.first).to_have_text(question)
    me.wait_answered(joined, 1)
    answer = me.answers.last.inner_text().strip()

    assert me.messages() == [("user", question), ("bot", answer)]
    assert answer and chromium.FAILED not in answer, f"the model did not answer: {answer!r}"
    samples = me.stream_samples()
    partial = sorted({s["length"] for s in samples if 0 < s["length"] < len(answer)})
    assert len(partial) >= 2, f"the answer grows while it streams, saw lengths {partial}"
    assert any(s["stop"] for s in samples), "Stop shows while the answer is written"
    expect(me.box).to_have_value("")

    # The sidebar titles the conversation by the first words of the question.
    expect(me.entries).to_have_count(1)
    assert me.sidebar() == ["Describe, in a few sentences, why the sky…"]
    assert me.selected() == me.sidebar()
    expect(me.stop_button).to_be_hidden()
    expect(me.send_button).to_be_visible()
    expect(me.page.locator("#delete")).to_be_visible()

    # The model that just answered is not offered as "(unavailable)", and the cookie is kept.
    expect(me.page.locator("#model input")).to_have_value(MODEL_NAME)
    expect(me.page.locator("#cookie-warning")).not_to_contain_text("blocks Parlor's cookie")


def test_new_chat_and_switch(people, url):
    me = people(url).open()
    answer_a = me.chat("Tell me about apples.")
    assert me.sidebar() == ["Tell me about apples."]

    me.new_chat()
    expect_empty_chat(me)
    expect(me.page.locator("#delete")).to_be_hidden()
    assert me.selected() == []

    answer_b = me.chat("Tell me about bananas.", enter=False)
    assert me.messages() == [("user", "Tell me about bananas."), ("bot", answer_b)]
    assert me.sidebar() == ["Tell me about bananas.", "Tell me about apples."]

    me.open_conversation("Tell me about apples.")
    assert me.messages() == [("user", "Tell me about apples."), ("bot", answer_a)]
    assert me.selected() == ["Tell me about apples."]

    answer_a2 = me.chat("And pears?")
    assert me.messages() == [
        ("user", "Tell me about apples."),
        ("bot", answer_a),
        ("user", "And pears?"),
        ("bot", answer_a2),
    ]
    # Still two conversations; the one just used is now the newest.
    assert me.sidebar() == ["Tell me about apples.", "Tell me about bananas."]
    assert me.selected() == ["Tell me about apples."]


def test_delete_with_confirmation(people, url):
    me = people(url).open()
    me.chat("Keep this one.")
    me.new_chat()
    answer = me.chat("Delete this one.")
    assert me.sidebar() == ["Delete this one.", "Keep this one."]
    confirm = me.page.locator("#confirm-delete")
    expect(confirm).to_be_hidden()

    me.click_and_settle(me.page.locator("#delete"))
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Delete this conversation for good?")
    me.click_and_settle(me.page.locator("#confirm-delete-no"))
    expect(confirm).to_be_hidden()
    assert me.sidebar() == ["Delete this one.", "Keep this one."]
    assert me.messages() == [("user", "Delete this one."), ("bot", answer)]

    me.click_and_settle(me.page.locator("#delete"))
    expect(confirm).to_be_visible()
    me.click_and_settle(me.page.locator("#confirm-delete-yes"))
    expect(confirm).to_be_hidden()
    expect(me.entries).to_have_count(1)
    assert me.sidebar() == ["Keep this one."]
    assert me.selected() == []
    expect_empty_chat(me)
    expect(me.page.locator("#delete")).to_be_hidden()

    me.reload()
    expect(me.entries).to_have_count(1)
    assert me.sidebar() == ["Keep this one."]
    expect_empty_chat(me)


def test_reload_keeps_history_for_this_person_only(people, url):
    me = people(url).open()
    answer = me.chat("Remember the number 42.")
    me.reload()
    expect(me.entries).to_have_count(1)
    assert me.sidebar() == ["Remember the number 42."]
    expect_empty_chat(me)
    me.open_conversation("Remember the number 42.")
    assert me.messages() == [("user", "Remember the number 42."), ("bot", answer)]

    # Another person (another cookie jar) sees none of it, once their page has loaded.
    stranger = people(url).open()
    assert stranger.sidebar() == []
    expect_empty_chat(stranger)


def test_stop_keeps_the_partial_answer(people, long_url):
    me = people(long_url).open()
    question = "Write a long story about a brave dragon and a little girl."
    me.watch_stream()
    joined = me.type_and_send(question)
    seen = me.wait_first_words()
    # The new conversation is in the sidebar while its first answer is still being written.
    expect(me.entry("Write a long story about a brave dragon…")).to_be_visible()
    expect(me.stop_button).to_be_visible()
    me.stop_button.click()
    me.wait_answered(joined, 1)

    answer = me.answers.last
    stopped = answer.inner_text().strip()
    assert stopped.endswith("■ Stopped."), stopped
    partial = stopped.removesuffix("■ Stopped.").strip()
    assert words(partial).startswith(words(seen)), "the words written before Stop stay"
    me.page.wait_for_timeout(1000)
    assert answer.inner_text().strip() == stopped, "the answer stopped growing"
    # Up to 400 tokens were allowed: the answer stopped well before.
    assert len(partial.split()) < 200, partial

    me.new_chat()
    expect_empty_chat(me)
    me.open_conversation("Write a long story about a brave dragon…")
    assert me.messages() == [("user", question), ("bot", stopped)]


def test_empty_message_sends_nothing(people, url):
    me = people(url).open()
    before = what_shows(me)
    assert before["model"] == MODEL_NAME and before["send button"] == "Send"
    me.settle(me.type_and_send("", enter=False))
    expect(me.page.locator(".toast-body").first).to_contain_text("an empty message is not sent")
    assert what_shows(me) == before, "an empty message changes nothing on the page"
    expect_empty_chat(me)

    # In a conversation, a blank message neither sends nor disturbs what is on the page.
    answer = me.chat("Hello there.")
    me.settle(me.type_and_send("   "))
    assert what_shows(me) == {
        "messages": [("user", "Hello there."), ("bot", answer)],
        "sidebar": ["Hello there."],
        "selected": ["Hello there."],
        "model": MODEL_NAME,
        "message box": "   ",  # nothing typed is lost
        "send button": "Send",
    }
