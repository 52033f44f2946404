"""What the UI and the API share: who is asking, and how an answer is shown."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from .accounts import TokenResolver, account_from_session, bearer
from .identity import CookieSigner, IdentityError, Owner, owner_from_cookies

OwnerOf = Callable[..., Owner]  # (request, oauth_token=None) -> Owner


def _session(request: gr.Request) -> dict:
    raw = getattr(request, "request", None)  # the Starlette request, when there is one
    try:
        return dict(raw.session) if raw is not None and "session" in raw.scope else {}
    except (AttributeError, AssertionError):
        return {}


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
    then the anonymous session cookie.
    """

    def anonymous(request: gr.Request) -> Owner:
        return owner_from_cookies(dict(request.cookies or {}), signer)

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
    """An answer as shown in the chat: the text, then why it is incomplete, if it is."""
    if not notice:
        return text
    mark = "⚠️" if failed else "■"
    return f"{text}\n\n*{mark} {notice}*" if text else f"*{mark} {notice}*"
