"""In a real browser, conversations as trees and answers that live on the server: editing a
question, answering again, browsing the versions with `‹ n/m ›`, continuing an answer, a
thinking model's reasoning, and a page closed in the middle of an answer.

One app serves the module, on the scripted model (tests/scripted_server.py), whose answers
each test sets: exact words, a slow stream, reasoning, a finish reason. Screenshots of the
steps worth seeing go to tests/artifacts/ (the `people` fixture saves each end state).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from apprunner import RunningApp
from browser import ARTIFACTS, Person
from playwright.sync_api import expect
from scripted_server import ScriptedServer, echo_catalog

STOPPED = "■ Stopped."  # how the chat ends an answer that was stopped (chat/doors.py)


@dataclass
class Stack:
    model: ScriptedServer
    app: RunningApp

    def answer_with(self, text: str, **options) -> None:
        """The model's next answers: `text`, all at once (options: reasoning, finish...)."""
        self.model.script("tokens", tokens=[text], **options)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("tree")
    with ScriptedServer() as model:
        app = RunningApp(root / "data", models=echo_catalog(root, model)).wait_ready()
        try:
            yield Stack(model, app)
        finally:
            app.stop()


def shot(me: Person, name: str) -> None:
    """A screenshot of a step that is not the end state (the `people` fixture saves that)."""
    ARTIFACTS.mkdir(exist_ok=True)
    me.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def answer_again(me: Person, button: str) -> None:
    """Click Retry or Continue and wait for the answer to end."""
    answers = me.answers.count()
    before = me.queue()["joined"]
    me.page.locator(button).click()
    me.wait_answered(before + 1, answers)


def test_edit_a_question_and_browse_both_branches(people, stack):
    me = people(stack.app.url).open()
    stack.answer_with("Cats purr.")
    me.chat("Tell me about cats.")
    stack.answer_with("Mostly mice.")
    me.chat("What do they eat?")
    cats = [
        ("user", "Tell me about cats."),
        ("bot", "Cats purr."),
        ("user", "What do they eat?"),
        ("bot", "Mostly mice."),
    ]
    assert me.messages() == cats
    expect(me.switchers).to_have_count(0)  # nothing has siblings yet

    # The first question, not only the last, can be edited: a new branch starts there.
    stack.answer_with("Foxes yip.")
    me.wait_answered(me.edit(0, "Tell me about foxes."), 1)
    foxes = [("user", "Tell me about foxes."), ("bot", "Foxes yip.")]
    assert me.messages() == foxes
    expect(me.switchers).to_have_count(1)
    assert me.switched() == ["2/2"]
    shot(me, "tree-edited-question")

    # The old branch is all there, down to its last answer, and back again.
    me.switch(0, "previous")
    assert me.messages() == cats
    assert me.switched() == ["1/2"]
    me.switch(0, "next")
    assert me.messages() == foxes
    assert me.switched() == ["2/2"]

    # The branch shown is kept: coming back shows it.
    me.reload()
    me.open_conversation("Tell me about cats.")
    assert me.messages() == foxes
    assert me.switched() == ["2/2"]


def test_retry_twice_and_browse_three_answers(people, stack):
    me = people(stack.app.url).open()
    stack.answer_with("Blue.")
    me.chat("Name a colour.")
    stack.answer_with("Green.")
    answer_again(me, "#retry")
    stack.answer_with("Red.")
    answer_again(me, "#retry")
    question = ("user", "Name a colour.")
    assert me.messages() == [question, ("bot", "Red.")]
    assert me.switched() == ["3/3"]
    shot(me, "tree-three-answers")

    me.switch(0, "previous")
    assert me.messages() == [question, ("bot", "Green.")]
    assert me.switched() == ["2/3"]
    me.switch(0, "previous")
    assert me.messages() == [question, ("bot", "Blue.")]
    assert me.switched() == ["1/3"]
    first = me.switchers.first
    expect(first.get_by_role("button", name="Previous version")).to_be_disabled()
    me.switch(0, "next")
    assert me.messages() == [question, ("bot", "Green.")]

    me.reload()
    me.open_conversation("Name a colour.")
    assert me.messages() == [question, ("bot", "Green.")]
    assert me.switched() == ["2/3"]
