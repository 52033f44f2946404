"""What the UI and the API share: who is asking, and how an answer is shown."""

from __future__ import annotations

import asyncio
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
) -> OwnerOf:
    """`owner_of(request, oauth_token=None, page="")`: the owner behind a Gradio request, or
    a clear error. A request is resolved once: later calls with it give the same owner.

    In order: the Hugging Face account logged in through OAuth (the visitor's anonymous data
    moves to it on first sight), the account of a Hugging Face token sent by an API caller,
    then the anonymous session cookie or, where the browser sent none back (a frame where
    third-party cookies are blocked), the person named by the page's token (`page`, issued
    by the server to that page only: see `PageSigner`). Gradio's session hash names no one:
    the browser makes it up and sends it in URLs, so anyone may know it.
    """

    def anonymous(request: gr.Request, page: str) -> Owner:
        owner = owner_from_cookies(dict(request.cookies or {}), signer)
        if _cookie_came_back(request) or pages is None:
            return owner
        pinned = pages.owner(page)
        return pinned if pinned is not None and not is_retired(pinned.id) else owner

    def resolve(request: gr.Request, oauth_token: gr.OAuthToken | None, page: str) -> Owner:
        if login:
            account = account_from_session(_session(request))
            if account is not None:
                try:
                    adopt(account, anonymous(request, page))
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
        vars(request)[_RESOLVED] = owner
        return owner

    return owner_of


def render_answer(text: str, notice: str = "", *, failed: bool = False) -> str:
    """An answer as shown in the chat: the text, then why it is incomplete, if it is."""
    if not notice:
        return text
    mark = "⚠️" if failed else "■"
    return f"{text}\n\n*{mark} {notice}*" if text else f"*{mark} {notice}*"
