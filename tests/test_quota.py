"""Signed-in people's own quota: where the Space asks for the `inference-api` scope, their
requests to Inference Providers go out with their own Hugging Face token.

End to end: the app signs people in through Gradio's real OAuth flow against the local
provider (tests/oidc_provider.py), and its `hf` endpoint is pointed at the scripted server
(`PARLOR_INFERENCE_PROVIDERS_URL`), which records which token came. Anonymous people may not
use the server's HF_TOKEN here (`PARLOR_ANONYMOUS_USES_SERVER_TOKEN=false`).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apprunner import RunningApp
from browser import ARTIFACTS, Person
from gradio_client import Client
from oidc_provider import OIDCProvider
from scripted_server import ScriptedServer
from test_browser_settings import open_settings
from test_endpoints import MESSAGES, model
from test_login import Browser, no_machine_token  # noqa: F401 (an autouse fixture)

from chat.catalog import Model
from chat.endpoints import ChatError, Endpoints
from chat.identity import Owner
from chat.quota import HFAccess

SERVER_TOKEN = "hf_server_token_of_the_quota_suite"
TEAM_KEY = "team-key-of-the-quota-suite"
HF_MODEL = "openai/gpt-oss-120b"
SIGN_IN = "sign in to use this model"
CATALOG = """
models:
  - id: team-model
    name: Team model
    endpoints: [{{type: openai, base_url: "{base_url}", model: served, token_env: TEAM_KEY}}]
  - id: openai/gpt-oss-120b
    name: gpt-oss 120B
    endpoints: [{{type: hf}}]
"""


@pytest.fixture(scope="module")
def op() -> Iterator[OIDCProvider]:
    with OIDCProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def space(op, scripted, tmp_path_factory) -> Iterator[RunningApp]:
    root: Path = tmp_path_factory.mktemp("quota")
    models = root / "models.yaml"
    models.write_text(CATALOG.format(base_url=scripted.base_url))
    env = {
        **op.space_env("openid profile inference-api"),  # hf_oauth_scopes: [inference-api]
        "HF_TOKEN": SERVER_TOKEN,
        "TEAM_KEY": TEAM_KEY,
        "PARLOR_ANONYMOUS_USES_SERVER_TOKEN": "false",
        "PARLOR_INFERENCE_PROVIDERS_URL": scripted.tgi_url,
    }
    running = RunningApp(root / "data", models=models, env=env).wait_ready()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def fresh(scripted: ScriptedServer) -> None:
    """Each test starts with the scripted server's default stream and an empty log."""
    scripted.clear()
    scripted.script("tokens")


def ask(c: Client, text: str, model_id: str) -> str:
    return c.predict(text, "", model_id, api_name="/chat")[1]


def tokens_sent(scripted: ScriptedServer) -> list[str]:
    """The Authorization header of each request the scripted server received."""
    return [r["headers"].get("authorization", "") for r in scripted.requests]


def test_anonymous_people_are_told_to_sign_in_for_inference_providers_models(space, scripted):
    anonymous = Browser(space)
    models = {m["id"]: m for m in anonymous.client().predict(api_name="/models")}
    assert models[HF_MODEL]["available"] is False
    assert models[HF_MODEL]["unavailable_reason"] == SIGN_IN
    assert models["team-model"]["available"] is True
    page = anonymous.http.get(space.url + "models").text
    assert f"Unavailable: {SIGN_IN}." in page
    with pytest.raises(Exception, match=SIGN_IN):
        ask(anonymous.client(), "Hello?", HF_MODEL)
    assert scripted.requests == [], "nothing went out with the server's token"


def test_a_signed_in_persons_inference_goes_out_with_their_own_token(op, space, scripted):
    browser = Browser(space)
    browser.login(op, "u-dana", "dana")
    [own] = op.access_tokens("u-dana")
    models = {m["id"]: m for m in browser.client().predict(api_name="/models")}
    assert models[HF_MODEL]["available"] is True and models[HF_MODEL]["unavailable_reason"] == ""
    assert "Unavailable" not in browser.http.get(space.url + "models").text

    scripted.script("tokens", tokens=["On", " my", " quota."])
    assert ask(browser.client(), "Who pays?", HF_MODEL) == "On my quota."
    assert tokens_sent(scripted) == [f"Bearer {own}"]
    assert scripted.requests[0]["body"]["model"] == HF_MODEL

    # Any other server gets its own key, never the person's token.
    scripted.clear()
    assert ask(browser.client(), "And here?", "team-model") == "On my quota."
    assert tokens_sent(scripted) == [f"Bearer {TEAM_KEY}"]


