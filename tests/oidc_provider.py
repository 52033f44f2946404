"""A small OpenID Connect provider on 127.0.0.1 that stands in for Hugging Face in tests.

It speaks enough of OAuth 2.0 / OpenID Connect for Gradio's real authlib flow
(`SYSTEM=spaces`, `OPENID_PROVIDER_URL=op.url`), and answers `/api/whoami-v2` like the Hub:

    with OIDCProvider() as op:
        op.login_as(sub="u-123", preferred_username="alice", name="Alice")
        ...  # the next /oauth/authorize approves at once, as alice
        token = op.issue_token(sub="u-9", preferred_username="bob", name="Bob")  # "hf_..."
        assert op.requests[-1]["path"] == "/api/whoami-v2"

Endpoints: /.well-known/openid-configuration, /oauth/authorize (auto-approves: redirects to
redirect_uri with code and state), /oauth/token (authorization_code, client_secret_basic or
client_secret_post, each code works once), /oauth/userinfo, /oauth/jwks, /api/whoami-v2.
ID tokens are RS256, signed with a key made at start, and carry the profile claims (what
Gradio's gr.OAuthProfile reads) when the scope has `profile`. `fail_next(error)` makes the
next authorization redirect back with `?error=...` instead (the person said no).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from loopback import LoopbackServer
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class User:
    """A Hub account as the provider knows it. `sub` is the stable id; the username may change."""

    sub: str
    preferred_username: str
    name: str


class _Grant(NamedTuple):
    user: User
    redirect_uri: str
    scope: str
    nonce: str | None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _back(url: str, **params: str | None) -> RedirectResponse:
    """Redirect to `url` with `params` (the None ones left out) added to its own query."""
    parts = urlsplit(url)
    added = [(k, v) for k, v in params.items() if v is not None]
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *added])
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)


def _error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


class OIDCProvider(LoopbackServer):
    """Serves the endpoints above from a background thread; `url` is the issuer (no slash)."""

    name = "OIDC provider"  # `requests`: {"method", "path", "query", "headers", "form"}

    def __init__(
        self,
        client_id: str = "parlor-test-client",
        client_secret: str = "parlor-test-secret",
        *,
        expires_in: int = 3600,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.whoami_seconds = 0.0  # how long /api/whoami-v2 takes to answer (a slow Hub)
        self._whoami_open = threading.Event()  # cleared: whoami answers no one (whoami_held)
        self._whoami_open.set()
        self._key = RSAKey.generate_key(2048, parameters={"kid": "op-1", "use": "sig"})
        self._user = User("u-123", "alice", "Alice")
        self._fail: str | None = None
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, tuple[User, str]] = {}  # access or API token → (user, scope)
        routes = [
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/oauth/authorize", self._authorize),
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/oauth/userinfo", self._userinfo, methods=["GET", "POST"]),
            Route("/oauth/jwks", self._jwks),
            Route("/api/whoami-v2", self._whoami),
        ]
        super().__init__(routes)

    def login_as(self, sub: str, preferred_username: str, name: str = "") -> User:
        """Who the next authorizations log in as (until changed)."""
        self._user = User(sub, preferred_username, name or preferred_username)
        return self._user

    @contextmanager
    def whoami_held(self) -> Iterator[None]:
        """Within the block, /api/whoami-v2 answers no one: a Hub that does not answer."""
        self._whoami_open.clear()
        try:
            yield
        finally:
            self._whoami_open.set()

    def whoami_calls(self, token: str) -> int:
        """How many times /api/whoami-v2 was asked about `token`."""
        return sum(
            r["path"] == "/api/whoami-v2" and r["headers"].get("authorization") == f"Bearer {token}"
            for r in self.requests
        )

    def fail_next(self, error: str = "access_denied") -> None:
        """The next authorization redirects back with `error` instead of a code."""
        self._fail = error

    def issue_token(self, sub: str, preferred_username: str, name: str = "") -> str:
        """A new API token ("hf_...") that `/api/whoami-v2` and `/oauth/userinfo` accept."""
        token = "hf_" + secrets.token_urlsafe(24)
        with self._lock:
            user = User(sub, preferred_username, name or preferred_username)
            self._tokens[token] = (user, "openid profile")
        return token

    def space_env(self, scopes: str = "openid profile") -> dict[str, str]:
        """The variables a Space with `hf_oauth: true` sets, with this provider for the Hub."""
        return {
            "SYSTEM": "spaces",
            "SPACE_ID": "test/parlor",
            "SPACE_HOST": "",
            "OAUTH_CLIENT_ID": self.client_id,
            "OAUTH_CLIENT_SECRET": self.client_secret,
            "OAUTH_SCOPES": scopes,
            "OPENID_PROVIDER_URL": self.url,
        }

    def access_tokens(self, sub: str) -> list[str]:
        """The access tokens handed out at sign-in (not `issue_token`'s) to the account `sub`."""
        with self._lock:
            return [
                token
                for token, (user, _scope) in self._tokens.items()
                if user.sub == sub and token.startswith("hf_oauth_")
            ]

    async def _record(self, request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        query, headers = dict(request.query_params), dict(request.headers)
        entry = {"method": request.method, "path": request.url.path, "query": query}
        self._remember({**entry, "headers": headers, "form": form})
        return form

    def _claims(self, user: User, scope: str) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": user.sub}
        if "profile" in scope.split():
            claims["name"] = user.name
            claims["preferred_username"] = user.preferred_username
            claims["profile"] = f"{self.url}/{user.preferred_username}"
            claims["picture"] = f"{self.url}/avatars/{user.preferred_username}.png"
        return claims

    def _bearer(self, request: Request) -> tuple[User, str] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            return self._tokens.get(token) if scheme.lower() == "bearer" else None

    async def _discovery(self, request: Request) -> Response:
        await self._record(request)
        ends = {"authorization": "authorize", "token": "token", "userinfo": "userinfo"}
        meta: dict[str, Any] = {f"{k}_endpoint": f"{self.url}/oauth/{v}" for k, v in ends.items()}
        meta |= {"issuer": self.url, "jwks_uri": f"{self.url}/oauth/jwks"}
        meta |= {
            "scopes_supported": ["openid", "profile", "email", "inference-api"],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "name", "preferred_username", "profile", "picture"],
        }
        return JSONResponse(meta)

    async def _jwks(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse({"keys": [{**self._key.as_dict(private=False), "alg": "RS256"}]})

    async def _authorize(self, request: Request) -> Response:
        await self._record(request)
        q = request.query_params
        redirect_uri, state = q.get("redirect_uri", ""), q.get("state")
        if q.get("client_id") != self.client_id or not redirect_uri:
            return _error("invalid_request")  # unknown client_id or no redirect_uri
        if self._fail is not None:
            error, self._fail = self._fail, None
            return _back(redirect_uri, error=error, state=state)
        if q.get("response_type") != "code":
            return _back(redirect_uri, error="unsupported_response_type", state=state)
        code = secrets.token_urlsafe(24)
        with self._lock:
            grant = _Grant(self._user, redirect_uri, q.get("scope", "openid"), q.get("nonce"))
            self._codes[code] = grant
        return _back(redirect_uri, code=code, state=state)

    async def _token(self, request: Request) -> Response:
        form = await self._record(request)
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                ident, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return _error("invalid_client", 401)
            ident, secret = unquote(ident), unquote(secret)
        else:
            ident, secret = form.get("client_id", ""), form.get("client_secret", "")
        if (ident, secret) != (self.client_id, self.client_secret):
            return _error("invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or grant.redirect_uri != form.get("redirect_uri", grant.redirect_uri):
            return _error("invalid_grant")
        access_token = "hf_oauth_" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access_token] = (grant.user, grant.scope)
        now, at_hash = int(time.time()), hashlib.sha256(access_token.encode()).digest()[:16]
        claims = self._claims(grant.user, grant.scope) | {"iss": self.url, "aud": self.client_id}
        claims |= {"iat": now, "exp": now + self.expires_in, "auth_time": now}
        claims |= {"at_hash": _b64url(at_hash)} | ({"nonce": grant.nonce} if grant.nonce else {})
        id_token = jwt.encode({"alg": "RS256", "kid": "op-1"}, claims, self._key)
        body = {"access_token": access_token, "token_type": "bearer", "id_token": id_token}
        return JSONResponse({**body, "expires_in": self.expires_in, "scope": grant.scope})

    async def _userinfo(self, request: Request) -> Response:
        await self._record(request)
        if (found := self._bearer(request)) is None:
            return _error("invalid_token", 401)
        return JSONResponse(self._claims(*found))

    async def _whoami(self, request: Request) -> Response:
        await self._record(request)
        await asyncio.sleep(self.whoami_seconds)
        while not self._whoami_open.is_set():
            await asyncio.sleep(0.01)
        if (found := self._bearer(request)) is None:
            return JSONResponse({"error": "Invalid credentials in Authorization header"}, 401)
        user, _scope = found
        avatar = f"{self.url}/avatars/{user.preferred_username}.png"
        who = {"type": "user", "id": user.sub, "name": user.preferred_username}
        return JSONResponse({**who, "fullname": user.name, "avatarUrl": avatar, "orgs": []})
