"""What the UI and the API share: who is asking, and how an answer is shown."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
from collections.abc import Callable

import gradio as gr

from .accounts import TokenResolver, account_from_session, bearer
from .identity import (
    COOKIE_STATE,
    CookieSigner,
    IdentityError,
    Owner,
    PageSigner,
    owner_from_cookies,
)
from .limits import address_key, client_address
from .quota import token_of_session, with_token

OwnerOf = Callable[..., Owner]  # (request, oauth_token=None, page="") -> Owner


async def owner_off_loop(owner_of: OwnerOf, *args: object, **kwargs: object) -> Owner:
    """`owner_of(*args, **kwargs)` from a worker thread: a token not seen lately is checked
    with the Hub, a network call that would stop every answer streaming on the event loop,
    and a sign-in may move a visitor's files."""
    return await asyncio.to_thread(owner_of, *args, **kwargs)


def _session(request: gr.Request) -> dict:
    raw = getattr(request, "request", None)  # the Starlette request, when there is one
    try:
        return dict(raw.session) if raw is not None and "session" in raw.scope else {}
    except (AttributeError, AssertionError):
        return {}


def _cookie_came_back(request: gr.Request) -> bool:
    """Whether the browser sent a valid session cookie (see SessionCookieMiddleware)."""
    raw = getattr(request, "request", None)
    state = raw.scope.get("state", {}) if raw is not None else {}
    return bool(state.get(COOKIE_STATE, True))


_RESOLVED = "_parlor_owner"  # where a gr.Request keeps the owner it was resolved to


def owner_resolver(
    signer: CookieSigner,
    pages: PageSigner | None = None,
    *,
    login: bool = False,
    tokens: TokenResolver | None = None,
    adopt: Callable[[Owner, Owner], object] = lambda account, visitor: None,
    is_retired: Callable[[str], bool] = lambda owner_id: False,
    own_tokens: bool = False,
    address_of: Callable[[gr.Request], str] | None = None,
) -> OwnerOf:
    """`owner_of(request, oauth_token=None, page="")`: the owner behind a Gradio request, or
    a clear error. A request is resolved once: later calls with it give the same owner.

    In order: the Hugging Face account logged in through OAuth (the visitor's anonymous data
    moves to it on first sight), the account of a Hugging Face token sent by an API caller,
    then the anonymous session cookie or, where the browser sent none back (a frame where
    third-party cookies are blocked), the person named by the page's token (`page`, issued
    by the server to that page only: see `PageSigner`). Gradio's session hash names no one:
    the browser makes it up and sends it in URLs, so anyone may know it.

    With `own_tokens`, an account carries the person's own HF token (the session's, where
    they granted `inference-api`, or the one an API caller sent): see chat/quota.py.

    With `address_of` (the address limits are on), an anonymous owner carries where the
    request came from.
    """

    def anonymous(request: gr.Request, page: str) -> Owner:
        owner = owner_from_cookies(dict(request.cookies or {}), signer)
        if _cookie_came_back(request) or pages is None:
            return owner
        pinned = pages.owner(page)
        return pinned if pinned is not None and not is_retired(pinned.id) else owner

    def resolve(request: gr.Request, oauth_token: gr.OAuthToken | None, page: str) -> Owner:
        if login:
            session = _session(request)
            account = account_from_session(session)
            if account is not None:
                try:
                    adopt(account, anonymous(request, page))
                except IdentityError:
                    pass
                own = token_of_session(session.get("oauth_info")) if own_tokens else ""
                return with_token(account, own)
        token = None
        if tokens is not None:
            token = (oauth_token.token if oauth_token else None) or bearer(
                dict(request.headers or {})
            )
        if token:
            account = tokens.resolve(token)
            return with_token(account, token) if own_tokens else account
        return anonymous(request, page)

    def owner_of(
        request: gr.Request, oauth_token: gr.OAuthToken | None = None, page: str = ""
    ) -> Owner:
        known = vars(request).get(_RESOLVED)
        if known is not None:
            return known
        try:
            owner = resolve(request, oauth_token, page)
        except IdentityError as e:
            message = (
                str(e)
                if "token" in str(e)
                else ("Your session could not be identified. Reload the page (cookies must be on).")
            )
            raise gr.Error(message, print_exception=False) from None
        if address_of is not None and owner.kind == "anonymous":
            owner = dataclasses.replace(owner, address=address_of(request))
        vars(request)[_RESOLVED] = owner
        return owner

    return owner_of


def address_reader(*, trusted_proxy: bool) -> Callable[[gr.Request], str]:
    """`address_of(request)`: the request's client address as the limits key it (hashed)."""

    def address_of(request: gr.Request) -> str:
        client = getattr(request, "client", None)
        peer = str(getattr(client, "host", "") or "")
        headers = getattr(request, "headers", None) or {}
        return address_key(client_address(headers, peer, trusted_proxy=trusted_proxy))

    return address_of