def test_the_persons_token_is_never_stored_logged_or_shown(op, space, scripted):
    browser = Browser(space)
    browser.login(op, "u-erin", "erin")
    [own] = op.access_tokens("u-erin")
    ask(browser.client(), "Keep my token to yourself.", HF_MODEL)
    assert tokens_sent(scripted) == [f"Bearer {own}"]
    files = [p for p in space.data_dir.rglob("*") if p.is_file()]
    assert files, "the conversation was stored"
    assert not [p for p in files if own.encode() in p.read_bytes()], "stored on disk"
    assert own not in space.log()
    # What the page and its API hand the browser (the sign-in cookie Gradio keeps is sealed:
    # see test_the_browser_keeps_the_sign_in_sealed).
    seen = [browser.http.get(space.url + path).text for path in ("", "config", "models")]
    seen.append(str(browser.client().predict(api_name="/conversations")))
    assert not [text for text in seen if own in text]
    assert "your own Hugging Face account" in browser.http.get(space.url + "privacy").text


def test_an_api_callers_own_token_pays_for_their_inference(op, space, scripted):
    token = op.issue_token(sub="u-frank", preferred_username="frank")
    api = Client(space.url, token=token, verbose=False)
    assert ask(api, "Billed to me?", HF_MODEL) == "Hello, world!"
    assert tokens_sent(scripted) == [f"Bearer {token}"]
    # The plain HTTP door too.
    scripted.clear()
    reply = httpx.post(
        space.url + "api/chat",
        json={"message": "Over HTTP", "model_id": HF_MODEL},
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert reply.status_code == 200 and "Hello" in reply.text
    assert tokens_sent(scripted) == [f"Bearer {token}"]


# -- which token, decided by the endpoints (chat/quota.py), against the scripted server ------

ANONYMOUS = Owner(id="anon:someone", kind="anonymous")
MEMBER = Owner(id="hf:u-1", kind="hf", name="member")  # signed in without the scope
OWN = "hf_oauth_own_token_of_a_person"
PAYING = Owner(id="hf:u-2", kind="hf", name="payer", hf_token=OWN)


def endpoints_for(scripted: ScriptedServer, **access) -> Endpoints:
    hf = HFAccess(server_token=SERVER_TOKEN, router_url=scripted.tgi_url, **access)
    return Endpoints(environ={"HF_TOKEN": SERVER_TOKEN, "TEAM_KEY": TEAM_KEY}, hf=hf)


def outcome(endpoints: Endpoints, owner: Owner | None, m: Model | None = None) -> str:
    """The answer to one request for `owner`, or the message of the error that stopped it."""

    async def run() -> str:
        pieces = []
        try:
            async for piece in endpoints.stream(m or model({"type": "hf"}), MESSAGES, owner):
                pieces.append(piece)
        except ChatError as e:
            return str(e)
        return "".join(pieces)

    return asyncio.run(run())


def test_anonymous_people_use_the_servers_token_unless_the_deployer_says_no(scripted):
    allowed = endpoints_for(scripted, own_tokens=True, sign_in=True)
    for owner in (ANONYMOUS, MEMBER, PAYING):
        assert outcome(allowed, owner) == "Hello, world!"
    assert tokens_sent(scripted) == [f"Bearer {t}" for t in (SERVER_TOKEN, SERVER_TOKEN, OWN)]

    scripted.clear()
    members = endpoints_for(scripted, own_tokens=True, sign_in=True, anonymous_server_token=False)
    assert SIGN_IN in outcome(members, ANONYMOUS)
    assert members.why_unavailable(model({"type": "hf"}), ANONYMOUS) == SIGN_IN
    assert outcome(members, MEMBER) == outcome(members, PAYING) == "Hello, world!"
    assert tokens_sent(scripted) == [f"Bearer {SERVER_TOKEN}", f"Bearer {OWN}"]


def test_a_persons_token_pays_only_where_the_space_asks_for_it(scripted):
    """Without the inference-api scope, everyone's requests carry the server's token."""
    endpoints = endpoints_for(scripted, own_tokens=False, sign_in=True)
    assert outcome(endpoints, PAYING) == "Hello, world!"
    assert tokens_sent(scripted) == [f"Bearer {SERVER_TOKEN}"]


def test_a_person_without_a_server_token_signs_in_to_pay_for_themselves(scripted):
    hf = HFAccess(own_tokens=True, sign_in=True, router_url=scripted.tgi_url)
    endpoints = Endpoints(environ={}, hf=hf)
    m = model({"type": "hf", "provider": "novita"})
    assert endpoints.why_unavailable(m, ANONYMOUS) == SIGN_IN
    assert "HF_TOKEN" in endpoints.why_unavailable(m, MEMBER)
    assert outcome(endpoints, PAYING, m) == "Hello, world!"
    [request] = scripted.requests
    assert request["headers"]["authorization"] == f"Bearer {OWN}"
    assert request["body"]["model"] == "test-model:novita"  # the router's provider pinning


def test_no_other_server_ever_gets_a_persons_token(scripted):
    endpoints = endpoints_for(scripted, own_tokens=True, sign_in=True)
    keyed = {"type": "openai", "base_url": scripted.base_url, "token_env": "TEAM_KEY"}
    for endpoint in (keyed, {"type": "openai", "base_url": scripted.base_url}):
        assert outcome(endpoints, PAYING, model(endpoint)) == "Hello, world!"
    assert tokens_sent(scripted) == [f"Bearer {TEAM_KEY}", ""], "never the person's token"


@pytest.mark.parametrize(
    ("status", "said"), [(402, "no Inference Providers credits left"), (401, "refused your token")]
)
def test_hugging_face_turning_down_a_persons_own_token_says_so(scripted, status, said):
    scripted.script("status", status=status)
    endpoints = endpoints_for(scripted, own_tokens=True, sign_in=True)
    assert said in outcome(endpoints, PAYING)
    assert said not in outcome(endpoints, MEMBER), "the server's own token: the deployer's"


# -- in Chromium -------------------------------------------------------------------------------


# What Gradio's own page asks for on a Space (its fonts, the Space's card): never Parlor's.
GRADIO_ON_A_SPACE = ("https://fonts.googleapis.com/", "https://huggingface.co/api/spaces/")


def test_the_model_menu_says_sign_in_then_answers_on_their_quota(op, space, scripted, browser):
    from playwright.sync_api import expect

    me = Person(browser, space.url, name="gina")
    try:
        me.open()
        me.page.locator("#model input").click()
        unavailable = f"gpt-oss 120B (unavailable: {SIGN_IN})"
        expect(me.page.locator("#model").get_by_role("option", name=unavailable)).to_be_visible()
        me.page.screenshot(path=str(ARTIFACTS / "test_quota-anonymous-menu.png"))
        me.page.keyboard.press("Escape")
        assert default_models(me) == ["Team model"]  # what may be made one's default

        op.login_as("u-gina", "gina")
        me.url = space.url + "login/huggingface?_target_url=/"
        me.open()  # signed in, back on the chat
        [own] = op.access_tokens("u-gina")
        assert default_models(me) == ["Team model", "gpt-oss 120B"]
        me.page.locator("#model input").click()
        me.page.locator("#model").get_by_role("option", name="gpt-oss 120B", exact=True).click()
        me.settle()
        scripted.script("tokens", tokens=["Paid", " by", " gina."])
        assert me.chat("Who pays for this one?") == "Paid by gina."
        assert tokens_sent(scripted) == [f"Bearer {own}"]
        assert own not in me.page.content()
        assert own not in me.page.evaluate("() => document.cookie + JSON.stringify(localStorage)")
    finally:
        me.offsite = [u for u in me.offsite if not u.startswith(GRADIO_ON_A_SPACE)]
        problems = me.close(ARTIFACTS / "test_quota-signed-in.png")
    assert not problems, problems


def default_models(me: Person) -> list[str]:
    """The models the Settings panel offers as one's default."""
    open_settings(me)
    me.doc.locator("#default-model input").click()
    options = me.doc.locator("#default-model").get_by_role("option")
    names = [t.replace("✓", "").strip() for t in options.all_inner_texts()]
    me.page.keyboard.press("Escape")
    return names


def test_the_browser_keeps_the_sign_in_sealed(op, space):
    """Gradio keeps the sign-in (the token included) in its `session` cookie: the browser
    holds it encrypted, and a cookie that is not the server's own signs no one in."""
    browser = Browser(space)
    browser.login(op, "u-hana", "hana")
    [own] = op.access_tokens("u-hana")
    sealed = browser.cookies()["session"]
    assert own not in sealed and own not in readable(sealed)
    models = {m["id"]: m for m in browser.client().predict(api_name="/models")}
    assert models[HF_MODEL]["available"] is True, "still signed in, through the sealed cookie"

    forged = {**browser.cookies(), "session": sealed[:-8] + "AAAAAAAA"}
    client = Client(space.url, verbose=False, httpx_kwargs={"cookies": forged})
    models = {m["id"]: m for m in client.predict(api_name="/models")}
    assert models[HF_MODEL]["unavailable_reason"] == SIGN_IN  # signed out, not an error

    browser.logout()
    assert "session" not in browser.cookies() or own not in readable(browser.cookies()["session"])
    models = {m["id"]: m for m in browser.client().predict(api_name="/models")}
    assert models[HF_MODEL]["unavailable_reason"] == SIGN_IN


def readable(cookie: str) -> str:
    """What base64 hides in each part of a cookie value (Starlette's: base64 JSON.time.sig)."""
    out = []
    for part in cookie.split("."):
        try:
            out.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1"))
        except ValueError:
            continue
    return "".join(out)
