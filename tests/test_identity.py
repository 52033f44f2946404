"""Cookie signing and the session middleware."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chat.identity import (
    COOKIE_NAME,
    CookiePolicy,
    CookieSigner,
    IdentityError,
    SessionCookieMiddleware,
    owner_from_cookies,
)

SECRET = "test-secret-that-is-long-enough"


def test_sign_round_trip():
    signer = CookieSigner(SECRET)
    sid = signer.new_session_id()
    assert len(sid) == 40  # 160 random bits
    assert signer.unsign(signer.sign(sid)) == sid


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-1],  # truncated
        lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1],  # one character changed
        lambda v: "0" * 40 + v[40:],  # another id with this signature
        lambda v: v.split(".")[0],  # signature dropped
        lambda v: "",
    ],
)
def test_tampered_cookie_is_refused(mangle):
    signer = CookieSigner(SECRET)
    assert signer.unsign(mangle(signer.sign(signer.new_session_id()))) is None


def test_other_secret_is_refused():
    value = CookieSigner(SECRET).sign("a" * 40)
    assert CookieSigner("another-secret-entirely").unsign(value) is None


def test_owner_from_cookie():
    signer = CookieSigner(SECRET)
    owner = owner_from_cookies({COOKIE_NAME: signer.sign("b" * 40)}, signer)
    assert owner.id == "anon:" + "b" * 40
    with pytest.raises(IdentityError):
        owner_from_cookies({COOKIE_NAME: "forged"}, signer)


def _app(signer: CookieSigner) -> TestClient:
    async def whoami(request):
        return PlainTextResponse(owner_from_cookies(request.cookies, signer).id)

    app = SessionCookieMiddleware(
        Starlette(routes=[Route("/", whoami)]), signer=signer, policy=CookiePolicy()
    )
    return TestClient(app, base_url="http://127.0.0.1")


def test_middleware_gives_a_stable_identity():
    client = _app(CookieSigner(SECRET))
    first = client.get("/")
    header = first.headers["set-cookie"]
    assert "HttpOnly" in header and "Max-Age=" in header
    # The very first request already sees the identity it was just given.
    assert first.text.startswith("anon:")
    assert client.get("/").text == first.text
    assert "set-cookie" not in client.get("/").headers


def test_middleware_replaces_a_tampered_cookie():
    signer = CookieSigner(SECRET)
    victim = signer.sign("c" * 40)
    client = _app(signer)
    client.cookies.set(COOKIE_NAME, victim[:-3] + "xyz")
    got = client.get("/").text
    assert got.startswith("anon:") and got != "anon:" + "c" * 40


def test_https_cookie_works_in_iframes():
    policy = CookiePolicy()
    https = policy.header("v", https=True)
    assert "SameSite=None" in https and "Secure" in https and "Partitioned" in https
    plain = policy.header("v", https=False)
    assert "SameSite=Lax" in plain and "Secure" not in plain
    assert "Secure" in CookiePolicy(secure="always").header("v", https=False)
