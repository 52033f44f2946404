"""The test OpenID provider, on its own and driving Gradio's real OAuth flow (authlib).

The Gradio app runs in a subprocess with `SYSTEM=spaces` and the `OAUTH_*` /
`OPENID_PROVIDER_URL` variables pointing at the provider, so Gradio takes its real code path
(`gradio.oauth._add_oauth_routes`), not the mocked one that needs a machine logged in to HF.

Gradio's session cookie is `Secure` (SessionMiddleware(https_only=True)) and the app is on
plain http://127.0.0.1. Python's cookie jar stores such a cookie but never sends it over http,
so the httpx client here drops `Secure` from cookies that 127.0.0.1 sets
(`LoopbackSecureCookies`). Chromium needs nothing: it counts http://127.0.0.1 as a secure context.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
import huggingface_hub.constants
import pytest
from gradio_client import Client
from oidc_provider import OIDCProvider

# The app under test: a LoginButton (which is what switches Gradio's OAuth on), a page-load
# event and gr.api endpoints that report who Gradio thinks is calling.
APP = r"""
import contextlib, json, os, socket, sys
import gradio as gr, uvicorn
from fastapi import FastAPI
from gradio.oauth import _generate_redirect_uri
from huggingface_hub import HfApi
from starlette.requests import Request

def who(profile: gr.OAuthProfile | None, request: gr.Request) -> dict:
    info = request.session.get("oauth_info") if request.session else None
    return {
        "username": profile.username if profile else None,
        "sub": profile["sub"] if profile else None,
        "session_sub": info["userinfo"]["sub"] if info else None,
        "has_token": bool(info and info["access_token"].startswith("hf_oauth_")),
    }

def greet(profile: gr.OAuthProfile | None) -> str:
    return f"Hello {profile.name} ({profile['sub']})" if profile else "Hello stranger"

def caller(request: gr.Request, oauth_token: gr.OAuthToken | None) -> dict:
    header = request.headers.get("x-hf-authorization", "").removeprefix("Bearer ")
    token, via = (oauth_token.token, "oauth_token") if oauth_token else (header, "header")
    if not token:
        return {}
    return {"via": via, **HfApi(endpoint=os.environ["OPENID_PROVIDER_URL"]).whoami(token)}

with gr.Blocks() as demo:
    gr.LoginButton()
    hello = gr.Markdown(elem_id="hello")
    demo.load(greet, None, hello)
    gr.api(who, api_name="who")
    gr.api(caller, api_name="caller")

app = gr.mount_gradio_app(FastAPI(), demo, path="/")

# Probe: the redirect_uri Gradio sends when SPACE_HOST is set (on a Space it always is).
os.environ["SPACE_HOST"] = "test-parlor.hf.space,chat.example.org"
with contextlib.redirect_stdout(sys.stderr):  # Gradio prints SPACE_HOST on the way
    probe = _generate_redirect_uri(Request({"type": "http", "query_string": b"_target_url=/"}))
del os.environ["SPACE_HOST"]

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(json.dumps({"port": sock.getsockname()[1], "space_host_redirect_uri": probe}), flush=True)
config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
uvicorn.Server(config).run(sockets=[sock])
"""


class LoopbackSecureCookies(httpx.HTTPTransport):
    """Treat 127.0.0.1 as a secure origin, as browsers do: drop `Secure` from its cookies.

    httpx (http.cookiejar) keeps a `Secure` cookie but never sends it over http, and it copies
    the jar into a default-policy jar for each request, so a custom cookie policy is lost.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.host == "127.0.0.1":
            raw = [(k, self._not_secure(k, v)) for k, v in response.headers.raw]
            response.headers = httpx.Headers(raw)
        return response

    @staticmethod
    def _not_secure(name: bytes, value: bytes) -> bytes:
        if name.lower() != b"set-cookie":
            return value
        return re.sub(rb";\s*secure\b", b"", value, flags=re.I)


def browser_like_client() -> httpx.Client:
    return httpx.Client(transport=LoopbackSecureCookies(), timeout=10)


class App(NamedTuple):
    url: str  # http://127.0.0.1:<port>, no trailing slash
    space_host_redirect_uri: str  # what Gradio's probe computed with SPACE_HOST set


