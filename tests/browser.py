"""Real-browser helpers: one headless Chromium per session, a fresh context per person.

`Person` drives the chat page the way someone does (type, press Enter, click the sidebar) and
reads back what they see. Gradio draws the page after `goto()` returns and answers events over
its queue, so waits are on elements (by `elem_id`) and on the queue being idle, never on sleeps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Frame, Locator, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# Nothing leaves the machine: every request but loopback goes to a proxy that is not there.
# (A proxy, not page.route(): routing every request through the driver slows pages down.)
OFFLINE_ARGS = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# localhost too: the embedding journeys serve their host pages there (another site).
LOOPBACK = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)[:/]")
FAILED = "⚠️"  # how the chat marks an answer that failed (chat/doors.py render_answer)
TIMEOUT_MS = 30_000  # the embedded model on a busy 2-core machine

# Counts the Gradio queue's events: joined (POST queue/join answered) and completed (a
# `process_completed` message on the queue/data event stream). Gradio's client reads that
# stream with fetch(), so a clone of the response is parsed alongside; nothing is changed.
QUEUE_PROBE = """
(() => {
  const state = (window.__queue = {joined: 0, completed: 0});
  const original = window.fetch;
  window.fetch = async function (input, init) {
    const url = input instanceof Request ? input.url : String(input);
    const response = await original.apply(this, arguments);
    if (url.includes("/queue/join")) {
      if (response.ok) state.joined += 1;
    } else if (url.includes("/queue/data") && response.body) {
      const reader = response.clone().body.pipeThrough(new TextDecoderStream()).getReader();
      (async () => {
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) return;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\\n")) >= 0) {
            const line = buffer.slice(0, end).trim();
            buffer = buffer.slice(end + 1);
            if (!line.startsWith("data:")) continue;
            try {
              if (JSON.parse(line.slice(5)).msg === "process_completed") state.completed += 1;
            } catch (e) {}
          }
        }
      })().catch(() => {});
    }
    return response;
  };
})();
"""

# Records the last answer (text, length) at every change of the chat, and whether Stop shows,
# so that a test can tell an answer that streams from one that appears all at once.
STREAM_PROBE = """
() => {
  const chat = document.querySelector("#chatbot");
  const samples = (window.__samples = []);
  const record = () => {
    const answers = chat.querySelectorAll('[data-testid="bot"]');
    const last = answers[answers.length - 1];
    const stop = document.querySelector("#stop");
    const text = last ? last.innerText.trim() : null;
    samples.push({
      t: performance.now(),
      text: text,
      length: text === null ? -1 : text.length,
      stop: !!stop && stop.offsetParent !== null,
    });
  };
  window.__streamObserver?.disconnect();
  window.__streamObserver = new MutationObserver(record);
  window.__streamObserver.observe(chat, {subtree: true, childList: true, characterData: true});
}
"""


PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
SETTLE_FRAME = "() => new Promise(r => setTimeout(() => requestAnimationFrame(() => r()), 50))"


class Person:
    """Someone with their own browser context (cookie jar) looking at the chat page.

    With `frame` (a selector of an iframe), `url` is another site's page that embeds Parlor
    in that iframe, and everything below reads and drives the chat inside the frame (`doc`).
    """

    def __init__(
        self, browser: Browser, url: str, name: str, frame: str | None = None, phone: bool = False
    ) -> None:
        self.url = url
        self.name = name
        self.frame = frame
        self._frame: Frame | None = None
        # A phone: an iPhone-sized screen (390×844 CSS pixels), touch, no hover.
        screen = PHONE if phone else {"viewport": {"width": 1280, "height": 800}}
        self.context = browser.new_context(**screen)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.offsite: list[str] = []
        self.errors: list[str] = []
        self.context.add_init_script(QUEUE_PROBE)
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._seen)

    def go_on_in(self, tab: Page) -> None:
        """Carry on in another tab of this person (one a link opened); the old one closes."""
        if tab is not self.page:
            self.page.close()
        self.page = tab
        self._frame = None
        tab.on("pageerror", lambda e: self.errors.append(str(e)))
        tab.on("request", self._seen)

    def _seen(self, request) -> None:
        if not LOOPBACK.match(request.url) and not request.url.startswith(("data:", "blob:")):
            self.offsite.append(request.url)

    # -- parts of the page --------------------------------------------------------------

    @property
    def doc(self) -> Page | Frame:
        """Where the chat is drawn: the tab, or the iframe named by `frame` (found again after
        the host page reloads)."""
        if self.frame is None:
            return self.page
        if self._frame is None or self._frame.is_detached():
            self._frame = self.page.locator(self.frame).element_handle().content_frame()
        return self._frame

    @property
    def box(self) -> Locator:
        return self.doc.locator("#message textarea")

    @property
    def send_button(self) -> Locator:
        return self.doc.locator("#send")

    @property
    def stop_button(self) -> Locator:
        return self.doc.locator("#stop")

    @property
    def bubbles(self) -> Locator:
        return self.doc.locator('#chatbot [data-testid="user"], #chatbot [data-testid="bot"]')

    @property
    def answers(self) -> Locator:
        return self.doc.locator('#chatbot [data-testid="bot"]')

    @property
    def entries(self) -> Locator:
        """The sidebar's rows (a conversation each; search results while searching)."""
        return self.doc.locator("#conversations .parlor-row")

    def entry(self, title: str) -> Locator:
        titled = self.doc.locator(".parlor-title").get_by_text(title, exact=True)
        return self.entries.filter(has=titled)

    @property
    def switchers(self) -> Locator:
        """The `‹ 2/3 ›` switchers, top to bottom (under messages that have siblings)."""
        return self.doc.locator("#chatbot .parlor-branch")

    @property
    def thoughts(self) -> Locator:
        """The collapsible "Thinking" sections of the chat."""
        return self.doc.locator("#chatbot .thought-group")

    # -- what the person sees -----------------------------------------------------------

    def messages(self) -> list[tuple[str, str]]:
        """The chat as (role, text) pairs, top to bottom."""
        return [
            tuple(pair)
            for pair in self.bubbles.evaluate_all(
                "els => els.map(e => [e.dataset.testid, e.innerText.trim()])"
            )
        ]

    def sidebar(self) -> list[str]:
        """The conversation titles in the sidebar, top to bottom."""
        return [t.strip() for t in self.entries.locator(".parlor-title").all_inner_texts()]

    def groups(self) -> list[str]:
        """The sidebar's group headers (Today, Yesterday...), top to bottom."""
        return [t.strip() for t in self.doc.locator("#conversations h3").all_inner_texts()]

    def selected(self) -> list[str]:
        """The titles marked as open in the sidebar (one, or none)."""
        rows = self.doc.locator("#conversations .parlor-row.selected .parlor-title")
        return [t.strip() for t in rows.all_inner_texts()]

    # -- waiting --------------------------------------------------------------------------

    def queue(self) -> dict:
        return self.doc.evaluate("() => ({...window.__queue})")

    def settle(self, joined: int = 0, timeout: float = TIMEOUT_MS / 1000) -> None:
        """Wait until Gradio has run at least `joined` events and none is still running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = self.queue()
            if q["joined"] >= max(joined, 1) and q["completed"] >= q["joined"]:
                # Gradio applies a message in a task of its own (setTimeout 0): let it run.
                self.doc.evaluate(SETTLE_FRAME)
                return
            self.page.wait_for_timeout(20)
        raise AssertionError(f"the Gradio queue did not settle: {self.queue()} (want {joined})")

    # -- actions --------------------------------------------------------------------------

    def open(self) -> Person:
        """Visit the page and wait until it is drawn and its load event has run."""
        self.page.goto(self.url)
        expect(self.box).to_be_visible()
        self.settle()
        return self

    def reload(self) -> Person:
        self.page.reload()
        expect(self.box).to_be_visible()
        self.settle()
        return self

    def type_and_send(self, text: str, *, enter: bool = True) -> int:
        """Type a message and send it; returns the queue count to settle on afterwards."""
        before = self.queue()["joined"]
        self.box.fill(text)
        if enter:
            self.box.press("Enter")
        else:
            self.send_button.click()
        return before + 1

    def chat(self, text: str, *, enter: bool = True) -> str:
        """Send a message, wait for the whole answer; returns the answer as shown."""
        shown = self.answers.count()
        after = self.type_and_send(text, enter=enter)
        self.wait_answered(after, shown + 1)
        answer = self.answers.last.inner_text().strip()
        assert answer and FAILED not in answer, f"the model did not answer: {answer!r}"
        return answer

    def wait_answered(self, joined: int, answers: int) -> None:
        self.settle(joined)
        expect(self.answers).to_have_count(answers)
        expect(self.stop_button).to_be_hidden()
        expect(self.send_button).to_be_visible()

    def switch(self, index: int, direction: str) -> None:
        """Click `‹` ("previous") or `›` ("next") of the switcher `index`, and wait."""
        name = {"previous": "Previous version", "next": "Next version"}[direction]
        self.click_and_settle(self.switchers.nth(index).get_by_role("button", name=name))

    def edit(self, index: int, text: str) -> int:
        """Edit the person's message `index` (0: their first) to `text` and submit it;
        returns the queue count to settle on afterwards."""
        row = self.doc.locator("#chatbot .message-row.user-row").nth(index)
        row.hover()
        row.get_by_role("button", name="Edit").click()
        row.locator("textarea").fill(text)
        before = self.queue()["joined"]
        row.get_by_role("button", name="Submit").click()
        return before + 1

    def click_and_settle(self, target: Locator) -> None:
        before = self.queue()["joined"]
        target.click()
        self.settle(before + 1)

    def new_chat(self) -> None:
        self.click_and_settle(self.doc.locator("#new-chat"))

    def open_conversation(self, title: str) -> None:
        self.click_and_settle(self.entry(title).locator(".parlor-open"))

    def wait_first_words(self) -> str:
        """Wait (checking every frame) until the answer being written shows some text."""
        self.doc.wait_for_function(
            """() => {
                const answers = document.querySelectorAll('#chatbot [data-testid="bot"]');
                return answers.length && answers[answers.length - 1].innerText.trim() !== "";
            }""",
            polling="raf",
        )
        return self.answers.last.inner_text().strip()

    def watch_stream(self) -> None:
        self.doc.evaluate(STREAM_PROBE)

    def stream_samples(self) -> list[dict]:
        return self.doc.evaluate("() => window.__samples")

    def close(self, shot: Path) -> list[str]:
        """Screenshot the end state, close; returns what went wrong in the page, if anything."""
        problems = []
        try:
            # Chromium may paint a cross-site frame blank in a full-page shot: the viewport.
            self.page.screenshot(path=str(shot), full_page=self.frame is None)
        except Exception as e:  # a screenshot must never hide the test's own failure
            problems.append(f"screenshot failed: {e}")
        self.context.close()
        problems += [f"request for outside 127.0.0.1 (blocked): {u}" for u in self.offsite]
        problems += [f"error in the page: {e}" for e in self.errors]
        return problems


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS + OFFLINE_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def people(browser: Browser, request: pytest.FixtureRequest):
    """`people(url)` opens a new person (a fresh context), `people(url, frame="#id")` one who
    sees Parlor in that iframe of the page at `url`; each one's end state is saved
    as tests/artifacts/<test>[-n].png, and a page error or an off-machine request fails."""
    ARTIFACTS.mkdir(exist_ok=True)
    opened: list[Person] = []

    def person(url: str, frame: str | None = None, phone: bool = False) -> Person:
        p = Person(browser, url, name=f"person {len(opened) + 1}", frame=frame, phone=phone)
        opened.append(p)
        return p

    yield person
    problems = []
    stem = re.sub(r"[^\w.-]+", "_", request.node.name)
    for i, p in enumerate(opened):
        suffix = f"-{i + 1}" if len(opened) > 1 else ""
        problems += p.close(ARTIFACTS / f"{stem}{suffix}.png")
    assert not problems, "\n".join(problems)
