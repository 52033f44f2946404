"""Who is asking: a signed anonymous session cookie (later, a Hugging Face login) → `Owner`.

`SessionCookieMiddleware` gives each new visitor a random id in the signed, HttpOnly cookie
`parlor-session` (`__Host-parlor-session` when it is `Secure`). When a request arrives
without a valid cookie (first visit, tampered, truncated), the middleware makes a fresh id,
sets the cookie on the response *and* writes it into the request's own Cookie header, so that
the Gradio event handling this very request sees the same identity as every later request. A
bad cookie never maps to someone else. Inside the app, the session is always the one cookie
named `parlor-session` of the request's Cookie header: the middleware rewrites it so.

A page whose browser keeps no cookie (a frame where third-party cookies are blocked) gets a
`PageSigner` token instead: a secret the server hands to that page only, which its events
send back (see `chat/doors.py`).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs

from itsdangerous import BadSignature, Signer, TimestampSigner
from starlette.requests import cookie_parser
from starlette.responses import PlainTextResponse

from .settings import MIN_SECRET_CHARS

# Gradio 6's routes that read a session's events by its hash (gradio/routes.py).
HEARTBEAT = "/gradio_api/heartbeat/"
QUEUE_DATA = "/gradio_api/queue/data"
OPEN = ""  # SessionHashes: a session hash first used without a cookie

COOKIE_NAME = "parlor-session"
# A Secure cookie's name: browsers take a `__Host-` cookie only from HTTPS, for this host
# alone and path /, so no sibling subdomain or plain-HTTP page can set or shadow it.
SECURE_COOKIE_NAME = "__Host-" + COOKIE_NAME
COOKIE_STATE = "parlor_cookie_came_back"  # request.state: did the browser send a valid cookie?
SESSION_STATE = "parlor_session"  # request.state: the signed session this request acts as
# request.state: the signed session of a cookie retired at sign-in, replaced on this request
REPLACED_STATE = "parlor_replaced_session"
_SALT = "parlor-session-v1"
_PAGE_SALT = "parlor-page-v1"  # page tokens are never valid cookies, nor the reverse


class IdentityError(Exception):
    """The request carries no identity we can trust."""


@dataclass(frozen=True)
class Owner:
    """The person a request acts for. `id` keys every stored row."""

    id: str
    kind: Literal["anonymous", "hf"]
    name: str = ""
    # Their own Hugging Face token, where it pays for their inference (chat/quota.py): held
    # in memory with the request and its answer only; never stored, logged or compared.
    hf_token: str = field(default="", repr=False, compare=False)
    # Where the request came from, as a key of chat/limits.py (a keyed hash, "" when the
    # address limits are off): not part of who the owner is.
    address: str = field(default="", compare=False, repr=False)


class CookieSigner:
    """Signs and checks anonymous session ids (128+ random bits each)."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the signing secret must be at least {MIN_SECRET_CHARS} characters")
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

    def is_secure(self, *, https: bool) -> bool:
        return self.secure == "always" or (self.secure == "auto" and https)

    def name(self, *, https: bool) -> str:
        """The cookie's name on such a request: `__Host-parlor-session` when `Secure`."""
        return SECURE_COOKIE_NAME if self.is_secure(https=https) else COOKIE_NAME

    def header(self, value: str, *, https: bool, name: str = "", max_age: int | None = None) -> str:
        """A Set-Cookie value; `name` and `max_age=0` expire another cookie of ours."""
        secure = self.is_secure(https=https)
        samesite = self.samesite if secure or self.samesite != "none" else "lax"
        age = self.max_age if max_age is None else max_age
        parts = [f"{name or self.name(https=https)}={value}", "Path=/", f"Max-Age={age}"]
        parts += ["HttpOnly", f"SameSite={samesite.capitalize()}"]
        if secure:
            parts.append("Secure")
            # Starlette's set_cookie(partitioned=True) needs Python 3.14: write it ourselves.
            if self.partitioned:
                parts.append("Partitioned")
        return "; ".join(parts)


