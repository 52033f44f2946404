"""Who is asking: a signed anonymous session cookie (later, a Hugging Face login) → `Owner`.

`SessionCookieMiddleware` gives each new visitor a random id in the signed, HttpOnly cookie
`parlor-session`. When a request arrives without a valid cookie (first visit, tampered,
truncated), the middleware makes a fresh id, sets the cookie on the response *and* writes it
into the request's own Cookie header, so that the Gradio event handling this very request
sees the same identity as every later request. A bad cookie never maps to someone else.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Literal

from itsdangerous import BadSignature, Signer

COOKIE_NAME = "parlor-session"
COOKIE_STATE = "parlor_cookie_came_back"  # request.state: did the browser send a valid cookie?
_SALT = "parlor-session-v1"


class IdentityError(Exception):
    """The request carries no identity we can trust."""


@dataclass(frozen=True)
class Owner:
    """The person a request acts for. `id` keys every stored row."""

    id: str
    kind: Literal["anonymous", "hf"]
    name: str = ""


class CookieSigner:
    """Signs and checks anonymous session ids (128+ random bits each)."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 characters")
        self._signer = Signer(secret, salt=_SALT)

    @staticmethod
    def new_session_id() -> str:
        return secrets.token_hex(20)  # 160 bits

    def sign(self, session_id: str) -> str:
        return self._signer.sign(session_id).decode()

    def unsign(self, value: str | None) -> str | None:
        """The session id in a cookie value, or None when it is missing or not ours."""
        if not value:
            return None
        try:
            session_id = self._signer.unsign(value).decode()
        except BadSignature:
            return None
        return session_id if len(session_id) == 40 else None


@dataclass(frozen=True)
class CookiePolicy:
    """Attributes of the session cookie.

    `secure="auto"` marks the cookie `Secure` (with `SameSite=None; Partitioned`, what a
    cross-site iframe needs) on HTTPS requests, and `SameSite=Lax` without `Secure` on plain
    HTTP, where Python HTTP clients would otherwise never send it back.
    """

    samesite: str = "none"
    secure: Literal["auto", "always", "never"] = "auto"
    partitioned: bool = True
    max_age: int = 400 * 24 * 3600

    def header(self, value: str, *, https: bool) -> str:
        secure = self.secure == "always" or (self.secure == "auto" and https)
        samesite = self.samesite if secure or self.samesite != "none" else "lax"
        parts = [f"{COOKIE_NAME}={value}", "Path=/", f"Max-Age={self.max_age}", "HttpOnly"]
        parts.append(f"SameSite={samesite.capitalize()}")
        if secure:
            parts.append("Secure")
            # Starlette's set_cookie(partitioned=True) needs Python 3.14: write it ourselves.
            if self.partitioned:
                parts.append("Partitioned")
        return "; ".join(parts)


def read_cookie(cookie_header: str, name: str = COOKIE_NAME) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


class SessionCookieMiddleware:
    """Pure ASGI middleware: every HTTP request leaves with a valid session cookie."""

    def __init__(
        self,
        app,
        *,
        signer: CookieSigner,
        policy: CookiePolicy,
        is_retired: Callable[[str], bool] = lambda owner_id: False,
    ) -> None:
        self.app = app
        self.signer = signer
        self.policy = policy
        self.is_retired = is_retired  # ids moved to an account at login reach nothing

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
        cookie_header = "; ".join(
            v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"
        )
        session_id = self.signer.unsign(read_cookie(cookie_header))
        valid = session_id is not None and not self.is_retired(anonymous_id(session_id))
        scope.setdefault("state", {})[COOKIE_STATE] = valid
        if valid:
            await self.app(scope, receive, send)
            return
        signed = self.signer.sign(self.signer.new_session_id())
        others = [
            c
            for c in cookie_header.split(";")
            if c.strip() and not c.strip().startswith(f"{COOKIE_NAME}=")
        ]
        cookie = "; ".join([*(c.strip() for c in others), f"{COOKIE_NAME}={signed}"])
        scope = {**scope, "headers": [*headers, (b"cookie", cookie.encode("latin-1"))]}
        forwarded = dict(scope["headers"]).get(b"x-forwarded-proto", b"").decode()
        https = scope.get("scheme") == "https" or forwarded.split(",")[0].strip() == "https"
        set_cookie = self.policy.header(signed, https=https).encode("latin-1")

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def anonymous_id(session_id: str) -> str:
    return f"anon:{session_id}"


def owner_from_cookies(cookies: dict[str, str], signer: CookieSigner) -> Owner:
    """The anonymous owner named by a request's (already checked) session cookie."""
    session_id = signer.unsign(cookies.get(COOKIE_NAME))
    if session_id is None:
        raise IdentityError("no valid session cookie")
    return Owner(id=anonymous_id(session_id), kind="anonymous")
