"""Sign in with Hugging Face, end to end: Gradio's real OAuth flow against a local provider.

The app runs with the variables a Space sets (`SYSTEM=spaces`, `OAUTH_*`,
`OPENID_PROVIDER_URL`), pointed at `tests/oidc_provider.py` on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import huggingface_hub
import pytest
from apprunner import ROOT, RunningApp
from gradio_client import Client
from gradio_events import PageEvents
from oidc_provider import OIDCProvider
from test_oidc_provider import browser_like_client

from chat.identity import COOKIE_NAME


@pytest.fixture(autouse=True)
def no_machine_token(monkeypatch, tmp_path):
    """gradio_client would otherwise send this machine's own HF token."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture(scope="module")
def op():
    with OIDCProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def space(op, tmp_path_factory):
    env = {
        **op.space_env(),
        "PARLOR_DATA_SHARING": "true",  # what sign-in does to the sharing setting
    }
    running = RunningApp(tmp_path_factory.mktemp("login") / "data", env=env).wait_ready()
    yield running
    running.stop()


class Browser:
    """A person's browser: its cookies, and a gradio_client that presents them."""

    def __init__(self, app: RunningApp) -> None:
        self.app = app
        self.http = browser_like_client()
        self.http.get(app.url)  # the first visit sets the anonymous session cookie

    def cookies(self) -> dict[str, str]:
        return {c.name: c.value for c in self.http.cookies.jar}

    def client(self) -> Client:
        return Client(self.app.url, verbose=False, httpx_kwargs={"cookies": self.cookies()})

    def login(self, op: OIDCProvider, sub: str, username: str) -> None:
        op.login_as(sub=sub, preferred_username=username, name=username.title())
        page = self.http.get(
            self.app.url + "login/huggingface?_target_url=/", follow_redirects=True
        )
        assert page.status_code == 200

    def logout(self) -> None:
        self.http.get(self.app.url + "logout", follow_redirects=True)
        self.http.get(self.app.url)  # back on the page: a fresh anonymous session


def chat(c: Client, text: str) -> str:
    return c.predict(text, "", "", api_name="/chat")[0]


def titles(c: Client) -> set[str]:
    """Which conversations `c` reaches, each by its first question (its title may be the
    model's own by now)."""
    return {
        c.predict(x["id"], api_name="/conversation")["messages"][0]["content"]
        for x in c.predict(api_name="/conversations")
    }


def test_login_moves_anonymous_history_to_the_account(op, space):
    browser = Browser(space)
    chat(browser.client(), "before login alpha")
    old_anonymous = browser.cookies()[COOKIE_NAME]

    browser.login(op, "u-alice", "alice")
    assert titles(browser.client()) == {"before login alpha"}

    # The old anonymous cookie reaches nothing any more.
    stale = Client(space.url, verbose=False, httpx_kwargs={"cookies": {COOKIE_NAME: old_anonymous}})
    assert stale.predict(api_name="/conversations") == []

    # Another browser of the same account, with anonymous history of its own: merged.
    laptop = Browser(space)
    chat(laptop.client(), "from the laptop beta")
    laptop.login(op, "u-alice", "alice-renamed")  # the username changed; the account did not
    assert titles(laptop.client()) == {"before login alpha", "from the laptop beta"}

    # Logging out returns to a fresh, empty anonymous session.
    browser.logout()
    assert browser.client().predict(api_name="/conversations") == []


def test_someone_else_sees_nothing(op, space):
    alice = Browser(space)
    alice.login(op, "u-alice2", "alice2")
    cid = chat(alice.client(), "alice2 private")
    bob = Browser(space)
    bob.login(op, "u-bob", "bob")
    assert bob.client().predict(api_name="/conversations") == []
    with pytest.raises(Exception, match="conversation not found"):
        bob.client().predict(cid, api_name="/conversation")
    # After logout, the same browser does not reach alice2's data either.
    alice.logout()
    with pytest.raises(Exception, match="conversation not found"):
        alice.client().predict(cid, api_name="/conversation")


