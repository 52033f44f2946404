"""The Settings panel and the welcome notice in Chromium, on the real app and the scripted
model: the theme turns the page dark at once and after a reload, a custom system prompt
reaches the model, and the welcome notice is shown once; /settings through gradio_client."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browser import Person
from gradio_client import Client
from playwright.sync_api import expect
from test_browser_tree import Stack, scripted_stack, shot


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    welcome = "Hello from **this deployer**: see [privacy](privacy)."
    yield from scripted_stack(tmp_path_factory, "settings", echo=True, PARLOR_WELCOME=welcome)


def system_prompt_sent(stack: Stack) -> str:
    """The system prompt of the last answer asked for ('' when none); a title's request,
    which ends with the start of its answer, is not one."""
    sent = [r["body"]["messages"] for r in stack.model.requests if r["body"]]
    asked = [messages for messages in sent if messages[-1]["role"] == "user"][-1]
    return next((m["content"] for m in asked if m["role"] == "system"), "")


def open_settings(me: Person) -> None:
    me.doc.locator("#settings").get_by_role("button", name="Settings").first.click()
    expect(me.doc.locator("#save-settings")).to_be_visible()


def test_the_welcome_notice_is_shown_once(people, stack):
    me = people(stack.app.url).open()
    welcome = me.doc.locator("#welcome")
    expect(welcome).to_contain_text("Hello from this deployer")
    expect(welcome.get_by_role("link", name="privacy")).to_have_attribute("href", "privacy")
    me.click_and_settle(me.doc.locator("#welcome-dismiss"))
    expect(welcome).to_be_hidden()
    me.reload()  # the page has loaded the person's settings: still not shown
    expect(welcome).to_be_hidden()
    someone_else = people(stack.app.url).open()
    expect(someone_else.doc.locator("#welcome")).to_be_visible()


def test_the_theme_applies_at_once_and_stays_and_a_system_prompt_reaches_the_model(people, stack):
    me = people(stack.app.url).open()
    body = me.page.locator("body")
    expect(body).not_to_have_class(re.compile(r"\bdark\b"))
    open_settings(me)
    expect(me.doc.locator("#system-prompt textarea")).to_have_attribute(
        "placeholder",
        "(no system prompt)",  # the echo model has none of its own
    )
    me.doc.locator("#theme").get_by_label("dark").check()
    expect(body).to_have_class(re.compile(r"\bdark\b"))  # before anything is saved
    me.doc.locator("#system-prompt textarea").fill("Answer like a pirate.")
    me.click_and_settle(me.doc.locator("#save-settings"))
    me.chat("hello there")
    assert system_prompt_sent(stack) == "Answer like a pirate."
    shot(me, "settings-dark")

    me.reload()
    expect(body).to_have_class(re.compile(r"\bdark\b"))  # the stored theme, on load
    open_settings(me)
    expect(me.doc.locator("#system-prompt textarea")).to_have_value("Answer like a pirate.")
    me.doc.locator("#theme").get_by_label("light").check()
    expect(body).not_to_have_class(re.compile(r"\bdark\b"))


def test_settings_through_the_client_api(stack):
    client = Client(stack.app.url, verbose=False)
    assert client.predict(api_name="/settings") == {
        "default_model": "",
        "system_prompts": {},
        "theme": "system",
        "welcome_dismissed": False,
    }
    changed = client.predict(
        {"theme": "dark", "system_prompts": {"echo": "Be brief."}}, api_name="/update_settings"
    )
    assert changed["theme"] == "dark" and changed["system_prompts"] == {"echo": "Be brief."}
    client.predict("hi", "", "", api_name="/chat")
    assert system_prompt_sent(stack) == "Be brief."
    with pytest.raises(Exception, match="'theme' must be one of: system, light, dark"):
        client.predict({"theme": "purple"}, api_name="/update_settings")
    assert client.predict(api_name="/settings")["theme"] == "dark"  # nothing lost
