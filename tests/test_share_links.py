"""Share links end to end: `/share`, `/shares`, `/revoke_share` through gradio_client, the
`/r/<id>` page over HTTP, and in Chromium a link opened by someone else, continued into
their own history, then revoked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from apprunner import RunningApp
from browser import ARTIFACTS
from gradio_client import Client
from playwright.sync_api import expect
from test_browser_pages import open_data_panel, toast

HOSTILE = "<script>alert(1)</script> ![tracker](http://example.com/t.png) <b>bold</b>"


def _document(tmp_path: Path) -> Path:
    document = tmp_path / "import" / "parlor-export-shared.json"
    document.parent.mkdir(exist_ok=True)
    conversation = {
        "id": "c" * 32,
        "title": "Tea <i>and</i> biscuits",
        "model": "m",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "messages": [
            {"role": "user", "content": f"How do I brew tea? {HOSTILE}"},
            {"role": "assistant", "content": "Steep it for three minutes."},
        ],
    }
    document.write_text(
        json.dumps({"format": "parlor-export", "version": 1, "conversations": [conversation]})
    )
    return document


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> RunningApp:
    root = tmp_path_factory.mktemp("share")
    models = root / "models.yaml"
    models.write_text(
        "models:\n  - id: m\n    name: M\n"
        "    endpoints: [{type: openai, base_url: 'http://127.0.0.1:9/v1', model: m}]\n"
    )
    running = RunningApp(root / "data", models=models).wait_ready()
    yield running
    running.stop()


def test_a_link_page_is_noindex_anonymous_escaped_and_404_once_revoked(app, tmp_path):
    me = Client(app.url, verbose=False)
    me.predict(_document(tmp_path).read_text(), api_name="/import")
    (conv,) = me.predict(api_name="/conversations")
    link = me.predict(conv["id"], api_name="/share")
    assert me.predict(api_name="/shares") == [link]
    page = httpx.get(app.url.rstrip("/") + link["url"])
    assert page.status_code == 200
    assert page.headers["x-robots-tag"] == "noindex"
    assert "<meta name='robots' content='noindex'>" in page.text
    assert "Steep it for three minutes." in page.text
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "<img" not in page.text and "<b>bold" not in page.text
    assert "Tea &lt;i&gt;and&lt;/i&gt; biscuits" in page.text
    for secret in me.cookies.values():
        assert secret not in page.text, "the page names no one"

    foreign = httpx.post(
        app.url.rstrip("/") + link["url"] + "/continue", headers={"origin": "http://evil.test"}
    )
    assert foreign.status_code == 403, "another site cannot continue a link for a visitor"

    stranger = Client(app.url, verbose=False)
    assert stranger.predict(link["id"], api_name="/revoke_share") == {"revoked": False}
    assert stranger.predict(api_name="/shares") == []

    never = httpx.get(app.url.rstrip("/") + "/r/" + "x" * 22)
    assert me.predict(link["id"], api_name="/revoke_share") == {"revoked": True}
    gone = httpx.get(app.url.rstrip("/") + link["url"])
    assert (gone.status_code, gone.text) == (never.status_code, never.text) == (404, "Not found")
    assert me.predict(api_name="/shares") == []


def test_a_link_opened_by_someone_else_is_continued_then_revoked(app, people, tmp_path):
    owner = people(app.url).open()
    open_data_panel(owner)
    before = owner.queue()["joined"]
    owner.page.locator("#your-data input[type=file]").set_input_files(_document(tmp_path))
    owner.settle(before + 1)
    expect(toast(owner)).to_contain_text("Imported 1 conversation.")
    owner.open_conversation("Tea <i>and</i> biscuits")
    owner.click_and_settle(owner.page.locator("#share-conversation"))
    box = owner.page.locator("#share-url textarea")
    expect(box).to_be_visible()
    url = box.input_value()
    assert url.startswith(app.url.rstrip("/") + "/r/")

    visitor = people(app.url)  # another browser context: another person
    visitor.page.goto(url)
    expect(visitor.page.get_by_text("Steep it for three minutes.")).to_be_visible()
    visitor.page.screenshot(path=ARTIFACTS / "share-link-page.png")
    visitor.page.locator("#continue-shared").click()
    expect(visitor.box).to_be_visible()
    visitor.settle()
    expect(visitor.bubbles.last).to_contain_text("Steep it for three minutes.")
    assert visitor.sidebar() == ["Tea <i>and</i> biscuits"]

    owner.page.locator("#share-links input").click()  # the panel is still open
    owner.page.get_by_role("option").first.click()
    owner.click_and_settle(owner.page.locator("#revoke-share"))
    expect(toast(owner)).to_contain_text("Link revoked")
    assert visitor.page.goto(url).status == 404
    visitor.page.goto(app.url)
    expect(visitor.box).to_be_visible()
    visitor.settle()
    assert visitor.sidebar() == ["Tea <i>and</i> biscuits"], "the copy stays the visitor's"


def test_the_privacy_page_says_what_a_link_shows_and_how_to_revoke_it(app):
    page = httpx.get(app.url.rstrip("/") + "/privacy").text
    assert "<h2>Share links</h2>" in page
    assert "as it was when you shared it" in page and "nothing about you" in page
    assert "Revoke a link under <em>Your data</em>" in page
