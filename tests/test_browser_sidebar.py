"""In a real browser, the sidebar a person finds their conversations in: grouped by when they
were last used, renamed and deleted from their own row, the open one highlighted, a search
box that finds a word of an old answer, a title the model writes showing up by itself, and
the page on a phone-sized screen.

One app serves the module, on the scripted model (tests/scripted_server.py); the title test
has its own, with the model's titles on. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from browser import Person
from playwright.sync_api import expect
from test_browser_pages import open_data_panel, toast
from test_browser_tree import Stack, answer_again, scripted_stack, shot

OPEN = re.compile(r"\bopen\b")  # Gradio's sidebar, when open
GROUPS = ["Today", "Yesterday", "Previous 7 days", "Previous 30 days", "Older"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "sidebar")


def chat(me: Person, stack: Stack, question: str, answer: str, *, new: bool = True) -> None:
    """Ask `question` in a new chat (or the one shown); the model answers `answer`."""
    stack.answer_with(answer)
    if new:
        me.new_chat()
    answers = me.answers.count()
    me.wait_answered(me.type_and_send(question), answers + 1)


def tool(me: Person, title: str, name: str):
    """A row's Rename or Delete button (shown when the row is hovered)."""
    row = me.entry(title)
    row.hover()
    return row.get_by_role("button", name=name, exact=True)


def test_conversations_are_grouped_by_when_they_were_last_used(people, stack, tmp_path):
    me = people(stack.app.url).open()
    # Times in the browser's own time zone: noon, N days ago (today: now).
    stamps = me.page.evaluate(
        """() => [0, 1, 3, 20, 90].map((n) => {
            const d = new Date();
            return n ? new Date(d.getFullYear(), d.getMonth(), d.getDate() - n, 12).toISOString()
                     : d.toISOString();
        })"""
    )
    document = {
        "format": "parlor-export",
        "version": 1,
        "conversations": [
            {
                "id": f"{n:032x}",
                "title": f"Used in group {n}",
                "model": "echo",
                "created_at": stamp,
                "updated_at": stamp,
                "messages": [{"role": "user", "content": f"Question {n}"}],
            }
            for n, stamp in enumerate(stamps)
        ],
    }
    saved = tmp_path / "grouped.json"
    saved.write_text(json.dumps(document), "utf-8")
    open_data_panel(me)
    before = me.queue()["joined"]
    me.page.locator("#your-data input[type=file]").set_input_files(saved)
    me.settle(before + 1)
    expect(toast(me)).to_contain_text("Imported 5 conversations.")

    expect(me.doc.locator("#conversations h3")).to_have_text(GROUPS)
    assert me.sidebar() == [f"Used in group {n}" for n in range(5)]
    # Each header is above its own conversation.
    tops = me.page.evaluate(
        """() => [...document.querySelectorAll('#conversations > *')].map(
                e => e.tagName === 'H3' ? 'h:' + e.textContent : e.dataset.id)"""
    )
    assert tops == [x for n, g in enumerate(GROUPS) for x in (f"h:{g}", f"{n:032x}")]
    # Rows, not radio buttons; the open one is highlighted.
    expect(me.doc.locator("#sidebar input[type=radio]")).to_have_count(0)
    assert me.selected() == []
    me.open_conversation("Used in group 3")
    assert me.selected() == ["Used in group 3"]
    assert me.messages()[0] == ("user", "Question 3")
    shot(me, "test_sidebar_groups")


def test_rename_and_delete_a_conversation_from_its_row(people, stack):
    me = people(stack.app.url).open()
    chat(me, stack, "Plan a picnic.", "Bring sandwiches.")
    chat(me, stack, "Plan a party.", "Bring balloons.")
    assert me.sidebar() == ["Plan a party.", "Plan a picnic."]
    assert me.selected() == ["Plan a party."]

    # Rename inline: Escape changes nothing, Enter keeps the new title, also after a reload.
    tool(me, "Plan a picnic.", "Rename").click()
    field = me.doc.locator("#conversations .parlor-rename-input")
    expect(field).to_have_value("Plan a picnic.")
    field.fill("Never mind")
    field.press("Escape")
    assert me.sidebar() == ["Plan a party.", "Plan a picnic."]
    tool(me, "Plan a picnic.", "Rename").click()
    before = me.queue()["joined"]
    field.fill("Summer picnic")
    field.press("Enter")
    me.settle(before + 1)
    assert me.sidebar() == ["Plan a party.", "Summer picnic"]
    me.reload()
    assert me.sidebar() == ["Plan a party.", "Summer picnic"]

    # Delete asks first; Cancel keeps it.
    me.open_conversation("Plan a party.")
    tool(me, "Summer picnic", "Delete").click()
    ask = me.doc.locator("#conversations .parlor-row.confirming")
    expect(ask).to_contain_text("Delete for good?")
    shot(me, "test_sidebar_delete_asks")
    ask.get_by_role("button", name="Cancel").click()
    assert me.sidebar() == ["Plan a party.", "Summer picnic"]
    # Deleting another row leaves the open conversation on the page.
    tool(me, "Summer picnic", "Delete").click()
    me.click_and_settle(ask.get_by_role("button", name="Delete", exact=True))
    assert me.sidebar() == ["Plan a party."]
    assert me.messages() == [("user", "Plan a party."), ("bot", "Bring balloons.")]
    # Deleting the open one empties the page; both stay gone after a reload.
    tool(me, "Plan a party.", "Delete").click()
    me.click_and_settle(ask.get_by_role("button", name="Delete", exact=True))
    assert me.sidebar() == []
    assert me.messages() == []
    me.reload()
    assert me.sidebar() == []


