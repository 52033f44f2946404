"""Usage limits (chat/limits.py): messages per person and per client address, per minute and
per day; through the service on a real store, and through the real app's `/chat` (Gradio
client) and `/api/chat` (429 with Retry-After), with `X-Forwarded-For` believed only behind
a declared proxy."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from scripted_server import ScriptedServer, echo_catalog
from test_service import _service

from chat.identity import Owner
from chat.limits import DAY, MINUTE, LimitReached, Limits, address_key
from chat.service import Limited

ME = Owner(id="anon:" + "1" * 40, kind="anonymous", address=address_key("10.0.0.1"))


async def _ask(service, owner: Owner, text: str, cid: str = "") -> str:
    """Send a message and read its answer to the end; the conversation's id."""
    async for update in service.send(owner, text, cid):
        if update.done:
            return update.conversation_id
    raise AssertionError("the answer never ended")


async def _refusal(updates) -> Limited:
    with pytest.raises(Limited) as refused:
        async for _ in updates:
            pass
    return refused.value


def test_a_person_past_the_limit_is_told_which_and_when_it_resets(tmp_path):
    """Two messages a minute: the third (a retry counts too) is refused, saying which limit
    and when it resets, and nothing of it is stored; someone else still sends."""
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path, limits=Limits(per_minute=2))

        async def scenario() -> tuple[Limited, Limited, str]:
            cid = await _ask(service, ME, "one")
            await _ask(service, ME, "two", cid)
            retried = await _refusal(service.retry(ME, cid))
            sent = await _refusal(service.send(ME, "three", cid))
            other = Owner(id="anon:" + "2" * 40, kind="anonymous")
            return retried, sent, await _ask(service, other, "hello")

        retried, sent, _ = asyncio.run(scenario())
        for refusal in (retried, sent):
            assert "2 messages per minute for you" in str(refusal)
            assert "resets in" in str(refusal) and 0 < refusal.retry_after <= MINUTE
        [conv] = service.conversations(ME)
        stored = service.conversation(ME, conv["id"])["all_messages"]
        assert [m["content"] for m in stored if m["role"] == "user"] == ["one", "two"]


def test_anonymous_people_on_one_address_share_its_limit_and_accounts_do_not(tmp_path):
    """Three messages a day per address: a fourth anonymous person on it is refused, one on
    another address is not, and a signed-in person is counted as a person only."""
    with ScriptedServer() as srv:
        srv.script("echo")
        limits = Limits(per_address_day=3)
        service = _service(srv, tmp_path, limits=limits)
        shared = address_key("10.0.0.7")

        def visitor(n: int, address: str = shared) -> Owner:
            return Owner(id=f"anon:{n:040d}", kind="anonymous", address=address)

        async def scenario() -> Limited:
            for n in range(3):
                await _ask(service, visitor(n), "hi")
            await _ask(service, visitor(9, address_key("10.0.0.8")), "hi")
            await _ask(service, Owner(id="hf:42", kind="hf", address=shared), "hi")
            return await _refusal(service.send(visitor(3), "hi"))

        refusal = asyncio.run(scenario())
        assert "3 messages per day for this network address" in str(refusal)
        assert MINUTE < refusal.retry_after <= DAY


