"""Embedding rules: who may frame Parlor, and cross-site requests refused."""

from __future__ import annotations

import httpx
import pytest
from apprunner import RunningApp
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chat.security import SecurityMiddleware


def _client(frame_ancestors: str, **options) -> TestClient:
    async def ok(request):
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/act", ok, methods=["GET", "POST"])])
    return TestClient(
        SecurityMiddleware(app, frame_ancestors=frame_ancestors, **options),
        base_url="http://parlor.test",
    )


def _policy(response) -> dict[str, str]:
    directives = response.headers["content-security-policy"].split(";")
    return dict(d.strip().partition(" ")[::2] for d in directives)


def test_frame_ancestors_header():
    assert _policy(_client("*").get("/act"))["frame-ancestors"] == "*"
    named = _client("'self' https://blog.example").get("/act")
    assert _policy(named)["frame-ancestors"] == "'self' https://blog.example"
    assert named.headers["x-content-type-options"] == "nosniff"


def test_the_page_loads_images_and_media_only_from_parlor():
    policy = _policy(_client("*").get("/act"))
    assert policy["img-src"] == "'self' data: blob:"
    assert policy["media-src"] == "'self' data: blob:"
    assert policy["font-src"] == "'self' data:"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    assert policy["object-src"] == "'none'"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # scripts and the Python client send no Origin
        ("http://parlor.test", True),  # the page itself, also when it is inside an iframe
        ("https://blog.example", True),  # a site named in PARLOR_FRAME_ANCESTORS
        ("https://evil.example", False),
        ("null", False),  # a sandboxed frame
    ],
)
def test_state_changing_requests_from_other_sites_are_refused(origin, allowed):
    client = _client("'self' https://blog.example")
    headers = {"origin": origin} if origin else {}
    response = client.post("/act", headers=headers)
    assert (response.status_code == 200) is allowed
    assert client.get("/act", headers=headers).status_code == 200, "reading is not acting"


def test_any_site_may_frame_but_not_post_by_default():
    client = _client("*")
    assert client.post("/act", headers={"origin": "https://evil.example"}).status_code == 403


EVIL = {"origin": "https://evil.example", "x-forwarded-host": "evil.example"}


def test_a_forwarded_host_does_not_make_another_site_parlor():
    """Anyone can send X-Forwarded-Host (a foreign page too, once Gradio's CORS has allowed
    the header in its preflight): it says nothing unless a proxy of the deployer's sets it."""
    assert _client("*").post("/act", headers=EVIL).status_code == 403
    space = _client("*", public_urls=["https://someone-parlor.hf.space", "https://chat.example"])
    assert space.post("/act", headers=EVIL).status_code == 403
    for page in ("https://someone-parlor.hf.space", "https://chat.example"):  # custom domain
        own = {"origin": page, "x-forwarded-host": "evil.example"}
        assert space.post("/act", headers=own).status_code == 200  # a Space knows its address


def test_behind_a_declared_proxy_the_forwarded_host_is_parlor():
    proxied = _client("*", trusted_proxy=True)
    public = {"origin": "https://chat.example.org", "x-forwarded-host": "chat.example.org"}
    assert proxied.post("/act", headers=public).status_code == 200
    assert proxied.post("/act", headers=EVIL).status_code == 200  # the proxy said so
    # A proxy that appends to a client's value: the proxy's own is the last one.
    appended = {**EVIL, "x-forwarded-host": "evil.example, chat.example.org"}
    assert proxied.post("/act", headers=appended).status_code == 403


def test_the_running_app_applies_them(tmp_path):
    running = RunningApp(
        tmp_path / "data", env={"PARLOR_FRAME_ANCESTORS": "http://localhost:9999"}
    ).wait_ready()
    try:
        join = running.url + "gradio_api/queue/join"
        forged = httpx.post(join, json={}, headers={"origin": "https://evil.example"})
        assert forged.status_code == 403 and "Cross-site request refused" in forged.text
        own = httpx.post(join, json={}, headers={"origin": running.url.rstrip("/")})
        assert own.status_code != 403
        framed = httpx.post(join, json={}, headers={"origin": "http://localhost:9999"})
        assert framed.status_code != 403
        # A page on evil.example reading this visitor's export, X-Forwarded-Host forged.
        export = running.url + "gradio_api/call/export"
        stolen = httpx.post(export, json={"data": []}, headers=EVIL)
        assert stolen.status_code == 403 and "access-control-allow-origin" not in stolen.headers
        mine = httpx.post(export, json={"data": []}, headers={"origin": running.url.rstrip("/")})
        assert mine.status_code == 200 and mine.json()["event_id"]
        page = httpx.get(running.url)
        assert _policy(page)["frame-ancestors"] == "http://localhost:9999"
        assert _policy(page)["img-src"] == "'self' data: blob:"
    finally:
        running.stop()