def test_search_finds_a_word_of_an_old_answer_and_opens_its_conversation(people, stack):
    me = people(stack.app.url).open()
    chat(me, stack, "Tell me about gardens.", "Tulips need a cold WINTER before they bloom.")
    stack.answer_with("Roses like the sun.")  # another answer, shown instead of the first
    answer_again(me, "#retry")
    chat(me, stack, "Something else.", "Nothing to see here.")
    search = me.doc.locator("#sidebar-search textarea, #sidebar-search input").first

    search.press_sequentially("wint", delay=30)  # as the person types
    results = me.entries
    expect(results).to_have_count(1)
    expect(results.locator(".parlor-title")).to_have_text("Tell me about gardens.")
    expect(results.locator("mark")).to_have_text("WINT")
    expect(results.locator(".parlor-snippet")).to_contain_text("cold WINTER before")
    expect(me.doc.locator("#conversations h3")).to_have_count(0)  # results, not groups
    shot(me, "test_sidebar_search")

    # It opens on the branch where the word is, not the one shown last.
    me.click_and_settle(results.locator(".parlor-open"))
    assert me.messages() == [
        ("user", "Tell me about gardens."),
        ("bot", "Tulips need a cold WINTER before they bloom."),
    ]
    expect(me.switchers.locator("span")).to_have_text(["1/2"])
    search.fill("zebra")
    expect(me.doc.locator("#conversations")).to_contain_text("No conversation matches.")
    search.fill("")
    expect(me.entries).to_have_count(2)  # the list again, grouped
    expect(me.doc.locator("#conversations h3")).to_have_text(["Today"])


@pytest.fixture(scope="module")
def titled(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "sidebar-titles", PARLOR_MODEL_TITLES="true")


def test_a_title_the_model_writes_reaches_the_sidebar_by_itself(people, titled):
    me = people(titled.app.url).open()
    # The answer, and then the title: the first line of what the model writes.
    titled.model.script("tokens", tokens=["Growing", " tulips", "\n", "Plant bulbs in autumn."])
    question = "How do I grow tulips in my garden?"
    me.wait_answered(me.type_and_send(question), 1)
    # No reload, no other action: the title comes into the open row.
    expect(me.entries.locator(".parlor-title")).to_have_text(["Growing tulips"])
    assert me.selected() == ["Growing tulips"]
    assert me.messages()[0] == ("user", question)


def test_the_page_fits_a_phone(people, stack):
    me = people(stack.app.url, phone=True).open()
    sidebar = me.doc.locator(".sidebar").first
    expect(sidebar).not_to_have_class(OPEN)  # closed: the chat is what shows
    expect(me.box).to_be_in_viewport()
    chat(
        me,
        stack,
        "A question from a phone.",
        "An answer that fits a narrow screen. " * 6,
        new=False,
    )
    # A new chat is in the sidebar, which closes again once it is clicked.
    sidebar.locator(".toggle-button").click()
    expect(sidebar).to_have_class(OPEN)
    chat(me, stack, "Another one.", "Short.")
    expect(sidebar).not_to_have_class(OPEN)

    def no_sideways_scroll() -> None:
        width = me.page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        )
        assert width <= 390, f"the page is {width} px wide on a 390 px screen"
        for name in ("#message", "#send", "#retry", "#delete", "#chatbot"):
            box = me.doc.locator(name).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)

    no_sideways_scroll()
    shot(me, "test_the_page_fits_a_phone-chat")

    # The sidebar opens over the chat, and closes again once a conversation is chosen.
    sidebar.locator(".toggle-button").click()
    expect(sidebar).to_have_class(OPEN)
    expect(me.entry("A question from a phone.")).to_be_in_viewport()
    me.doc.wait_for_function(  # slid all the way in
        "() => Math.abs(document.querySelector('.sidebar').getBoundingClientRect().left) < 1"
    )
    shot(me, "test_the_page_fits_a_phone-sidebar")
    me.open_conversation("A question from a phone.")
    expect(sidebar).not_to_have_class(OPEN)
    assert me.messages()[0] == ("user", "A question from a phone.")
    expect(me.send_button).to_be_in_viewport()
    no_sideways_scroll()