@pytest.fixture(autouse=True)
def no_machine_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`Client(url)` without a token sends the machine's HF token (x-hf-authorization)."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture(scope="module")
def op() -> Iterator[OIDCProvider]:
    with OIDCProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def app(op: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SPACE_HOST", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    }
    env.update(
        SYSTEM="spaces",  # gradio.utils.get_space() → SPACE_ID → real OAuth routes
        SPACE_ID="test/parlor",
        OAUTH_CLIENT_ID=op.client_id,
        OAUTH_CLIENT_SECRET=op.client_secret,
        OAUTH_SCOPES="openid profile",
        OPENID_PROVIDER_URL=op.url,
        GRADIO_ANALYTICS_ENABLED="False",
    )
    log_path = tmp_path_factory.mktemp("oidc") / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", APP], env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, f"app did not start:\n{log_path.read_text()}"
            started = json.loads(line)
            url = f"http://127.0.0.1:{started['port']}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/config", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"app not ready:\n{log_path.read_text()}"
                time.sleep(0.1)
            yield App(url, started["space_host_redirect_uri"])
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def session_cookie(client: httpx.Client) -> str:
    return next(c.value for c in client.cookies.jar if c.name == "session")


# -- the provider on its own ------------------------------------------------------------------


def test_discovery_and_token_endpoint_checks(op: OIDCProvider) -> None:
    meta = httpx.get(op.url + "/.well-known/openid-configuration").json()
    assert meta["issuer"] == op.url
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    authorize = httpx.get(
        meta["authorization_endpoint"],
        params={
            "client_id": op.client_id,
            "response_type": "code",
            "redirect_uri": "http://127.0.0.1:1/cb?keep=1",
            "scope": "openid",
            "state": "s1",
        },
    )
    assert authorize.status_code == 302
    back = urlsplit(authorize.headers["location"])
    query = parse_qs(back.query)
    assert back.path == "/cb" and query["keep"] == ["1"] and query["state"] == ["s1"]
    form = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": "http://127.0.0.1:1/cb?keep=1",
    }
    wrong = {**form, "client_id": op.client_id, "client_secret": "nope"}
    assert httpx.post(meta["token_endpoint"], data=wrong).status_code == 401
    post = {**form, "client_id": op.client_id, "client_secret": op.client_secret}
    token = httpx.post(meta["token_endpoint"], data=post).json()  # client_secret_post
    assert token["token_type"] == "bearer" and token["scope"] == "openid"
    again = httpx.post(meta["token_endpoint"], data=post)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # used once
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(meta["userinfo_endpoint"], headers=bearer).json() == {"sub": "u-123"}
    header = base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "==")
    assert b'"RS256"' in header


