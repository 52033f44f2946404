"""In a real browser, on the real app and embedded model: a watermarked answer shows the
"watermarked" mark linked to /check; copying it appends the label (PARLOR_LABEL_ON_COPY) and
never the mark; pasted into /check, it is found watermarked; an answer of the same model
without the watermark has no mark and /check finds none. Screenshots in tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apprunner import RunningApp
from browser import ARTIFACTS, Person
from playwright.sync_api import Page, expect
from test_browser_tree import shot
from test_watermark_app import MARKED, MODELS, PLAIN, PROMPT

from chat.watermark import COPY_LABEL


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[RunningApp]:
    root = tmp_path_factory.mktemp("browser-watermark")
    app = RunningApp(root / "data", models=MODELS, env={"PARLOR_LABEL_ON_COPY": "true"})
    yield app.wait_ready()
    app.stop()


def copied(me: Person) -> str:
    """Click the last answer's Copy button; what the clipboard then holds."""
    answer = me.doc.locator("#chatbot .message-row.bot-row").last
    answer.hover()
    answer.get_by_role("button", name="Copy message").click()
    return me.page.evaluate("() => navigator.clipboard.readText()")


def checked(page: Page, text: str) -> str:
    """Paste `text` into /check, check it, and return the verdict shown."""
    page.locator("#check-text").fill(text)
    page.locator("#check-submit").click()
    return page.locator("#check-result .verdict").inner_text()


def test_a_watermarked_answer_is_marked_and_found_on_the_check_page(people, served):
    me = people(served.url).open()
    me.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    me.chat(PROMPT)
    mark = me.doc.locator("#chatbot .parlor-mark a")
    expect(mark).to_have_text("watermarked")
    expect(mark).to_have_attribute("href", f"check?model={MARKED}")
    text = copied(me)
    assert text.endswith("\n\n" + COPY_LABEL) and "watermarked" not in text
    shot(me, "watermark-mark")

    with me.context.expect_page() as opened:
        mark.click()
    check = opened.value
    expect(check.locator("#check-model")).to_have_value(MARKED)
    assert checked(check, text).startswith("Watermarked")
    expect(check.locator("#check-result")).to_contain_text("z-score")
    check.screenshot(path=str(ARTIFACTS / "watermark-check-found.png"), full_page=True)

    plain = people(served.url + f"?model={PLAIN}").open()
    plain.chat(PROMPT)
    expect(plain.doc.locator("#chatbot .parlor-mark")).to_have_count(0)
    answer = plain.answers.last.inner_text()
    assert checked(check, answer) == "No watermark found."
    check.close()