def read_cookie(cookie_header: str, name: str = COOKIE_NAME) -> str | None:
    """A cookie's value, parsed as browsers send cookies: another app's cookie that is not
    valid RFC 2109 (`c={"a":1}`, which stops `http.cookies.SimpleCookie`) hides no other."""
    return cookie_parser(cookie_header).get(name)


def _is_https(scope, *, forwarded_proto: bool) -> bool:
    """Whether the browser reached Parlor over HTTPS: the connection's own scheme, or,
    behind a proxy the deployer declares (or a Space's), the proxy's X-Forwarded-Proto."""
    if scope.get("scheme") == "https":
        return True
    if not forwarded_proto:
        return False
    forwarded = dict(scope["headers"]).get(b"x-forwarded-proto", b"").decode("latin-1")
    return forwarded.split(",")[0].strip() == "https"


def _with_session(cookie_header: str, signed: str) -> str:
    """The Cookie header with ours, under either name, replaced by `parlor-session=signed`;
    other apps' cookies are passed on exactly as they came."""
    others = [
        c.strip()
        for c in cookie_header.split(";")
        if c.strip() and c.split("=", 1)[0].strip() not in (COOKIE_NAME, SECURE_COOKIE_NAME)
    ]
    return "; ".join([*others, f"{COOKIE_NAME}={signed}"])


class SessionCookieMiddleware:
    """Pure ASGI middleware: every HTTP request leaves with a valid session cookie."""

    def __init__(
        self,
        app,
        *,
        signer: CookieSigner,
        policy: CookiePolicy,
        is_retired: Callable[[str], bool] = lambda owner_id: False,
        forwarded_proto: bool = False,
    ) -> None:
        self.app = app
        self.signer = signer
        self.policy = policy
        self.forwarded_proto = forwarded_proto  # X-Forwarded-Proto comes from a trusted proxy
        self.is_retired = is_retired  # ids moved to an account at login reach nothing

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie_header = "; ".join(
            v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"
        )
        https = _is_https(scope, forwarded_proto=self.forwarded_proto)
        signed, set_cookies = self._known(cookie_header, https=https)
        state = scope.setdefault("state", {})
        state[COOKIE_STATE] = signed is not None
        if signed is None:
            retired = self._retired(cookie_header, https=https)
            if retired:
                state[REPLACED_STATE] = retired
            signed = self.signer.sign(self.signer.new_session_id())
            set_cookies = [self.policy.header(signed, https=https)]
        state[SESSION_STATE] = signed
        if not set_cookies and self.policy.name(https=https) == COOKIE_NAME:
            await self.app(scope, receive, send)  # the cookie is already as the app reads it
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
        cookie = _with_session(cookie_header, signed).encode("latin-1")
        scope = {**scope, "headers": [*headers, (b"cookie", cookie)]}
        added = [(b"set-cookie", c.encode("latin-1")) for c in set_cookies]

        async def send_with_cookies(message) -> None:
            if message["type"] == "http.response.start" and added:
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _known(self, cookie_header: str, *, https: bool) -> tuple[str | None, list[str]]:
        """The signed cookie of a valid, unretired session, with the cookies to set for it
        (a cookie of before the `__Host-` name is accepted once, and renamed); or None."""
        name = self.policy.name(https=https)
        signed, set_cookies = read_cookie(cookie_header, name), []
        if self.signer.unsign(signed) is None and name != COOKIE_NAME:
            signed = read_cookie(cookie_header, COOKIE_NAME)
            expired = self.policy.header("", https=https, name=COOKIE_NAME, max_age=0)
            set_cookies = [self.policy.header(signed or "", https=https), expired]
        session_id = self.signer.unsign(signed)
        if session_id is None or self.is_retired(anonymous_id(session_id)):
            return None, []
        return signed, set_cookies

    def _retired(self, cookie_header: str, *, https: bool) -> str | None:
        """The signed cookie the browser sent if its session was retired (moved to an
        account at sign-in), else None."""
        for name in {self.policy.name(https=https), COOKIE_NAME}:
            signed = read_cookie(cookie_header, name)
            session_id = self.signer.unsign(signed)
            if session_id is not None and self.is_retired(anonymous_id(session_id)):
                return signed
        return None