def test_api_token_is_the_same_account(op, space):
    browser = Browser(space)
    browser.login(op, "u-carol", "carol")
    chat(browser.client(), "carol via browser")
    token = op.issue_token(sub="u-carol", preferred_username="carol", name="Carol")
    api = Client(space.url, token=token, verbose=False)
    assert titles(api) == {"carol via browser"}
    chat(api, "carol via api")
    assert titles(browser.client()) == {"carol via browser", "carol via api"}
    # In the request body (the way through the Spaces proxy, which strips the header):
    assert titles(Client(space.url, oauth_token=token, verbose=False)) == {
        "carol via browser",
        "carol via api",
    }
    whoami_calls = len([r for r in op.requests if r["path"] == "/api/whoami-v2"])
    api.predict(api_name="/conversations")
    assert len([r for r in op.requests if r["path"] == "/api/whoami-v2"]) == whoami_calls, (
        "the token is resolved once per time window, not on every call"
    )


def http_chat(app: RunningApp, text: str, **kwargs) -> httpx.Response:
    """One message over the plain HTTP door, `POST /api/chat`, read to its end."""
    return httpx.post(app.url + "api/chat", json={"message": text}, timeout=60, **kwargs)


def test_plain_http_chat_knows_the_signed_in_browser_and_the_token(op, space):
    browser = Browser(space)
    browser.login(op, "u-dave", "dave")
    answer = http_chat(space, "dave over plain http", cookies=browser.cookies())
    assert answer.status_code == 200 and "event: complete" in answer.text
    assert titles(browser.client()) == {"dave over plain http"}

    token = op.issue_token(sub="u-dave", preferred_username="dave", name="Dave")
    for header in ("authorization", "x-hf-authorization"):
        answer = http_chat(space, f"dave with {header}", headers={header: f"Bearer {token}"})
        assert answer.status_code == 200 and "event: complete" in answer.text
    assert titles(browser.client()) == {
        "dave over plain http",
        "dave with authorization",
        "dave with x-hf-authorization",
    }

    refused = http_chat(space, "nobody", headers={"authorization": "Bearer hf_not_a_real_token"})
    assert refused.status_code == 401 and "token was refused" in refused.json()["error"]
    # A proxy's own bearer token is not a Hugging Face token: the caller stays anonymous.
    proxied = http_chat(space, "behind a proxy", headers={"authorization": "Bearer sso.jwt.x"})
    assert proxied.status_code == 200 and "event: complete" in proxied.text
    assert not any("whoami" in r["path"] and "sso" in str(r) for r in op.requests)


def test_checking_a_token_holds_up_no_one_else(op, space):
    """A token the server has not seen is checked with the Hub; a slow Hub must not stall
    the server for everyone else meanwhile (the check once ran on the event loop)."""
    token = op.issue_token(sub="u-erin", preferred_username="erin", name="Erin")
    api = Client(space.url, token=token, verbose=False)
    op.whoami_seconds = 3.0
    try:
        job = api.submit("erin's first words", "", "", api_name="/chat")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            r["path"] == "/api/whoami-v2" and token in r["headers"].get("authorization", "")
            for r in list(op.requests)
        ):
            time.sleep(0.02)  # until the server is waiting for the Hub's answer
        asked = time.monotonic()
        assert httpx.get(space.url + "healthz", timeout=10).status_code == 200
        waited = time.monotonic() - asked
        assert job.result()[1], "Erin's answer comes once her token is checked"
    finally:
        op.whoami_seconds = 0.0
    assert waited < 1.0, f"the server answered no one for {waited:.1f} s"
    assert titles(api) == {"erin's first words"}


def test_a_junk_token_is_checked_with_the_hub_once_in_a_while(op, space):
    """Refusals are remembered: junk tokens sent again and again (20 a second, say) once
    cost a call to the Hub each."""
    junk = "hf_junk_token_sent_again_and_again"
    for _ in range(5):
        refused = http_chat(space, "let me in", headers={"x-hf-authorization": f"Bearer {junk}"})
        assert refused.status_code == 401 and "token was refused" in refused.json()["error"]
    assert op.whoami_calls(junk) == 1


