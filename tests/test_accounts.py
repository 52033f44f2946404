"""Hugging Face tokens checked with the Hub (`tests/oidc_provider.py` answers as the Hub)."""

from __future__ import annotations

import threading
import time

import pytest
from oidc_provider import OIDCProvider

from chat.accounts import TokenResolver
from chat.identity import IdentityError


@pytest.fixture(scope="module")
def op():
    with OIDCProvider() as provider:
        yield provider


def refused(resolver: TokenResolver, token: str) -> bool:
    try:
        resolver.resolve(token)
    except IdentityError as e:
        return "refused" in str(e)
    return False


def test_a_refused_token_is_asked_about_once_in_a_while(op):
    """Junk tokens sent again and again each cost a call to the Hub, and on the event loop
    a slow one stopped every stream: a refusal is remembered (for a minute by default)."""
    resolver = TokenResolver(op.url)
    junk, other = "hf_junk_" + "a" * 20, "hf_junk_" + "b" * 20
    assert all(refused(resolver, junk) for _ in range(5))
    assert refused(resolver, other)
    assert (op.whoami_calls(junk), op.whoami_calls(other)) == (1, 1)
    assert all(refused(TokenResolver(op.url, refused_ttl=0), junk) for _ in range(2))
    assert op.whoami_calls(junk) == 3, "with no time to remember, each one is asked"


def test_a_token_arriving_many_times_at_once_is_asked_about_once(op):
    resolver = TokenResolver(op.url)
    junk = "hf_junk_" + "c" * 20
    start = threading.Barrier(8)
    outcomes: list[bool] = []

    def ask() -> None:
        start.wait()
        outcomes.append(refused(resolver, junk))

    with op.whoami_held():
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        while not op.whoami_calls(junk):
            time.sleep(0.01)
        time.sleep(0.3)  # the others arrive meanwhile (they wait for the first's answer)
    for thread in threads:
        thread.join()
    assert outcomes == [True] * 8
    assert op.whoami_calls(junk) == 1


def test_the_cache_keeps_a_bounded_number_of_tokens(op):
    resolver = TokenResolver(op.url, kept=2)
    tokens = [op.issue_token(sub=f"u-kept-{i}", preferred_username=f"kept{i}") for i in range(3)]
    owners = [resolver.resolve(t) for t in tokens]
    assert [o.id for o in owners] == [f"hf:u-kept-{i}" for i in range(3)]
    assert resolver.resolve(tokens[2]) == owners[2]  # among the 2 kept
    assert resolver.resolve(tokens[0]) == owners[0]  # dropped: asked again
    assert [op.whoami_calls(t) for t in tokens] == [2, 1, 1]