def render_answer(text: str, notice: str = "", *, failed: bool = False) -> str:
    """A message as shown in the chat (answers and the person's own): the text with its
    remote images as links, then why it is incomplete, if it is."""
    text = inert_images(text)
    if not notice:
        return text
    mark = "⚠️" if failed else "■"
    return f"{text}\n\n*{mark} {notice}*" if text else f"*{mark} {notice}*"


# A model steered by a prompt injection can write an image whose address carries the
# conversation: the browser would fetch it as soon as it is shown. Only images that carry
# their own bytes stay images; any other becomes a link, followed only if clicked. (The
# Content-Security-Policy, chat/security.py, blocks whatever markup this does not catch.)
_HINT = re.compile(r"!\[|<img", re.IGNORECASE)
_OWN_BYTES = re.compile(r"\s*(data|blob):", re.IGNORECASE)
# Code is shown as written: fenced blocks (an unclosed one runs to the end, as while an
# answer streams) and inline code spans (found without a regex: one that looks for each
# run's closing run scanned the rest of the text per run, seconds for a hostile 16 kB).
_FENCE = re.compile(
    r"^ {0,3}(`{3,}|~{3,})[^\n]*(?:\n.*?^ {0,3}\1[`~]*[ \t]*$|.*\Z)", re.MULTILINE | re.DOTALL
)
_TICKS = re.compile(r"`+")
_LABEL = r"(?:\\.|[^\[\]\\]|\[(?:\\.|[^\[\]\\])*\])*"  # link text, one level of brackets
_MD_IMAGE = re.compile(
    rf"(?<!\\)!\[(?P<alt>{_LABEL})\]"
    r"(?:\(\s*(?P<url><[^>\n]*>|(?:[^\s()\\]|\\.|\([^\s()]*\))*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"  # an optional title
    r"|\[(?P<ref>[^\]]*)\]|)"  # or a reference: [ref], [], or nothing (shortcut)
)
_HTML_IMAGE = re.compile(r"<img\b(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>?", re.IGNORECASE)
_ATTR = re.compile(r"([^\s=/>\"']+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")


def inert_images(text: str) -> str:
    """`text` (Markdown with HTML) with every image that would be fetched from elsewhere
    made a link to it; code is left as written."""
    if not _HINT.search(text):  # the common case, every frame of an answer: one scan
        return text
    out, start = [], 0
    for begin, end in _code(text):
        out += [_inert(text[start:begin]), text[begin:end]]
        start = end
    out.append(_inert(text[start:]))
    return "".join(out)


def _code(text: str) -> list[tuple[int, int]]:
    """Where code is in `text`, in order: fenced blocks, and inline spans between them."""
    spans, start = [], 0
    for block in _FENCE.finditer(text):
        spans += _code_spans(text, start, block.start())
        spans.append(block.span())
        start = block.end()
    return spans + _code_spans(text, start, len(text))


def _code_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Inline code in text[start:end]: a run of backticks up to the next run as long (one
    without such a run is plain text). Linear: each run's closer is found in one pass."""
    runs = [m.span() for m in _TICKS.finditer(text, start, end)]
    closer: list[int | None] = [None] * len(runs)
    seen: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        length = runs[i][1] - runs[i][0]
        closer[i], seen[length] = seen.get(length), i
    spans, i = [], 0
    while i < len(runs):
        j = closer[i]
        if j is None:
            i += 1
        else:
            spans.append((runs[i][0], runs[j][1]))
            i = j + 1
    return spans


def _inert(prose: str) -> str:
    return _HTML_IMAGE.sub(_html_link, _MD_IMAGE.sub(_markdown_link, prose))


def _markdown_link(m: re.Match) -> str:
    alt, url = m.group("alt"), m.group("url")
    if url is None:  # a reference image: the same reference as a link
        ref = m.group("ref")
        return f"[{ref}][{ref}]" if ref and not alt else m.group()[1:]
    if _OWN_BYTES.match(url.strip("<>")):
        return m.group()
    return f"[{alt or _escape_markdown(url.strip('<>'))}]({url})"


def _html_link(m: re.Match) -> str:
    attrs = {
        name.lower(): html.unescape(value.strip("\"'")) if value else ""
        for name, value in _ATTR.findall(m.group("attrs"))
    }
    srcset = [c.split()[0] for c in attrs.get("srcset", "").split(",") if c.split()]
    remote = [u for u in (attrs.get("src", ""), *srcset) if u and not _OWN_BYTES.match(u)]
    if attrs.get("src") and not remote:
        return m.group()
    url = next(iter(remote), "")
    label = html.escape(attrs.get("alt") or url)
    return f'<a href="{html.escape(url)}">{label}</a>' if url else label


def _escape_markdown(url: str) -> str:
    return re.sub(r"([\\\[\]*_`<>])", r"\\\1", url)
