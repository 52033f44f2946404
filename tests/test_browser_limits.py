"""In a real browser: a message refused by a usage limit stays in the box, and the page says
which limit and when it resets. Screenshot in tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from test_browser_pages import toast
from test_browser_tree import Stack, scripted_stack, shot


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from scripted_stack(tmp_path_factory, "limits", echo=True, PARLOR_LIMIT_PER_MINUTE="1")


def test_a_refused_message_stays_in_the_box_with_the_reason(people, stack):
    me = people(stack.app.url).open()
    me.chat("First question.")
    me.settle(me.type_and_send("Second question, refused."))
    expect(toast(me)).to_contain_text("1 message per minute for you")
    expect(toast(me)).to_contain_text("resets in")
    expect(me.box).to_have_value("Second question, refused.")
    assert [text for role, text in me.messages() if role == "user"] == ["First question."]
    shot(me, "limits-refused-message-kept")