def test_a_token_sent_to_the_chat_page_holds_up_no_one(op, space):
    """The chat page's own message event takes the token of an `x-hf-authorization` header
    too: it was checked with the Hub on the event loop, so while the Hub took its time no
    one else's request was answered. Here the Hub answers only once /healthz has."""
    junk = "hf_junk_token_sent_to_the_page"
    events = PageEvents(space.url)
    submit = events.event("message", "submit")
    outcome: list[dict] = []

    def send() -> None:
        headers = {"x-hf-authorization": f"Bearer {junk}"}
        with httpx.Client(timeout=120, headers=headers) as caller:
            outcome.append(events.run(caller, submit, "junk-token-page", {0: "hello"}))

    with op.whoami_held():
        sender = threading.Thread(target=send)
        sender.start()
        while not op.whoami_calls(junk):  # the server now waits for the Hub
            time.sleep(0.02)
        health = httpx.get(space.url + "healthz", timeout=20)
        assert health.status_code == 200, "someone else is answered while the Hub is silent"
    sender.join(120)
    assert not outcome[0]["success"] and "token was refused" in json.dumps(outcome[0])


def test_sharing_follows_the_account_after_sign_in(op, space, tmp_path):
    """A visitor sharing with model authors signs in to an account that does not share: the
    account's setting wins, and what the visitor had shared is not handed over."""
    owner = Browser(space)
    owner.login(op, "u-frank", "frank")
    share = "share_with_model_authors"
    owner.client().predict({share: False}, api_name="/update_settings")

    visiting = Browser(space)
    visiting.client().predict({share: True}, api_name="/update_settings")
    chat(visiting.client(), "frank-shared-while-visiting-612")
    visiting.login(op, "u-frank", "frank")
    assert visiting.client().predict(api_name="/settings")[share] is False
    assert titles(visiting.client()) == {"frank-shared-while-visiting-612"}

    out = tmp_path / "shared"
    env = {"PARLOR_DATA_DIR": str(space.data_dir), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "chat.sharing", "--out", str(out)], cwd=ROOT, env=env, check=True
    )
    handed = "".join(p.read_text() for p in out.glob("*.jsonl"))
    assert "frank-shared-while-visiting-612" not in handed


def test_bad_token_is_an_error_not_anonymous(space):
    api = Client(space.url, token="hf_not_a_real_token", verbose=False)
    with pytest.raises(Exception, match="token was refused"):
        api.predict(api_name="/conversations")


def test_space_without_volume_warns_about_ephemeral_history(space):
    assert "ephemeral disk" in space.log()
    page = Browser(space).http.get(space.url + "config").text
    assert "wiped when it restarts" in page


def test_declining_sign_in_comes_back_to_the_chat_as_before(op, space):
    """Refusing at Hugging Face sends the person back with ?error=...: Gradio alone answers
    that with a 500 page (tests/test_oidc_provider.py)."""
    me = Browser(space)
    chat(me.client(), "Before signing in")
    op.fail_next("access_denied")
    page = me.http.get(space.url + "login/huggingface?_target_url=/", follow_redirects=True)
    assert page.status_code == 200, page.text[:300]
    assert (page.url.path, page.url.params.get("signin")) == ("/", "declined")
    assert titles(me.client()) == {"Before signing in"}  # still the same anonymous person


def test_declined_sign_in_is_said_on_the_page(op, space, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    try:
        page = context.new_page()
        op.fail_next("access_denied")
        page.goto(space.url + "login/huggingface?_target_url=/")
        expect(page.locator("#message textarea")).to_be_visible(timeout=30_000)
        expect(page.locator(".toast-body").first).to_contain_text("You did not sign in")
        expect(page.locator("#login")).to_be_visible()
    finally:
        context.close()


def test_sign_in_opens_a_tab_of_its_own_inside_a_frame(space, browser):
    """In a frame the login cookie is blocked, so the button gives way to a new-tab link."""
    from playwright.sync_api import expect

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(space.url)
        expect(page.locator("#message textarea")).to_be_visible(timeout=30_000)
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-in-tab")).to_be_hidden()

        page.set_content(f'<iframe id="parlor" src="{space.url}" width="1100" height="700">')
        frame = page.frame_locator("#parlor")
        expect(frame.locator("#message textarea")).to_be_visible(timeout=30_000)
        link = frame.locator("#login-in-tab a")
        expect(link).to_be_visible(timeout=10_000)
        expect(frame.locator("#login")).to_be_hidden()
        assert link.get_attribute("href").endswith("login/huggingface")
        assert link.get_attribute("target") == "_blank"
        page.screenshot(path="tests/artifacts/test_sign_in_in_a_frame.png")
    finally:
        context.close()
