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


def _client(frame_ancestors: str) -> TestClient:
    async def ok(request):
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/act", ok, methods=["GET", "POST"])])
    return TestClient(
        SecurityMiddleware(app, frame_ancestors=frame_ancestors), base_url="http://parlor.test"
    )


def test_frame_ancestors_header():
    assert _client("*").get("/act").headers["content-security-policy"] == "frame-ancestors *"
    named = _client("'self' https://blog.example").get("/act")
    assert named.headers["content-security-policy"] == "frame-ancestors 'self' https://blog.example"
    assert named.headers["x-content-type-options"] == "nosniff"


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


def test_the_running_app_applies_them(tmp_path):
    running = RunningApp(
        tmp_path / "data", env={"PARLOR_FRAME_ANCESTORS": "http://localhost:9999"}
    ).wait_ready()
    try:
        page = httpx.get(running.url)
        assert page.headers["content-security-policy"] == "frame-ancestors http://localhost:9999"
        join = running.url + "gradio_api/queue/join"
        forged = httpx.post(join, json={}, headers={"origin": "https://evil.example"})
        assert forged.status_code == 403 and "Cross-site request refused" in forged.text
        own = httpx.post(join, json={}, headers={"origin": running.url.rstrip("/")})
        assert own.status_code != 403
        framed = httpx.post(join, json={}, headers={"origin": "http://localhost:9999"})
        assert framed.status_code != 403
    finally:
        running.stop()
