"""`/r/<id>`: a share link's read-only page, and its *Continue this conversation* button.

Plain HTML from the server, like chat/pages.py: every text escaped (markup in a message is
shown as text, so a remote image in it is never fetched), `noindex` in the page and in the
`X-Robots-Tag` header, no word of who shared it. A link never made, revoked or deleted
answers the same 404. Inside Gradio's app, so that the sign-in session is read when a
visitor continues the conversation (the cross-site check of chat/security.py applies).
"""

from __future__ import annotations

from html import escape

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .branding import PARLOR, Branding
from .doors import OwnerOf, owner_off_loop
from .pages import _page
from .service import ChatService, ServiceError

NOINDEX = {"x-robots-tag": "noindex", "cache-control": "no-store"}
ROLES = {"user": "Question", "assistant": "Answer", "system": "System"}


def share_page(share_id: str, snapshot: dict, brand: Branding = PARLOR) -> str:
    messages = "".join(
        f"<div class='msg {escape(m['role'])}'><h2>{ROLES.get(m['role'], escape(m['role']))}</h2>"
        f"<div style='white-space:pre-wrap'>{escape(m['content'] or '')}</div></div>"
        for m in snapshot["messages"]
    )
    body = (
        f"<h1>{escape(snapshot['title'])}</h1>"
        f"<p>A conversation shared from {escape(brand.name)} on "
        f"{escape(snapshot['created_at'][:10])}, "
        f"as it was then ({escape(snapshot['model'])}).</p>{messages}"
        f"<form method='post' action='/r/{escape(share_id)}/continue'>"
        f"<button class='start' id='continue-shared' type='submit'>"
        f"Continue this conversation</button></form>"
    )
    page = _page(snapshot["title"], body, brand)
    return page.replace("<head>", "<head><meta name='robots' content='noindex'>", 1)


def add_share_pages(
    app: FastAPI, service: ChatService, owner_of: OwnerOf, brand: Branding = PARLOR
) -> None:
    def missing() -> Response:
        return Response("Not found", status_code=404, headers=NOINDEX)

    @app.get("/r/{share_id}", include_in_schema=False)
    def shared(share_id: str) -> Response:
        snapshot = service.shared(share_id)
        if snapshot is None:
            return missing()
        return HTMLResponse(share_page(share_id, snapshot, brand), headers=NOINDEX)

    @app.post("/r/{share_id}/continue", include_in_schema=False)
    async def continue_shared(share_id: str, request: Request) -> Response:
        owner = await owner_off_loop(owner_of, gr.Request(request=request))
        try:
            new_id = service.continue_shared(owner, share_id)
        except ServiceError:
            return missing()
        return RedirectResponse(f"/?c={new_id}", status_code=303)
