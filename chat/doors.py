"""What the UI and the API share: who is asking, and how an answer is shown."""

from __future__ import annotations

import asyncio
import html
import re
import threading
from collections import OrderedDict
from collections.abc import Callable

import gradio as gr

from .accounts import TokenResolver, account_from_session, bearer
from .identity import COOKIE_STATE, CookieSigner, IdentityError, Owner, owner_from_cookies

OwnerOf = Callable[..., Owner]  # (request, oauth_token=None) -> Owner


async def owner_off_loop(owner_of: OwnerOf, *args: object) -> Owner:
    """`owner_of(*args)` from a worker thread: a token not seen lately is checked with the
    Hub, a network call that would stop every answer streaming on the event loop."""
    return await asyncio.to_thread(owner_of, *args)


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


class SessionPins:
    """The anonymous owner of each page whose browser keeps no cookie (a frame where
    third-party cookies are blocked): each of its events brings a new cookie, so without a
    pin every message would come from someone new, and the second one of a conversation
    would find it missing. Pinned to Gradio's session of the page, as Gradio keeps the
    page's `gr.State`s, for as long as the page is open (the newest `kept` sessions)."""

    def __init__(self, kept: int = 10_000) -> None:
        self.kept = kept
        self._owners: OrderedDict[str, Owner] = OrderedDict()
        self._guard = threading.Lock()

    def owner(self, session_hash: str, fresh: Owner) -> Owner:
        """The session's pinned owner; `fresh` (and pinned) on its first event."""
        with self._guard:
            owner = self._owners.setdefault(session_hash, fresh)
            self._owners.move_to_end(session_hash)
            while len(self._owners) > self.kept:
                self._owners.popitem(last=False)
            return owner


def owner_resolver(
    signer: CookieSigner,
    *,
    login: bool = False,
    tokens: TokenResolver | None = None,
    adopt: Callable[[Owner, Owner], object] = lambda account, visitor: None,
) -> OwnerOf:
    """`owner_of(request)`: the owner behind a Gradio request, or a clear error.

    In order: the Hugging Face account logged in through OAuth (the visitor's anonymous data
    moves to it on first sight), the account of a Hugging Face token sent by an API caller,
    then the anonymous session cookie (or, where the browser keeps none, the owner pinned
    to the page's session).
    """

    pins = SessionPins()

    def anonymous(request: gr.Request) -> Owner:
        owner = owner_from_cookies(dict(request.cookies or {}), signer)
        session = getattr(request, "session_hash", None)
        if _cookie_came_back(request) or not session:
            return owner
        return pins.owner(session, owner)

    def owner_of(request: gr.Request, oauth_token: gr.OAuthToken | None = None) -> Owner:
        try:
            if login:
                account = account_from_session(_session(request))
                if account is not None:
                    try:
                        adopt(account, anonymous(request))
                    except IdentityError:
                        pass
                    return account
            token = None
            if tokens is not None:
                token = (oauth_token.token if oauth_token else None) or bearer(
                    dict(request.headers or {})
                )
            if token:
                return tokens.resolve(token)
            return anonymous(request)
        except IdentityError as e:
            message = (
                str(e)
                if "token" in str(e)
                else ("Your session could not be identified. Reload the page (cookies must be on).")
            )
            raise gr.Error(message, print_exception=False) from None

    return owner_of


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
