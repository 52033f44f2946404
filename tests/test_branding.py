"""The branding settings: each one checked at start-up (a bad value stops `python app.py`
with one line naming the variable), a logo URL allowed by the page's CSP for its origin only,
the accent colour's theme, the links' older name, and a share page carrying the app's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from apprunner import ROOT, TEST_MODELS
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chat.branding import branding_of, theme
from chat.security import SecurityMiddleware
from chat.settings import Settings
from chat.share_pages import share_page

BRANDING_VARIABLES = ("PARLOR_", "SPACE_ID")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(BRANDING_VARIABLES):
            monkeypatch.delenv(name)


def start(tmp_path: Path, models: Path = TEST_MODELS, **env: str) -> subprocess.CompletedProcess:
    """`python app.py` with `env`, expected to stop at start-up (a port nobody listens on)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(BRANDING_VARIABLES)}
    full.update(
        PARLOR_DATA_DIR=str(tmp_path / "data"),
        PARLOR_MODELS=str(models),
        PARLOR_SECRET="test-secret-for-the-suite-0123456789",
        GRADIO_SERVER_PORT="9",
        **env,
    )
    return subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300
    )


def refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Parlor cannot start: "), result.stderr[-2000:]
    return last


def test_a_bad_colour_stops_start_up_naming_the_variable(tmp_path):
    line = refused(start(tmp_path, PARLOR_ACCENT_COLOR="teal"))
    assert line == (
        "Parlor cannot start: the setting PARLOR_ACCENT_COLOR is not valid: "
        "not a colour: write it as #rrggbb, e.g. #0f766e."
    )


def test_a_missing_logo_file_stops_start_up_naming_the_variable(tmp_path):
    missing = tmp_path / "acme-logo.png"
    line = refused(start(tmp_path, PARLOR_LOGO=str(missing)))
    assert "the setting PARLOR_LOGO is not valid: there is no file" in line
    assert str(missing) in line
    line = refused(start(tmp_path, PARLOR_FAVICON="http://cdn.acme.example/icon.png"))
    assert "PARLOR_FAVICON is not valid: an image URL must start with https://" in line


def test_a_bad_link_or_missing_extension_stops_start_up(tmp_path):
    line = refused(start(tmp_path, PARLOR_TERMS_URL="javascript:alert(1)"))
    assert "PARLOR_TERMS_URL is not valid: not a web address" in line
    line = refused(start(tmp_path, PARLOR_EXTENSION="acme.nowhere"))
    assert "PARLOR_EXTENSION is not valid: there is no module acme.nowhere" in line


def test_a_failing_extension_stops_start_up_naming_its_module(tmp_path):
    (tmp_path / "acme_broken.py").write_text(
        "def extend(blocks, parlor):\n    raise RuntimeError('the panel has no data source')\n"
    )
    # A model on a port nobody listens on: the app stops before anything asks it.
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - id: none\n    name: None\n    endpoints:\n"
        "      - {type: openai, base_url: 'http://127.0.0.1:9/v1', model: none}\n"
    )
    result = start(tmp_path, models, PARLOR_EXTENSION="acme_broken", PYTHONPATH=str(tmp_path))
    assert refused(result) == (
        "Parlor cannot start: the extension acme_broken failed in extend(): "
        "RuntimeError: the panel has no data source"
    )


def test_settings_normalise_what_they_accept(tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG")
    s = Settings(accent_color="#0FA", logo=str(logo), legal_contact="legal@acme.example")
    assert s.accent_color == "#00ffaa"
    assert s.legal_contact == "mailto:legal@acme.example"
    assert s.logo == str(logo.resolve())
    with pytest.raises(ValidationError, match="not an image of a type browsers show"):
        Settings(favicon=str(ROOT / "README.md"))


def test_a_logo_url_is_allowed_by_the_csp_for_its_origin_only():
    brand = branding_of(Settings(logo="https://cdn.acme.example/brand/logo.svg"))
    assert brand.image_origins() == ["https://cdn.acme.example"]
    assert brand.logo_href() == "https://cdn.acme.example/brand/logo.svg"
    assert brand.files() == {}, "a URL is not served by the app"

    async def ok(request):
        return PlainTextResponse("done")

    app = SecurityMiddleware(
        Starlette(routes=[Route("/", ok)]),
        frame_ancestors="*",
        image_origins=brand.image_origins(),
    )
    policy = TestClient(app).get("/").headers["content-security-policy"].split("; ")
    assert "img-src 'self' data: blob: https://cdn.acme.example" in policy
    assert "media-src 'self' data: blob:" in policy, "images only"


def test_the_accent_colour_themes_buttons_and_links_light_and_dark():
    dark_accent = theme(branding_of(Settings(accent_color="#0f766e")))
    assert dark_accent.button_primary_background_fill == "#0f766e"
    assert dark_accent.button_primary_background_fill_dark == "#0f766e"
    assert dark_accent.button_primary_text_color == "#ffffff"  # readable on a dark colour
    assert dark_accent.link_text_color_dark != "#0f766e", "lighter on a dark page"
    light_accent = theme(branding_of(Settings(accent_color="#fde047")))
    assert light_accent.button_primary_text_color == "#000000"  # and on a light one
    assert theme(branding_of(Settings())) is None, "no colour: Gradio's own theme"


def test_the_discussion_link_keeps_its_older_name():
    old = branding_of(Settings(feedback_url="https://acme.example/forum"))
    assert ("Discussion", "https://acme.example/forum") in old.links
    new = Settings(discussion_url="https://acme.example/new", feedback_url="https://old.example")
    assert new.feedback_link == "https://acme.example/new"
    unset = branding_of(Settings())
    assert unset.links == (), "no source code link while the project has no repository"


def test_a_share_page_carries_the_apps_name_and_favicon():
    brand = branding_of(Settings(name="Acme Assistant", favicon="https://cdn.acme.example/i.png"))
    snapshot = {"title": "Cats", "created_at": "2026-12-04T10:00:00", "model": "m", "messages": []}
    page = share_page("abc", snapshot, brand)
    assert "<title>Cats · Acme Assistant</title>" in page
    assert "A conversation shared from Acme Assistant on 2026-12-04" in page
    assert '<link rel="icon" href="https://cdn.acme.example/i.png">' in page


def test_a_logo_url_that_would_write_into_the_csp_is_refused():
    """The logo's origin goes into the page's Content-Security-Policy: a value carrying a
    `;` would add a directive of its own (e.g. allow any script)."""
    with pytest.raises(ValidationError, match="plain host"):
        Settings(logo="https://cdn.acme.example;script-src *")
    with pytest.raises(ValidationError, match="plain host"):
        Settings(favicon="https://cdn.acme.example 'unsafe-inline'/icon.png")
    assert Settings(logo="https://cdn.acme.example:8443/l.svg").logo.endswith("/l.svg")
