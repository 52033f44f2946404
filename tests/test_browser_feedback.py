"""In a real browser: thumbs on an answer kept after a reload, with a comment saved; math,
highlighted code with a copy button, and tables in answers. Screenshots in tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from test_browser_tree import Stack, scripted_stack, shot
from test_privacy import stored_text


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "feedback")


def test_a_thumb_and_its_comment_are_kept_after_a_reload(people, stack):
    me = people(stack.app.url).open()
    stack.answer_with("Paris is the capital of France.")
    me.chat("Capital of France?")
    me.page.get_by_label("Dislike").first.click()
    box = me.page.locator("#feedback-comment textarea")
    expect(box).to_be_visible()
    box.fill("Too short.")
    me.page.locator("#feedback-save").click()
    expect(me.page.locator("#feedback-box")).to_be_hidden()
    assert '"comment":"Too short."' in stored_text(stack.app)  # saved with the answer

    me.reload()
    me.entry("Capital of France?").click()
    expect(me.page.get_by_label("Disliked")).to_have_count(1)
    shot(me, "feedback-kept-after-reload")


def test_answers_render_math_code_and_tables(people, stack):
    me = people(stack.app.url).open()
    stack.answer_with(
        "Euler: $$e^{i\\pi} + 1 = 0$$ and inline \\(a^2+b^2=c^2\\).\n\n"
        "```python\ndef square(x):\n    return x * x\n```\n\n"
        "| fruit | price |\n|---|---|\n| apple | $1 |\n| pear | 2 |\n"
    )
    me.chat("Show me math, code and a table.")
    answer = me.answers.last
    expect(answer.locator(".katex")).to_have_count(2)
    expect(answer.locator("pre code .token").first).to_be_visible()  # highlighted
    expect(answer.locator("pre button, pre + button, .copy_code_button").first).to_be_attached()
    expect(answer.locator("table td")).to_have_count(4)
    expect(answer.locator("table")).to_contain_text("$1")  # a price stays text
    shot(me, "answer-math-code-table")