class SessionHashes:
    """Pure ASGI middleware, inside `SessionCookieMiddleware`: a Gradio session hash
    belongs to the browser that first used it with a valid session cookie.

    The page makes its session hash up (`Math.random`) and sends it in URLs; Gradio streams
    every event of a session to whoever asks `/queue/data?session_hash=` for it. So a hash,
    once seen with a cookie (the page's heartbeat, at load), is refused (403) on those
    routes to any other browser. A cookie retired at sign-in hands its hashes on to the
    cookie that replaced it. A hash first used without a cookie (a page whose browser
    keeps none) stays as open as Gradio makes it, so that no one can take it over later
    (see docs/deploy.md)."""

    def __init__(self, app, *, kept: int = 50_000) -> None:
        self.app = app
        self.kept = kept
        self._owners: OrderedDict[str, str] = OrderedDict()  # hash -> signed session
        # A cookie issued in place of one retired at sign-in -> the first of that line.
        self._roots: OrderedDict[str, str] = OrderedDict()

    def _remember(self, table: OrderedDict[str, str], key: str, value: str) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.kept:
            table.popitem(last=False)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        browser = self._browser(scope.get("state", {}))  # every request: it learns lines
        session_hash = _session_hash(scope)
        if session_hash and not self._allowed(session_hash, browser):
            response = PlainTextResponse("This page session is not yours.", status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _browser(self, state: dict) -> str:
        """Who the browser is: its valid cookie, or the retired cookie it still presents
        (one line: cookies issued in place of a retired one count as it), else OPEN."""
        if replaced := state.get(REPLACED_STATE):
            root = self._roots.get(replaced, replaced)
            self._remember(self._roots, state[SESSION_STATE], root)
            return root
        if state.get(COOKIE_STATE):
            return self._roots.get(state[SESSION_STATE], state[SESSION_STATE])
        return OPEN

    def _allowed(self, session_hash: str, browser: str) -> bool:
        owner = self._owners.get(session_hash)
        if owner is None:
            self._remember(self._owners, session_hash, browser)
            return True
        return owner in (OPEN, browser)


def _session_hash(scope) -> str:
    """The session hash of a request that reads a Gradio session's events, else ""."""
    path = scope.get("path", "")
    if path.startswith(HEARTBEAT):
        return path[len(HEARTBEAT) :]
    if path == QUEUE_DATA:
        return parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [""])[
            0
        ]
    return ""


def anonymous_id(session_id: str) -> str:
    return f"anon:{session_id}"


def owner_from_cookies(cookies: dict[str, str], signer: CookieSigner) -> Owner:
    """The anonymous owner named by a request's (already checked) session cookie."""
    session_id = signer.unsign(cookies.get(COOKIE_NAME))
    if session_id is None:
        raise IdentityError("no valid session cookie")
    return Owner(id=anonymous_id(session_id), kind="anonymous")


class PageSigner:
    """Tokens that name the anonymous person of one page whose browser keeps no cookie.

    The server hands a token to the page that asked for it, and nowhere else; the page sends
    it back with each event. It names a fresh id, like a new cookie, and is valid for
    `max_age` seconds: past that, the page's events come from someone new.
    """

    def __init__(self, secret: str, *, max_age: float) -> None:
        self._signer = TimestampSigner(secret, salt=_PAGE_SALT)
        self.max_age = max_age

    def issue(self) -> str:
        return self._signer.sign(CookieSigner.new_session_id()).decode()

    def owner(self, token: str | None) -> Owner | None:
        """The owner a token names, or None when it is missing, forged or too old."""
        if not token or not isinstance(token, str):
            return None
        try:
            session_id = self._signer.unsign(token, max_age=self.max_age).decode()
        except BadSignature:  # SignatureExpired included
            return None
        if len(session_id) != 40:
            return None
        return Owner(id=anonymous_id(session_id), kind="anonymous")
