"""Hugging Face accounts: who is logged in (Gradio's OAuth session) or calling with a token.

An account is keyed by its stable id (the OpenID `sub`, the Hub's user id), never by the
username, which its owner may change.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from starlette.responses import RedirectResponse

from .identity import IdentityError, Owner
from .locks import KeyedLocks

log = logging.getLogger("parlor.accounts")

TOKEN_HEADER = "x-hf-authorization"  # what gradio_client's Client(url, token=...) sends
REFUSED = (
    "This Hugging Face token was refused. Check it, or call without a token "
    "to use an anonymous session."
)
UNCHECKED = "Could not check your Hugging Face token; try again."


def account_id(sub: str) -> str:
    return f"hf:{sub}"


def account_from_session(
    session: Mapping[str, Any] | None, *, now: float | None = None
) -> Owner | None:
    """The logged-in account in Gradio's OAuth session, or None (none, or expired)."""
    info = (session or {}).get("oauth_info") or {}
    userinfo = info.get("userinfo") or {}
    sub = userinfo.get("sub")
    if not sub:
        return None
    expires_at = info.get("expires_at")
    if expires_at is not None and float(expires_at) < (now or time.time()):
        return None
    name = userinfo.get("preferred_username") or userinfo.get("name") or ""
    return Owner(id=account_id(str(sub)), kind="hf", name=str(name))


class TokenResolver:
    """Turns a Hugging Face token into its account, asking the Hub's whoami once per window.

    Refusals are remembered too, for `refused_ttl` seconds: junk tokens sent again and again
    would otherwise each cost a call to the Hub. Tokens are kept only as hashes, at most
    `kept` of them (the least recently checked go first), and one token is checked by one
    call at a time, however many requests bring it at once."""

    def __init__(
        self, endpoint: str, *, ttl: float = 300.0, refused_ttl: float = 60.0, kept: int = 10_000
    ) -> None:
        self._api = HfApi(endpoint=endpoint.rstrip("/"))
        self._ttl = ttl
        self._refused_ttl = refused_ttl
        self._kept = kept
        self._cache: OrderedDict[str, tuple[float, Owner | str]] = OrderedDict()
        self._lock = threading.Lock()
        self._checking = KeyedLocks()

    def resolve(self, token: str) -> Owner:
        """The token's account; `IdentityError` when the Hub refuses the token."""
        key = hashlib.sha256(token.encode()).hexdigest()  # never keep raw tokens around
        hit = self._cached(key)
        if hit is None:
            with self._checking.hold(key):  # the others wait for this one's answer
                hit = self._cached(key) or self._check(key, token)
        if isinstance(hit, str):
            raise IdentityError(hit)
        return hit

    def _cached(self, key: str) -> Owner | str | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or hit[0] <= time.monotonic():
                return None
            self._cache.move_to_end(key)
            return hit[1]

    def _remember(self, key: str, outcome: Owner | str, ttl: float) -> None:
        with self._lock:
            self._cache[key] = (time.monotonic() + ttl, outcome)
            self._cache.move_to_end(key)
            while len(self._cache) > self._kept:
                self._cache.popitem(last=False)

    def _check(self, key: str, token: str) -> Owner | str:
        """Ask the Hub: the account, or why the token was refused (a network failure or a
        Hub error is raised, not remembered: the next request asks again)."""
        try:
            who = self._api.whoami(token=token)
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if status in (401, 403):
                self._remember(key, REFUSED, self._refused_ttl)
                return REFUSED
            log.warning("could not check a Hugging Face token (HTTP %s)", status)
            raise IdentityError(UNCHECKED) from None
        except OSError:
            log.warning("could not reach the Hub to check a token")
            raise IdentityError(UNCHECKED) from None
        owner = Owner(id=account_id(str(who["id"])), kind="hf", name=str(who.get("name", "")))
        self._remember(key, owner, self._ttl)
        return owner


def bearer(headers: Mapping[str, str]) -> str | None:
    """The Hugging Face token a caller sent: in gradio_client's header (the one that passes
    the Spaces proxy), else in `Authorization`, where plain HTTP clients put it, if it is
    one ("hf_..."): a proxy's own bearer token there is not ours to send to the Hub."""
    for name in (TOKEN_HEADER, "authorization"):
        scheme, _, token = (headers.get(name) or "").partition(" ")
        token = token.strip()
        if (
            scheme.lower() == "bearer"
            and token
            and (name == TOKEN_HEADER or token.startswith("hf_"))
        ):
            return token
    return None


DECLINED = "declined"  # ?signin=declined: the page says sign-in did not happen


class DeclinedSignIn:
    """Pure ASGI middleware: a sign-in the person declined comes back to the chat.

    Hugging Face sends the person back with `?error=...` when they refuse (or the provider
    fails); Gradio's callback (`gradio/oauth.py`, `oauth_redirect_callback`) catches only
    authlib's MismatchingStateError, so the OAuthError that follows was a 500 page. Here
    the callback goes back to the page instead, which says sign-in did not happen; the
    person stays who they were (their anonymous history is untouched)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].endswith("/login/callback")
            and "error" in parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ):
            log.info("sign-in declined or failed at the provider")
            back = RedirectResponse(f"../?signin={DECLINED}", status_code=302)
            await back(scope, receive, send)
            return
        await self.app(scope, receive, send)
