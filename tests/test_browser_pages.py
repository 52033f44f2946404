"""Journeys in a real browser beyond the chat itself: the models and privacy pages, Parlor
embedded in another site's iframe, and the "Your data" panel.

Two apps serve the module, started together:

- `space`: configured like a public Space. Its session cookie is `Secure; SameSite=None;
  Partitioned` (`PARLOR_COOKIE_SECURE=always`: Chromium takes `Secure` cookies from
  http://127.0.0.1, a secure context), and only http://localhost:<allowed port> may embed it
  (`PARLOR_FRAME_ANCESTORS`). Its catalog has a second embedded model and one that cannot
  work here (an `hf` model, no token).
- `plain`: the defaults over plain HTTP (`SameSite=Lax`, not sent in a cross-site iframe).

The embedding sites are small pages served on http://localhost:<port>: localhost and
127.0.0.1 are different sites, so Parlor's frame in them is a cross-site iframe.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import browser as chromium
import pytest
import yaml
from apprunner import TEST_MODELS, RunningApp, free_port
from browser import ARTIFACTS, Person
from playwright.sync_api import expect

EMPTY_CHAT = "Ask anything."
DEFAULT_NAME = "SmolLM2 135M · runs on this machine"  # tests/models-test.yaml
PRECISE_ID = "smollm2-135m-precise"
PRECISE_NAME = "SmolLM2 135M · precise"
REMOTE_NAME = "gpt-oss 120B"  # an Inference Providers model: unavailable without HF_TOKEN
FRAME = "#parlor"  # the iframe of the host pages
BLOCKED = "This browser blocks Parlor's cookie here"


# -- the embedding sites -----------------------------------------------------------------


class HostPage(BaseHTTPRequestHandler):
    """Another site's page embedding Parlor as the README says: `/?src=<Parlor's URL>`."""

    def do_GET(self) -> None:
        src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>A site with Parlor"
            "</title></head><body style='margin:0;font-family:sans-serif'>"
            f"<p style='margin:.5rem'>Another site ({html.escape(self.headers['host'])}), "
            "embedding Parlor:</p>"
            f"<iframe id='parlor' src='{html.escape(src)}' width='100%' height='700' "
            "style='border:2px solid #999'></iframe></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Site:
    """A host page server on 127.0.0.1, reached as http://localhost:<port>/."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), HostPage)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def embedding(self, parlor_url: str) -> str:
        return f"{self.origin}/?src={quote(parlor_url, safe='')}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[Site, Site]]:
    """(allowed, forbidden): two embedding sites, only the first named in frame-ancestors."""
    allowed, forbidden = Site(), Site()
    yield allowed, forbidden
    allowed.close()
    forbidden.close()


# -- the apps ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apps(sites, tmp_path_factory) -> Iterator[dict[str, RunningApp]]:
    """Both apps, started at once (they load in parallel); stopped at the end."""
    catalog = yaml.safe_load(TEST_MODELS.read_text())
    default = catalog["models"][0]
    precise = {**default, "id": PRECISE_ID, "name": PRECISE_NAME, "prompt_examples": []}
    precise["description"] = "The same tiny model, less inventive."
    precise["parameters"] = {**default["parameters"], "temperature": 0.1}
    remote = {
        "id": "openai/gpt-oss-120b",
        "name": REMOTE_NAME,
        "description": "Served by Inference Providers when the server has a token.",
        "context_window": 131072,
        "endpoints": [{"type": "hf", "provider": "auto"}],
    }
    catalog["models"] = [default, precise, remote]
    models = tmp_path_factory.mktemp("pages-models") / "models.yaml"
    models.write_text(yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True))

    allowed, _ = sites
    started: dict[str, RunningApp] = {}
    try:
        started["space"] = RunningApp(
            tmp_path_factory.mktemp("pages-space") / "data",
            models=models,
            env={"PARLOR_COOKIE_SECURE": "always", "PARLOR_FRAME_ANCESTORS": allowed.origin},
        )
        started["plain"] = RunningApp(tmp_path_factory.mktemp("pages-plain") / "data")
        yield started
    finally:
        for running in started.values():
            running.stop()


@pytest.fixture(scope="module")
def space(apps) -> RunningApp:
    return apps["space"].wait_ready()


@pytest.fixture(scope="module")
def plain(apps) -> RunningApp:
    return apps["plain"].wait_ready()


# -- helpers -----------------------------------------------------------------------------


def shot(person: Person, name: str, page=None) -> None:
    """A screenshot of a step that is not the end state (the `people` fixture saves that)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = page or person.page
    full = page is not person.page or person.frame is None  # see Person.close()
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full)


def cookie_checked(person: Person, doc=None) -> None:
    """Wait until the page's own cookie check (two calls of session/check, then the warning
    or nothing) has run: only then does "no warning" mean something."""
    (doc or person.doc).wait_for_function(
        """() => performance.getEntriesByType("resource")
                 .filter(e => e.name.includes("/session/check")).length >= 2""",
        polling="raf",
    )
    (doc or person.doc).evaluate(chromium.SETTLE_FRAME)


def expect_no_cookie_warning(person: Person) -> None:
    cookie_checked(person)
    expect(person.doc.locator("#cookie-warning")).not_to_contain_text("cookie")


def open_data_panel(person: Person) -> None:
    person.doc.locator("#your-data").get_by_role("button", name="Your data").first.click()
    expect(person.doc.locator("#export")).to_be_visible()


def toast(person: Person):
    return person.doc.locator(".toast-body").last


# -- journeys ----------------------------------------------------------------------------


def test_models_page_starts_a_chat_with_the_model(people, space):
    me = people(space.url).open()
    with me.context.expect_page() as opened:  # Gradio opens Markdown links in a new tab
        me.page.get_by_role("link", name="Models", exact=True).click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == space.url + "models"
    expect(tab.get_by_role("heading", name="Models", level=1)).to_be_visible()

    cards = tab.locator(".model")
    expect(cards).to_have_count(3)
    for name, status, start in (
        (DEFAULT_NAME, "available", 1),
        (PRECISE_NAME, "available", 1),
        (REMOTE_NAME, "unavailable on this server", 0),
    ):
        card = cards.filter(has=tab.get_by_role("heading", name=name))
        expect(card).to_have_count(1)
        expect(card.locator(".tag")).to_have_text(status)
        expect(card.get_by_role("link", name="Start a chat with this model")).to_have_count(start)
    shot(me, "test_models_page-models", tab)

    # The models page is in a tab of its own: the person carries on there.
    me.go_on_in(tab)
    precise = cards.filter(has=tab.get_by_role("heading", name=PRECISE_NAME))
    precise.get_by_role("link", name="Start a chat with this model").click()
    expect(me.box).to_be_visible()
    me.settle()
    assert me.page.url == f"{space.url}?model={PRECISE_ID}"
    expect(me.page.locator("#model input")).to_have_value(PRECISE_NAME)

    answer = me.chat("Name three colours.")
    assert me.messages() == [("user", "Name three colours."), ("bot", answer)]
    assert me.sidebar() == ["Name three colours."]
    expect(me.page.locator("#model input")).to_have_value(PRECISE_NAME)

    # The conversation keeps its model: a new chat starts on the default, reopening it
    # shows the model it was started with.
    me.new_chat()
    expect(me.page.locator("#model input")).to_have_value(DEFAULT_NAME)
    me.open_conversation("Name three colours.")
    expect(me.page.locator("#model input")).to_have_value(PRECISE_NAME)
    assert me.messages() == [("user", "Name three colours."), ("bot", answer)]


def test_privacy_page_says_what_happens_to_conversations(people, space):
    me = people(space.url).open()
    with me.context.expect_page() as opened:
        me.page.get_by_role("link", name="Privacy", exact=True).click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == space.url + "privacy"
    body = tab.locator("body")
    expect(tab.get_by_role("heading", name="Privacy", level=1)).to_be_visible()
    expect(body).to_contain_text("Your conversations are shared with no one")
    expect(body).to_contain_text("Only you.")
    served = tab.locator("ul li")
    expect(served).to_have_text(
        [
            f"{DEFAULT_NAME} smollm2-135m",
            f"{PRECISE_NAME} {PRECISE_ID}",
            f"{REMOTE_NAME} openai/gpt-oss-120b (not available right now)",
        ]
    )
    expect(body).to_contain_text("Delete all my conversations")
    expect(body).to_contain_text("the files are removed from disk, not just hidden")
    expect(body).to_contain_text("export all your data as one JSON file")
    # Not a Space with a wiped disk: nothing says history is lost on restart.
    expect(body).not_to_contain_text("wiped")
    shot(me, "test_privacy_page-privacy", tab)

    me.go_on_in(tab)
    tab.get_by_role("link", name="← Back to chat").click()
    expect(me.box).to_be_visible()
    me.settle()
    assert tab.url == space.url
    expect(tab.locator("#new-chat")).to_be_visible()
    expect(tab.locator("#chatbot")).to_contain_text(EMPTY_CHAT)
    expect(tab.locator("#model input")).to_have_value(DEFAULT_NAME)


def test_your_data_export_import_delete_all(people, space, tmp_path):
    me = people(space.url).open()
    question = "Remember the word pineapple."
    answer = me.chat(question)
    shown = me.messages()
    open_data_panel(me)
    export_file = me.page.locator("#export-file")
    expect(export_file).to_be_hidden()
    me.click_and_settle(me.page.locator("#export"))
    expect(export_file).to_be_visible()
    link = export_file.locator("a[download]")
    expect(link).to_have_count(1)
    with me.page.expect_download() as downloading:
        link.click()
    download = downloading.value
    assert download.suggested_filename.startswith("parlor-export-")
    assert download.suggested_filename.endswith(".json")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    shot(me, "test_your_data-exported")
    document = json.loads(saved.read_text("utf-8"))
    assert (document["format"], document["version"]) == ("parlor-export", 2)
    [conversation] = document["conversations"]
    assert conversation["title"] == question
    assert conversation["model"] == "smollm2-135m"
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][0]["content"] == question
    assert conversation["messages"][1]["content"].strip()

    # Another person, another browser: importing the file brings the conversation along.
    other = people(space.url).open()
    assert other.sidebar() == []
    open_data_panel(other)
    before = other.queue()["joined"]
    other.page.locator("#your-data input[type=file]").set_input_files(saved)
    other.settle(before + 1)
    expect(toast(other)).to_contain_text("Imported 1 conversation.")
    expect(other.entries).to_have_count(1)
    assert other.sidebar() == [question]
    other.open_conversation(question)
    assert other.messages() == shown == [("user", question), ("bot", answer)]
    shot(other, "test_your_data-imported")

    # Delete all, with a confirmation: the sidebar empties, and stays empty after a reload.
    confirm = other.page.locator("#confirm-delete-all")
    expect(confirm).to_be_hidden()
    other.click_and_settle(other.page.locator("#delete-all"))
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Delete every conversation for good?")
    other.click_and_settle(other.page.locator("#confirm-delete-all-yes"))
    expect(toast(other)).to_contain_text("Deleted 1 conversation.")
    expect(confirm).to_be_hidden()
    expect(other.entries).to_have_count(0)
    expect(other.bubbles).to_have_count(0)
    other.reload()
    assert other.sidebar() == []

    # The first person's own copy is untouched.
    me.reload()
    assert me.sidebar() == [question]


def test_embedded_chat_keeps_history_across_reloads(people, space, sites):
    allowed, _ = sites
    me = people(allowed.embedding(space.url + "?embed=1"), frame=FRAME).open()
    frame = me.doc
    assert frame.url == space.url + "?embed=1"
    # The embed view: the chat only, no sidebar.
    expect(frame.locator("#sidebar")).to_be_hidden()
    expect(frame.locator("#new-chat")).to_be_hidden()
    expect(frame.locator("#conversations")).to_be_hidden()
    expect_no_cookie_warning(me)

    question = "Describe the sea in two sentences."
    me.watch_stream()
    joined = me.type_and_send(question)
    me.wait_answered(joined, 1)
    answer = me.answers.last.inner_text().strip()
    assert answer and chromium.FAILED not in answer, f"the model did not answer: {answer!r}"
    assert me.messages() == [("user", question), ("bot", answer)]
    partial = sorted({s["length"] for s in me.stream_samples() if 0 < s["length"] < len(answer)})
    assert len(partial) >= 2, f"the answer streams in the frame, saw lengths {partial}"

    # The cookie the frame holds: Secure (http://127.0.0.1 is a secure context), SameSite=None,
    # and partitioned under the host site.
    assert me.doc.evaluate("window.isSecureContext") is True
    [cookie] = [c for c in me.context.cookies() if c["name"] == "__Host-parlor-session"]
    assert (cookie["secure"], cookie["sameSite"]) == (True, "None")
    assert cookie.get("partitionKey") == "http://localhost", cookie

    # Reload the host site: the frame comes back with the same session...
    me.reload()
    expect_no_cookie_warning(me)
    assert me.doc.evaluate("fetch('session/check').then(r => r.json())") == {"cookie": True}
    # ...and the full view in the same frame lists the conversation, which reopens whole.
    me.doc.goto(space.url)
    expect(me.box).to_be_visible()
    me.settle()
    expect(me.doc.locator("#new-chat")).to_be_visible()
    assert me.sidebar() == [question]
    me.open_conversation(question)
    assert me.messages() == [("user", question), ("bot", answer)]
    expect_no_cookie_warning(me)

    # Parlor in a tab of its own is another partition: the frame's history stays the site's.
    tab = me.context.new_page()
    tab.goto(space.url)
    expect(tab.locator("#message textarea")).to_be_visible()
    expect(tab.locator("#chatbot")).to_contain_text(EMPTY_CHAT)
    cookie_checked(me, tab)
    expect(tab.locator("#conversations .parlor-row")).to_have_count(0)
    tab.close()


def test_a_site_not_allowed_cannot_embed_parlor(people, space, sites):
    allowed, forbidden = sites
    me = people(forbidden.embedding(space.url + "?embed=1"), frame=FRAME)
    with me.page.expect_console_message(lambda m: "frame-ancestors" in m.text) as refused:
        me.page.goto(me.url)  # returns once the page and its frame have loaded
    assert f'"frame-ancestors {allowed.origin}"' in refused.value.text
    assert "blocked" in refused.value.text
    expect(me.page.locator(FRAME)).to_be_visible()
    frame = me.page.locator(FRAME).element_handle().content_frame()
    assert not frame.url.startswith(space.url), frame.url  # Chromium's error page instead
    assert me.page.frame_locator(FRAME).locator("#message").count() == 0
    shot(me, "test_a_site_not_allowed_cannot_embed_parlor-refused")

    # The same page on the allowed site shows Parlor.
    welcome = people(allowed.embedding(space.url + "?embed=1"), frame=FRAME).open()
    expect(welcome.box).to_be_visible()
    expect(welcome.doc.locator("#chatbot")).to_contain_text(EMPTY_CHAT)


def test_embedded_where_the_cookie_is_blocked_says_so(people, plain, sites):
    allowed, _ = sites
    me = people(allowed.embedding(plain.url + "?embed=1"), frame=FRAME).open()
    # Plain HTTP with the defaults: SameSite=Lax, which a cross-site frame never keeps.
    warning = me.doc.locator("#cookie-warning")
    expect(warning).to_contain_text(BLOCKED)
    expect(warning).to_contain_text("so your history will not be kept")
    link = warning.get_by_role("link", name="Open Parlor in a new tab")
    expect(link).to_have_attribute("href", plain.url)
    expect(link).to_have_attribute("target", "_blank")
    assert "{" not in warning.inner_text(), f"markup shows as text: {warning.inner_text()!r}"
    expect(warning).to_contain_text("once you leave this page")

    # While the page is open, a conversation goes on as anywhere else: its second message
    # finds the first (the page's session stands for the cookie the browser refused).
    first = me.chat("Name a colour.")
    second = me.chat("And another one?")
    assert me.messages() == [
        ("user", "Name a colour."),
        ("bot", first),
        ("user", "And another one?"),
        ("bot", second),
    ]
    assert me.context.cookies() == [], "the frame kept no cookie"

    # The link opens Parlor in a tab of its own, where the cookie is kept and nobody warns.
    with me.context.expect_page() as opened:
        link.click()
    tab = opened.value
    expect(tab.locator("#message textarea")).to_be_visible()
    assert tab.url == plain.url
    cookie_checked(me, tab)
    expect(tab.locator("#cookie-warning")).not_to_contain_text("cookie")
    expect(tab.locator("#new-chat")).to_be_visible()
    shot(me, "test_embedded_where_the_cookie_is_blocked_says_so-tab", tab)


def test_a_long_history_lists_the_newest_and_the_rest_on_demand(people, space, tmp_path):
    """With more conversations than the sidebar's page, it lists the newest 50 and a
    button lists the older ones, which open like any other."""

    def day(n: int) -> str:
        return f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000+00:00"

    document = {
        "format": "parlor-export",
        "version": 1,
        "conversations": [
            {
                "id": f"{n:032x}",
                "title": f"Topic {n:02d}",
                "model": "smollm2-135m",
                "created_at": day(n),
                "updated_at": day(n),
                "messages": [
                    {"role": "user", "content": f"Question {n:02d}"},
                    {"role": "assistant", "content": f"Answer {n:02d}"},
                ],
            }
            for n in range(55)
        ],
    }
    saved = tmp_path / "parlor-export-long.json"
    saved.write_text(json.dumps(document), "utf-8")
    me = people(space.url).open()
    more = me.page.locator("#more-conversations")
    expect(more).to_be_hidden()
    open_data_panel(me)
    before = me.queue()["joined"]
    me.page.locator("#your-data input[type=file]").set_input_files(saved)
    me.settle(before + 1)
    expect(toast(me)).to_contain_text("Imported 55 conversations.")
    newest = [f"Topic {n:02d}" for n in range(54, -1, -1)]
    expect(me.entries).to_have_count(50)
    assert me.sidebar() == newest[:50]
    expect(more).to_be_visible()

    me.click_and_settle(more)
    expect(me.entries).to_have_count(55)
    assert me.sidebar() == newest
    expect(more).to_be_hidden()
    me.open_conversation("Topic 00")
    assert me.messages() == [("user", "Question 00"), ("bot", "Answer 00")]
    shot(me, "test_a_long_history-every-one")

    # A new visit lists the first page again.
    me.reload()
    expect(me.entries).to_have_count(50)
    expect(more).to_be_visible()
