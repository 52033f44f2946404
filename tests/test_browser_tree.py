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
from browser import ARTIFACTS, TIMEOUT_MS, Person
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


def scripted_stack(
    tmp_path_factory, name: str, *, echo: bool = False, **env: str
) -> Iterator[Stack]:
    """The app on the scripted model (echoing, with `echo`), for one module's fixture
    (`yield from` it)."""
    root = tmp_path_factory.mktemp(name)
    with ScriptedServer() as model:
        if echo:
            model.script("echo")
        app = RunningApp(root / "data", models=echo_catalog(root, model), env=env).wait_ready()
        try:
            yield Stack(model, app)
        finally:
            app.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "tree")


def shot(me: Person, name: str) -> None:
    """A screenshot of a step that is not the end state (the `people` fixture saves that)."""
    ARTIFACTS.mkdir(exist_ok=True)
    me.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def versions(me: Person, *shown: str) -> None:
    """Wait until the switchers say `shown` ("2/3"...), top to bottom."""
    expect(me.switchers.locator("span")).to_have_text(list(shown))


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
    versions(me, "2/2")
    shot(me, "tree-edited-question")

    # The old branch is all there, down to its last answer, and back again.
    me.switch(0, "previous")
    assert me.messages() == cats
    versions(me, "1/2")
    me.switch(0, "next")
    assert me.messages() == foxes
    versions(me, "2/2")

    # The branch shown is kept: coming back shows it.
    me.reload()
    me.open_conversation("Tell me about cats.")
    assert me.messages() == foxes
    versions(me, "2/2")


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
    versions(me, "3/3")
    shot(me, "tree-three-answers")

    me.switch(0, "previous")
    assert me.messages() == [question, ("bot", "Green.")]
    versions(me, "2/3")
    me.switch(0, "previous")
    assert me.messages() == [question, ("bot", "Blue.")]
    versions(me, "1/3")
    first = me.switchers.first
    expect(first.get_by_role("button", name="Previous version")).to_be_disabled()
    me.switch(0, "next")
    assert me.messages() == [question, ("bot", "Green.")]

    me.reload()
    me.open_conversation("Name a colour.")
    assert me.messages() == [question, ("bot", "Green.")]
    versions(me, "2/3")


STORY = [f"word{n} " for n in range(1, 33)]  # 32 words, one every 0.25 s: 8 s in all
WHOLE_STORY = "".join(STORY).strip()


def ask_for_a_slow_story(me: Person, stack: Stack, question: str) -> None:
    """Send `question`, answered with STORY word by word; return once its first words show
    and the sidebar lists it."""
    stack.model.script("tokens", tokens=STORY, delay=0.25)
    me.type_and_send(question)
    me.wait_first_words()
    expect(me.entry(question)).to_be_visible()


def test_a_closed_page_loses_nothing_and_the_answer_is_followed_on_return(people, stack):
    me = people(stack.app.url).open()
    ask_for_a_slow_story(me, stack, "Tell me a slow story.")
    me.go_on_in(me.context.new_page())  # the tab with the answer closes

    me.open()
    me.watch_stream()
    me.open_conversation("Tell me a slow story.")
    expect(me.stop_button).to_be_visible()  # it is still being written, and followed
    partial = me.answers.last.inner_text().strip()
    assert partial != WHOLE_STORY, "the answer was still being written"
    expect(me.answers.last).to_have_text(WHOLE_STORY, timeout=TIMEOUT_MS)
    expect(me.stop_button).to_be_hidden()
    expect(me.send_button).to_be_visible()
    grew = sorted({s["length"] for s in me.stream_samples() if s["length"] > len(partial)})
    assert len(grew) >= 2, f"the answer grew on the page, word by word: {grew}"
    assert me.messages() == [("user", "Tell me a slow story."), ("bot", WHOLE_STORY)]

    me.reload()
    me.open_conversation("Tell me a slow story.")
    assert me.messages() == [("user", "Tell me a slow story."), ("bot", WHOLE_STORY)]


