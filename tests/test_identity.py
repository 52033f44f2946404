"""Cookie signing and the session middleware."""

from __future__ import annotations

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chat.identity import (
    COOKIE_NAME,
    SECURE_COOKIE_NAME,
    CookiePolicy,
    CookieSigner,
    IdentityError,
    PageSigner,
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


def _app(
    signer: CookieSigner, policy: CookiePolicy | None = None, *, forwarded_proto: bool = False
) -> TestClient:
    async def whoami(request):
        return PlainTextResponse(owner_from_cookies(request.cookies, signer).id)

    app = SessionCookieMiddleware(
        Starlette(routes=[Route("/", whoami)]),
        signer=signer,
        policy=policy or CookiePolicy(),
        forwarded_proto=forwarded_proto,
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


def test_x_forwarded_proto_counts_only_from_a_declared_proxy():
    """Over plain HTTP, a client's own `X-Forwarded-Proto: https` made its cookie `Secure`
    (which the browser then drops on plain HTTP) and `__Host-` named: only a proxy the
    deployer declares (or a Space's, which ends TLS) says how the browser connected."""
    claim = {"x-forwarded-proto": "https"}
    direct = _app(CookieSigner(SECRET)).get("/", headers=claim).headers["set-cookie"]
    assert direct.startswith(COOKIE_NAME + "=") and "Secure" not in direct
    proxied = _app(CookieSigner(SECRET), forwarded_proto=True).get("/", headers=claim)
    assert proxied.headers["set-cookie"].startswith(SECURE_COOKIE_NAME + "=")
    assert "Secure" in proxied.headers["set-cookie"]


def test_another_apps_cookie_that_is_not_rfc_2109_hides_nothing():
    """Another app on the same host may set `c={"a":1}`: browsers send it as it is, and
    `http.cookies.SimpleCookie` stopped at it, so the session cookie after it was "missing"
    and the visitor got a new id whose cookie replaced theirs (their history, gone)."""
    signer = CookieSigner(SECRET)
    mine = signer.sign("d" * 40)
    client = _app(signer)
    for header in (f'c={{"a":1}}; {COOKIE_NAME}={mine}', f'{COOKIE_NAME}={mine}; c={{"a":1}}'):
        response = client.get("/", headers={"cookie": header})
        assert response.text == "anon:" + "d" * 40, header
        assert "set-cookie" not in response.headers, "the visitor's cookie is left alone"


def test_a_secure_cookie_is_a_host_cookie():
    header = CookiePolicy(secure="always").header("v", https=False)
    assert header.startswith(SECURE_COOKIE_NAME + "=v;")
    assert "; Path=/;" in header and "Domain" not in header and "Secure" in header
    assert CookiePolicy().header("v", https=False).startswith(COOKIE_NAME + "=v;")


def test_a_visitor_from_before_host_cookies_keeps_their_identity():
    """The cookie's name changed to `__Host-parlor-session`: the old name is read once, and
    the visitor leaves with the new one, same id, and the old one removed."""
    signer = CookieSigner(SECRET)
    old = signer.sign("e" * 40)
    client = _app(signer, CookiePolicy(secure="always"))
    first = client.get("/", headers={"cookie": f"{COOKIE_NAME}={old}"})
    assert first.text == "anon:" + "e" * 40
    renamed, removed = sorted(first.headers.get_list("set-cookie"))  # "_" before "p"
    assert renamed.startswith(f"{SECURE_COOKIE_NAME}={old};") and "Max-Age=0" not in renamed
    assert removed.startswith(f"{COOKIE_NAME}=;") and "Max-Age=0" in removed
    # What the browser sends from then on: the new name (and, if it kept it, the old one).
    for header in (f"{SECURE_COOKIE_NAME}={old}", f"{COOKIE_NAME}=x; {SECURE_COOKIE_NAME}={old}"):
        again = client.get("/", headers={"cookie": header})
        assert again.text == "anon:" + "e" * 40 and "set-cookie" not in again.headers


def test_a_page_token_names_a_fresh_person_for_a_while():
    pages = PageSigner(SECRET, max_age=3600)
    token = pages.issue()
    owner = pages.owner(token)
    assert owner is not None and owner.kind == "anonymous" and owner.id.startswith("anon:")
    assert pages.owner(token) == owner and pages.owner(pages.issue()) != owner
    assert PageSigner(SECRET, max_age=-1).owner(token) is None, "too old"
    assert PageSigner("another-secret-entirely", max_age=3600).owner(token) is None
    for forged in ("", None, token[:-2], "anything", CookieSigner(SECRET).sign("f" * 40)):
        assert pages.owner(forged) is None, forged
    # Nor is a page token a session cookie.
    assert CookieSigner(SECRET).unsign(token) is None


# -- end to end: the launched app ---------------------------------------------------------


def test_another_apps_cookie_leaves_the_history_in_place(app):
    """A browser that also holds another app's `c={"a":1}` keeps being the same person."""
    me = Client(app.url, verbose=False)
    cid = me.predict("Kept beside another app's cookie.", "", "", api_name="/chat")[0]
    header = {"cookie": f'c={{"a":1}}; {COOKIE_NAME}={me.cookies[COOKIE_NAME]}'}
    page = httpx.get(app.url, headers=header)
    assert page.status_code == 200 and "set-cookie" not in page.headers, "cookie replaced"
    body = {"message": "Still me?", "conversation_id": cid}
    more = httpx.post(app.url + "api/chat", json=body, headers=header, timeout=120)
    assert more.status_code == 200 and "event: complete" in more.text, more.text[:200]
    assert len(me.predict(cid, api_name="/conversation")["messages"]) == 4


@pytest.fixture(scope="module")
def secure_app(tmp_path_factory):
    """Cookies `Secure` (what a Space over HTTPS gets): named `__Host-parlor-session`."""
    env = {"PARLOR_COOKIE_SECURE": "always", "PARLOR_SECRET": SECRET}
    running = RunningApp(tmp_path_factory.mktemp("secure") / "data", env=env).wait_ready()
    yield running
    running.stop()


def test_a_visitor_from_before_host_cookies_keeps_their_history(secure_app):
    """Someone whose browser holds the cookie by its old name (set before `__Host-`) keeps
    their conversations, and their browser is given the new name for the same person."""
    old = CookieSigner(SECRET).sign("7" * 40)
    before = Client(secure_app.url, verbose=False, httpx_kwargs={"cookies": {COOKIE_NAME: old}})
    before.predict("Written before the rename.", "", "", api_name="/chat")

    visit = httpx.get(secure_app.url, cookies={COOKIE_NAME: old})
    given = {c.split("=", 1)[0]: c for c in visit.headers.get_list("set-cookie")}
    assert given[SECURE_COOKIE_NAME].startswith(f"{SECURE_COOKIE_NAME}={old};")
    assert "Secure" in given[SECURE_COOKIE_NAME] and "Path=/;" in given[SECURE_COOKIE_NAME]
    assert "Max-Age=0" in given[COOKIE_NAME], "the old name is removed"

    after = Client(
        secure_app.url, verbose=False, httpx_kwargs={"cookies": {SECURE_COOKIE_NAME: old}}
    )
    assert [c["title"] for c in after.predict(api_name="/conversations")] == [
        "Written before the rename."
    ]
