"""What the UI and the API share: who is asking, and how an answer is shown."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from .identity import CookieSigner, IdentityError, Owner, owner_from_cookies

OwnerOf = Callable[[gr.Request], Owner]


def owner_resolver(signer: CookieSigner) -> OwnerOf:
    """`owner_of(request)`: the owner behind a Gradio request, or a clear error."""

    def owner_of(request: gr.Request) -> Owner:
        try:
            return owner_from_cookies(dict(request.cookies or {}), signer)
        except IdentityError:
            raise gr.Error(
                "Your session could not be identified. Reload the page (cookies must be on)."
            ) from None

    return owner_of


def render_answer(text: str, notice: str = "", *, failed: bool = False) -> str:
    """An answer as shown in the chat: the text, then why it is incomplete, if it is."""
    if not notice:
        return text
    mark = "⚠️" if failed else "⏹"
    return f"{text}\n\n*{mark} {notice}*" if text else f"*{mark} {notice}*"