def test_stop_an_answer_followed_after_coming_back_then_continue_it(people, stack):
    me = people(stack.app.url).open()
    ask_for_a_slow_story(me, stack, "Another slow story, please.")
    me.new_chat()  # the page leaves the answer; it goes on without it
    me.open_conversation("Another slow story, please.")
    expect(me.stop_button).to_be_visible()
    expect(me.page.locator("#continue")).to_be_hidden()
    me.stop_button.click()
    expect(me.answers.last).to_contain_text(STOPPED)
    expect(me.stop_button).to_be_hidden()
    stopped = me.answers.last.inner_text().strip()
    written = stopped.removesuffix(STOPPED).strip()
    assert WHOLE_STORY.startswith(written) and written != WHOLE_STORY

    # A stopped answer can be continued where it ended, in the same message.
    stack.answer_with(" and the end.")
    expect(me.page.locator("#continue")).to_be_visible()
    answer_again(me, "#continue")
    assert me.messages() == [
        ("user", "Another slow story, please."),
        ("bot", f"{written} and the end."),
    ]
    expect(me.page.locator("#continue")).to_be_hidden()
    expect(me.switchers).to_have_count(0)  # the same answer, not another one


def test_continue_is_offered_only_where_an_answer_was_cut(people, stack):
    me = people(stack.app.url).open()
    stack.answer_with("A full answer.")
    me.chat("Say something short.")
    expect(me.page.locator("#continue")).to_be_hidden()

    stack.answer_with("A list: one, two,", finish="length")  # the model's token limit
    me.chat("Count to five.")
    expect(me.page.locator("#continue")).to_be_visible()
    stack.answer_with(" three, four, five.")
    answer_again(me, "#continue")
    assert me.messages()[-1] == ("bot", "A list: one, two, three, four, five.")
    expect(me.page.locator("#continue")).to_be_hidden()
    # The model was asked to continue its own message, sent as the last turn.
    sent = stack.model.requests[-1]["body"]["messages"]
    assert sent[-1] == {"role": "assistant", "content": "A list: one, two,"}


REASONING = [f"step{n} " for n in range(1, 9)]


def test_reasoning_streams_then_shows_collapsed_above_the_answer(people, stack):
    stack.answer_with("The answer is four.", reasoning=REASONING, delay=0.25)
    me = people(stack.app.url).open()
    me.watch_stream()
    before = me.queue()["joined"]
    me.type_and_send("What is two plus two?")
    thought = me.thoughts.last
    expect(thought).to_contain_text("step2")
    shot(me, "tree-thinking-streaming")
    me.wait_answered(before + 1, 2)
    expect(me.answers.last).to_have_text("The answer is four.")
    # While it came, the reasoning showed, open and growing, before any of the answer.
    seen = [s["text"] for s in me.stream_samples() if s["text"]]
    thinking = [t for t in seen if t.startswith("Thinking") and "answer" not in t]
    assert len({len(t) for t in thinking}) >= 2, f"the reasoning streamed: {seen}"
    assert seen.index(thinking[-1]) < seen.index("The answer is four.")
    # Done: collapsed under its title; a click opens it, with all of the reasoning.
    expect(thought).to_have_text("Thinking")
    expect(thought).not_to_contain_text("step1")
    shot(me, "tree-thinking-collapsed")
    thought.get_by_text("Thinking").click()
    expect(thought).to_contain_text("".join(REASONING).strip())

    # It is stored with the answer: shown collapsed again on coming back.
    me.reload()
    me.open_conversation("What is two plus two?")
    expect(me.thoughts).to_have_count(1)
    expect(me.thoughts.first).to_have_text("Thinking")
    assert me.messages()[-1] == ("bot", "The answer is four.")
    # Reasoning is never sent back to the model.
    stack.answer_with("Yes.")
    me.chat("Are you sure?")
    sent = stack.model.requests[-1]["body"]["messages"]
    assert all("step1" not in str(m.get("content")) for m in sent)

    # A question below a thinking answer is edited as itself (the thinking is its answer's).
    stack.answer_with("Quite sure.")
    me.wait_answered(me.edit(1, "Really?"), 3)
    assert me.messages() == [
        ("user", "What is two plus two?"),
        ("bot", "Thinking"),
        ("bot", "The answer is four."),
        ("user", "Really?"),
        ("bot", "Quite sure."),
    ]
    versions(me, "2/2")
    me.switch(0, "previous")
    assert me.messages()[-2:] == [("user", "Are you sure?"), ("bot", "Yes.")]
