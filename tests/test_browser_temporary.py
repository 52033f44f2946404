"""In Chromium, on the real app and the scripted model (echoing the question): the
Temporary chat switch, a deployment with history off, the Markdown download of the open
conversation, and a thumb clicked off. Screenshots in tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Person
from playwright.sync_api import expect
from test_browser_tree import Stack, answer_again, scripted_stack, shot, versions
from test_privacy import stored_text
from test_temporary import on_disk

SECRET = "marmot-indigo-3307"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "temporary-page", echo=True)


def switch(me: Person) -> None:
    me.click_and_settle(me.doc.locator("#temporary input[type=checkbox]"))


def banner(me: Person):
    return me.doc.locator("#temporary-banner")


def test_a_temporary_chat_is_marked_never_listed_and_never_written(people, stack):
    me = people(stack.app.url).open()
    me.chat("A saved question.")
    expect(banner(me)).not_to_contain_text("not saved")

    switch(me)
    expect(banner(me)).to_contain_text("Temporary chat: not saved")
    assert me.messages() == []  # a new chat, away from the saved one
    me.chat(f"My secret is {SECRET}.")
    answer_again(me, "#retry")  # every feature of a conversation: here, answering again
    versions(me, "2/2")
    assert me.messages()[-1] == ("bot", f"My secret is {SECRET}.")
    assert me.sidebar() == ["A saved question."]
    assert SECRET not in on_disk(stack.app.data_dir)
    shot(me, "temporary-chat-on")

    switch(me)  # off: the temporary chat is gone from the page
    expect(banner(me)).not_to_contain_text("not saved")
    assert me.messages() == []
    me.reload()
    assert me.sidebar() == ["A saved question."]


def test_opening_a_saved_conversation_turns_temporary_chat_off(people, stack):
    me = people(stack.app.url).open()
    me.chat("Keep this one.")
    switch(me)
    me.chat("Not this one.")
    me.open_conversation("Keep this one.")
    expect(banner(me)).not_to_contain_text("not saved")
    expect(me.doc.locator("#temporary input[type=checkbox]")).not_to_be_checked()
    me.new_chat()
    me.chat("Saved again.")  # the switch is off: this one is kept
    expect(me.entry("Saved again.")).to_have_count(1)


def test_the_open_conversation_downloads_as_markdown(people, stack):
    me = people(stack.app.url).open()
    button = me.doc.locator("#export-markdown")
    expect(button).to_be_hidden()  # nothing to download yet
    me.chat(f"Question about {SECRET}?")
    expect(button).to_be_visible()
    with me.page.expect_download() as downloading:
        button.click()
    download = downloading.value
    assert download.suggested_filename == f"Question-about-{SECRET}.md"
    text = Path(download.path()).read_text("utf-8")
    assert f"Question about {SECRET}?" in text  # the question
    assert text.count(f"Question about {SECRET}?") == 3  # the title, the question, the answer


def test_a_thumb_clicked_off_stays_off_after_a_reload(people, stack):
    me = people(stack.app.url).open()
    me.chat("Rate this answer.")
    me.click_and_settle(me.page.get_by_label("Like", exact=True))
    me.click_and_settle(me.page.get_by_label("Liked"))  # at once clicked off again
    expect(me.page.get_by_label("Liked")).to_have_count(0)
    assert '"rating":' not in stored_text(stack.app)
    me.click_and_settle(me.page.get_by_label("Dislike", exact=True))
    assert '"rating":"down"' in stored_text(stack.app)
    me.reload()
    me.open_conversation("Rate this answer.")
    expect(me.page.get_by_label("Disliked")).to_have_count(1)  # kept, as before
    me.click_and_settle(me.page.get_by_label("Disliked"))  # clicked off after a reload
    expect(me.page.get_by_label("Disliked")).to_have_count(0)
    assert '"rating":' not in stored_text(stack.app)
    me.reload()
    me.open_conversation("Rate this answer.")
    expect(me.answers).to_have_count(1)
    expect(me.page.get_by_label("Dislike", exact=True)).to_have_count(1)
    expect(me.page.get_by_label("Disliked")).to_have_count(0)
    expect(me.page.get_by_label("Liked")).to_have_count(0)
    shot(me, "thumb-clicked-off")


@pytest.fixture(scope="module")
def history_off(tmp_path_factory) -> Iterator[Stack]:
    off = {"PARLOR_STORE_MESSAGES": "false"}
    yield from scripted_stack(tmp_path_factory, "history-off-page", echo=True, **off)


def test_with_history_off_the_page_says_so_and_forgets_on_reload(people, history_off):
    me = people(history_off.app.url).open()
    expect(me.doc.locator("#history-off")).to_contain_text("History is off")
    expect(banner(me)).to_contain_text("History is off on this server")
    expect(me.doc.locator("#temporary")).to_be_hidden()  # nothing to switch
    me.chat(f"Hello {SECRET}.")
    me.chat("And again.")  # the conversation goes on while the page is open
    assert len(me.messages()) == 4
    assert me.sidebar() == []
    assert SECRET not in on_disk(history_off.app.data_dir)
    shot(me, "history-off")
    me.reload()
    assert me.messages() == [] and me.sidebar() == []