def test_whoami_resolves_issued_tokens_only(op: OIDCProvider) -> None:
    token = op.issue_token(sub="u-9", preferred_username="bob", name="Bob")
    assert token.startswith("hf_")
    who = httpx.get(op.url + "/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert who.json()["type"] == "user"
    assert {k: who.json()[k] for k in ("id", "name", "fullname")} == {
        "id": "u-9",
        "name": "bob",
        "fullname": "Bob",
    }
    unknown = httpx.get(op.url + "/api/whoami-v2", headers={"Authorization": "Bearer hf_x"})
    assert unknown.status_code == 401


def test_redirect_uri_follows_space_host(app: App) -> None:
    """With SPACE_HOST set, Gradio sends https://<first host>/login/callback whatever the
    request's own host, so locally SPACE_HOST must be unset (the app fixture unsets it)."""
    expected = "https://test-parlor.hf.space/login/callback?_target_url=%2F"
    assert app.space_host_redirect_uri == expected


# -- Gradio's real OAuth flow -------------------------------------------------------------------


def test_gradio_login_sees_the_user_and_logout_forgets(op: OIDCProvider, app: App) -> None:
    op.login_as(sub="u-123", preferred_username="alice", name="Alice")
    op.clear()
    with browser_like_client() as browser:
        page = browser.get(app.url + "/login/huggingface?_target_url=/", follow_redirects=True)
        assert page.status_code == 200 and str(page.url) == app.url + "/"
        hops = [(r.status_code, urlsplit(str(r.url)).path) for r in page.history]
        assert hops == [
            (302, "/login/huggingface"),
            (302, "/oauth/authorize"),
            (307, "/login/callback"),
        ]
        paths = [r["path"] for r in op.requests]
        assert paths[0] == "/.well-known/openid-configuration"  # fetched once, lazily
        assert {"/oauth/authorize", "/oauth/token", "/oauth/jwks"} <= set(paths)
        authorize = next(r for r in op.requests if r["path"] == "/oauth/authorize")
        assert authorize["query"]["redirect_uri"].startswith(app.url + "/login/callback?")
        assert authorize["query"]["nonce"]  # authlib checks it against the id_token
        token_call = next(r for r in op.requests if r["path"] == "/oauth/token")
        assert token_call["headers"]["authorization"].startswith("Basic ")  # client_secret_basic

        # gr.api endpoints (queued) see the session: gradio_client carries the cookie.
        cookie = session_cookie(browser)
        client = Client(app.url, httpx_kwargs={"cookies": {"session": cookie}}, verbose=False)
        me = client.predict(api_name="/who")
        assert me == {
            "username": "alice",
            "sub": "u-123",
            "session_sub": "u-123",
            "has_token": True,
        }
        assert Client(app.url, verbose=False).predict(api_name="/who")["sub"] is None

        browser.get(app.url + "/logout", follow_redirects=True)
        assert not [c for c in browser.cookies.jar if c.name == "session"]
        client = Client(app.url, httpx_kwargs={"cookies": {"session": cookie}}, verbose=False)
        assert client.predict(api_name="/who")["sub"] == "u-123"  # the old cookie still works!


def test_denied_consent_is_a_server_error(op: OIDCProvider, app: App) -> None:
    """Gradio does not catch authlib's OAuthError: `?error=access_denied` ends in a 500."""
    op.fail_next("access_denied")
    with browser_like_client() as browser:
        page = browser.get(app.url + "/login/huggingface", follow_redirects=True)
        assert page.status_code == 500 and page.url.path == "/login/callback"
        assert page.url.params["error"] == "access_denied"


def test_api_token_is_resolved_through_whoami(op: OIDCProvider, app: App) -> None:
    """`Client(url, token=t)` sends `x-hf-authorization: Bearer t` (which the Spaces proxy
    strips, gradio PR #11700); `Client(url, oauth_token=t)` puts t in the request body for
    endpoints that declare a gr.OAuthToken. The app resolves t with HfApi(endpoint).whoami()."""
    token = op.issue_token(sub="u-77", preferred_username="carol", name="Carol")
    op.clear()
    by_header = Client(app.url, token=token, verbose=False).predict(api_name="/caller")
    assert (by_header["via"], by_header["id"], by_header["name"]) == ("header", "u-77", "carol")
    by_body = Client(app.url, oauth_token=token, verbose=False).predict(api_name="/caller")
    assert (by_body["via"], by_body["id"]) == ("oauth_token", "u-77")
    whoami = [r for r in op.requests if r["path"] == "/api/whoami-v2"]
    assert [r["headers"]["authorization"] for r in whoami] == [f"Bearer {token}"] * 2
    assert Client(app.url, verbose=False).predict(api_name="/caller") == {}


def test_browser_login_button(op: OIDCProvider, app: App, browser) -> None:
    op.login_as(sub="u-456", preferred_username="dora", name="Dora")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(app.url + "/")
        page.get_by_text("Hello stranger").wait_for()
        page.get_by_role("button", name="Sign in with Hugging Face").click()
        page.get_by_text("Hello Dora (u-456)").wait_for()
        cookie = next(c for c in context.cookies() if c["name"] == "session")
        assert (cookie["secure"], cookie["sameSite"], cookie["httpOnly"]) == (True, "None", True)
        page.get_by_role("button", name="Logout (dora)").click()
        page.get_by_text("Hello stranger").wait_for()
        page.get_by_role("button", name="Sign in with Hugging Face").wait_for()
    finally:
        context.close()
