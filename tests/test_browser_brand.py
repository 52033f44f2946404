"""A copy made someone else's without code, in Chromium: the app started with every branding
setting and link changed (chat/branding.py), and the example extension (examples/extension.py)
on the page. Screenshots in light and dark go to tests/artifacts/."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator

import httpx
import pytest
from browser import Person
from playwright.sync_api import expect
from test_browser_tree import Stack, scripted_stack, shot

NAME = "Acme Assistant"
DESCRIPTION = "Acme's own helper for staff questions."
ACCENT = "#0f766e"
ACCENT_RGB = "rgb(15, 118, 110)"
ANNOUNCEMENT = "**Maintenance** on Saturday from 8:00 UTC."
HEADER = "Questions about *Acme products* only."
FOOTER = "© Acme Corp · internal use"
WELCOME = "**Welcome to Acme Assistant.** Ask about our products."
LINKS = {
    "Privacy policy": "https://acme.example/privacy",
    "Terms of use": "https://acme.example/terms",
    "Legal contact": "mailto:legal@acme.example",
    "Source code": "https://git.acme.example/assistant",
    "Discussion": "https://acme.example/forum",
}
# An SVG logo and a 16×16 PNG favicon, in the accent colour.
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
    f'<rect width="120" height="40" fill="{ACCENT}"/></svg>'
)


def png(rgb: tuple[int, int, int], side: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes(rgb) * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


FAVICON = png((15, 118, 110))


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    files = tmp_path_factory.mktemp("brand-files")
    (files / "logo.svg").write_text(LOGO)
    (files / "favicon.png").write_bytes(FAVICON)
    yield from scripted_stack(
        tmp_path_factory,
        "brand",
        echo=True,
        PARLOR_NAME=NAME,
        PARLOR_DESCRIPTION=DESCRIPTION,
        PARLOR_LOGO=str(files / "logo.svg"),
        PARLOR_FAVICON=str(files / "favicon.png"),
        PARLOR_ACCENT_COLOR=ACCENT,
        PARLOR_ANNOUNCEMENT=ANNOUNCEMENT,
        PARLOR_HEADER=HEADER,
        PARLOR_FOOTER=FOOTER,
        PARLOR_WELCOME=WELCOME,
        PARLOR_PRIVACY_POLICY_URL=LINKS["Privacy policy"],
        PARLOR_TERMS_URL=LINKS["Terms of use"],
        PARLOR_LEGAL_CONTACT="legal@acme.example",
        PARLOR_SOURCE_URL=LINKS["Source code"],
        PARLOR_FEEDBACK_URL=LINKS["Discussion"],  # the older name still works
        PARLOR_EXTENSION="examples.extension",
    )


def primary_colour(me: Person) -> str:
    return me.send_button.evaluate("b => getComputedStyle(b).backgroundColor")


def test_every_branding_setting_shows(people, stack):
    me = people(stack.app.url).open()
    page = me.page

    # The name: in the title and the sidebar's header, with the description and the logo.
    expect(page).to_have_title(NAME)
    brand = page.locator("#brand")
    expect(brand.locator("h2")).to_have_text(NAME)
    expect(brand).to_contain_text(DESCRIPTION)
    logo = brand.locator("img")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 120, "logo not drawn"
    served = page.request.get(stack.app.url + "brand/logo")
    assert served.ok and served.headers["content-type"] == "image/svg+xml"

    # The favicon: linked from the page, and served.
    icon = page.locator("link[rel~=icon]")  # the one icon of the page (Gradio's is gone)
    expect(icon).to_have_count(1)
    expect(icon).to_have_attribute("href", "brand/favicon")
    fetched = page.request.get(stack.app.url + "brand/favicon")
    assert fetched.ok and fetched.body() == FAVICON

    # The header, footer and welcome text.
    expect(page.locator("#brand-header")).to_have_text("Questions about Acme products only.")
    expect(page.locator("#brand-footer")).to_have_text(FOOTER)
    expect(page.locator("#welcome")).to_contain_text("Welcome to Acme Assistant.")

    # The accent colour on the primary button, light and dark.
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bdark\b"))
    assert primary_colour(me) == ACCENT_RGB
    shot(me, "brand-light")
    page.goto(stack.app.url + "?__theme=dark")
    expect(me.box).to_be_visible()
    me.settle()
    expect(page.locator("body")).to_have_class(re.compile(r"\bdark\b"))
    assert primary_colour(me) == ACCENT_RGB
    shot(me, "brand-dark")

    # The links in the sidebar.
    links = page.locator(".parlor-links")
    for label, href in LINKS.items():
        expect(links.get_by_role("link", name=label)).to_have_attribute("href", href)


def test_the_announcement_stays_dismissed_until_its_text_changes(people, stack):
    me = people(stack.app.url).open()
    banner = me.page.locator("#announcement")
    expect(banner).to_contain_text("Maintenance on Saturday from 8:00 UTC.")
    expect(banner.locator("strong")).to_have_text("Maintenance")
    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_be_hidden()
    me.reload()
    expect(me.page.locator("#brand h2")).to_have_text(NAME)
    expect(banner).to_be_hidden()

    # What this browser remembers is the dismissed text's key: another text shows again.
    me.page.evaluate("localStorage.setItem('parlor-announcement-dismissed', 'an older one')")
    me.reload()
    expect(banner).to_be_visible()

    # Another browser (a phone's) has not dismissed it.
    other = people(stack.app.url, phone=True).open()
    expect(other.page.locator("#announcement")).to_be_visible()
    expect(other.page.locator("#announcement-dismiss")).to_be_in_viewport()


def test_the_privacy_and_models_pages_carry_the_brand(people, stack):
    me = people(stack.app.url)
    me.page.goto(stack.app.url + "privacy")
    expect(me.page).to_have_title(f"Privacy · {NAME}")
    expect(me.page.locator("body")).to_contain_text(f"{NAME} keeps your conversations")
    expect(me.page.locator("nav img")).to_have_attribute("src", "/brand/logo")
    expect(me.page.locator("link[rel=icon]")).to_have_attribute("href", "/brand/favicon")
    for label, href in LINKS.items():
        text = "public discussion page" if label == "Discussion" else label.lower()
        link = me.page.get_by_role("link", name=text, exact=True)
        expect(link).to_have_attribute("href", href)
    expect(me.page.locator("body")).to_contain_text("Using this app means accepting its terms")
    shot(me, "brand-privacy")
    me.page.goto(stack.app.url + "models")
    expect(me.page).to_have_title(f"Models · {NAME}")


def test_the_example_extension_counts_the_open_conversations_words(people, stack):
    me = people(stack.app.url).open()
    panel = me.page.locator("#word-count-panel")
    panel.get_by_role("button", name="Word count").click()
    count = me.page.locator("#word-count")
    me.click_and_settle(me.page.locator("#word-count-button"))
    expect(count).to_have_text("No conversation is open.")

    me.chat("one two three four")  # the scripted model echoes it: four more words
    me.click_and_settle(me.page.locator("#word-count-button"))
    expect(count).to_have_text("8 words: 4 in your messages, 4 in answers.")
    me.chat("five six")
    me.click_and_settle(me.page.locator("#word-count-button"))
    expect(count).to_have_text("12 words: 6 in your messages, 6 in answers.")
    shot(me, "brand-extension")


def test_the_logo_is_the_deployers_file_and_runs_no_script(stack):
    logo = httpx.get(stack.app.url + "brand/logo")
    assert logo.status_code == 200 and logo.text == LOGO
    assert "script-src 'none'" in logo.headers.get_list("content-security-policy")