def test_windows_reset_memory_stays_bounded_and_counts_hold_across_threads():
    """A window resets when its time is up; at most `kept` keys are tracked (the oldest
    windows go first); 16 threads admitting at once admit exactly the limit."""
    now = [1_000_000.0]
    limits = Limits(per_minute=2, kept=100, clock=lambda: now[0])
    limits.admit("a")
    limits.admit("a")
    with pytest.raises(LimitReached) as refused:
        limits.admit("a")
    assert refused.value.retry_after == MINUTE
    now[0] += MINUTE
    limits.admit("a")  # a new window

    for n in range(1_000):
        limits.admit(f"visitor {n}")
    assert limits.tracked() == 100

    crowded = Limits(per_day=500)
    admitted = []

    def sender() -> None:
        for _ in range(100):
            try:
                crowded.admit("one person")
                admitted.append(1)
            except LimitReached:
                pass

    threads = [threading.Thread(target=sender) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 500


def test_an_address_is_kept_only_as_a_keyed_hash():
    key = address_key("203.0.113.9")
    assert "203.0.113.9" not in key and key == address_key("203.0.113.9")
    assert key != address_key("203.0.113.10")


# -- the real app ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[RunningApp, RunningApp]]:
    """Two apps: one behind a declared proxy, one reached directly (both on 127.0.0.1)."""
    root = tmp_path_factory.mktemp("limits")
    limits = {"PARLOR_LIMIT_PER_MINUTE": "2", "PARLOR_LIMIT_PER_ADDRESS_PER_DAY": "3"}
    with ScriptedServer() as srv:
        srv.script("echo")
        catalog = echo_catalog(root, srv)
        proxied = RunningApp(
            root / "proxied", models=catalog, env={**limits, "PARLOR_TRUSTED_PROXY": "true"}
        )
        direct = RunningApp(root / "direct", models=catalog, env=limits)
        try:
            yield proxied.wait_ready(), direct.wait_ready()
        finally:
            proxied.stop()
            direct.stop()


def _post(app: RunningApp, person: httpx.Client, text: str) -> httpx.Response:
    response = person.post(app.url + "api/chat", json={"message": text})
    response.read()
    return response


def test_chat_over_the_gradio_client_says_which_limit(served):
    proxied, _ = served
    me = Client(proxied.url, verbose=False, headers={"X-Forwarded-For": "198.51.100.1"})
    me.predict("one", api_name="/chat")
    me.predict("two", api_name="/chat")
    with pytest.raises(Exception) as refused:
        me.predict("three", api_name="/chat")
    assert "2 messages per minute for you" in str(refused.value)
    assert "resets in" in str(refused.value)


def test_api_chat_answers_429_with_retry_after(served):
    proxied, _ = served
    with httpx.Client(timeout=30, headers={"X-Forwarded-For": "198.51.100.2"}) as me:
        assert _post(proxied, me, "one").status_code == 200
        assert _post(proxied, me, "two").status_code == 200
        refused = _post(proxied, me, "three")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "2 messages per minute for you" in refused.json()["error"]


def test_behind_a_declared_proxy_the_forwarded_address_counts(served):
    """Three messages a day per address: a client's own X-Forwarded-For entries come first
    and change nothing; the proxy's last word is the address."""
    proxied, _ = served
    codes = []
    for n in range(4):  # four people on one address, each with a forged first entry
        forged = {"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.3"}
        with httpx.Client(timeout=30, headers=forged) as person:
            codes.append(_post(proxied, person, "hello"))
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert "per day for this network address" in codes[-1].json()["error"]
    with httpx.Client(timeout=30, headers={"X-Forwarded-For": "198.51.100.4"}) as elsewhere:
        assert _post(proxied, elsewhere, "hello").status_code == 200


def test_without_a_declared_proxy_x_forwarded_for_is_ignored(served):
    """Reached directly, every client is its connection's address: naming another address
    in X-Forwarded-For escapes nothing."""
    _, direct = served
    codes = []
    for n in range(4):
        with httpx.Client(timeout=30, headers={"X-Forwarded-For": f"192.0.2.{n}"}) as person:
            codes.append(_post(direct, person, "hello").status_code)
    assert codes == [200, 200, 200, 429]


def test_the_privacy_page_says_addresses_are_counted_hashed(served):
    proxied, _ = served
    page = httpx.get(proxied.url + "privacy").text
    assert "per network address, in memory only" in page


def test_with_no_limit_set_nothing_is_counted():
    limits = Limits()
    assert not limits.active
    for _ in range(1_000):
        limits.admit("someone", "somewhere")
    assert limits.tracked() == 0
