"""The page's share links (issue 19): a *Share* button beside "Delete this conversation"
that makes a link and shows it, copyable; the person's links in the "Your data" panel, each
revocable. The links themselves: chat/shares.py and chat/share_pages.py."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .doors import OwnerOf
from .service import ChatService, ServiceError
from .ui_answers import PRIVATE

# The service answers with a path: the page makes it a link of this very site.
ABSOLUTE_JS = "(u) => (u && u.startsWith('/') ? window.location.origin + u : u)"


@dataclass
class ShareControls:
    button: gr.Button
    link: gr.Textbox


@dataclass
class ShareList:
    panel: gr.Accordion | None
    links: gr.Dropdown
    revoke: gr.Button


def build_share_controls() -> ShareControls:
    """The *Share* button (in the row of the conversation's buttons) and its link."""
    button = gr.Button("Share", size="sm", elem_id="share-conversation")
    link = gr.Textbox(
        label="Read-only link to this conversation as it is now",
        visible=False,
        buttons=["copy"],
        elem_id="share-url",
    )
    return ShareControls(button, link)


def build_share_list(panel: gr.Accordion | None = None) -> ShareList:
    """The person's links with *Revoke* (inside the "Your data" panel)."""
    links = gr.Dropdown(label="Your share links", choices=[], elem_id="share-links")
    revoke = gr.Button("Revoke this link", size="sm", elem_id="revoke-share")
    return ShareList(panel, links, revoke)


def wire_shares(
    service: ChatService,
    owner_of: OwnerOf,
    page: gr.Textbox,
    conversation_id: gr.State,
    controls: ShareControls,
    listed: ShareList,
) -> None:
    def choices(owner) -> dict:
        rows = service.shares(owner)
        return gr.update(
            choices=[
                (f"{r['title']} · {r['url']} · {r['created_at'][:16]}", r["id"]) for r in rows
            ],
            value=None,
        )

    def share(cid: str, token: str, request: gr.Request):
        owner = owner_of(request, page=token)
        if not cid:
            gr.Warning("Start a conversation first: there is nothing to share yet.")
            return gr.skip(), gr.skip()
        try:
            link = service.share(owner, cid)
        except ServiceError as e:
            gr.Warning(str(e))
            return gr.skip(), gr.skip()
        return gr.update(value=link["url"], visible=True), choices(owner)

    def revoke(share_id: str | None, token: str, request: gr.Request):
        owner = owner_of(request, page=token)
        if share_id and service.revoke_share(owner, share_id):
            gr.Info("Link revoked: it no longer opens.")
        return choices(owner)

    def listing(token: str, request: gr.Request):
        return choices(owner_of(request, page=token))

    made = controls.button.click(
        share, inputs=[conversation_id, page], outputs=[controls.link, listed.links], **PRIVATE
    )
    made.then(None, js=ABSOLUTE_JS, inputs=controls.link, outputs=controls.link, **PRIVATE)
    listed.revoke.click(revoke, inputs=[listed.links, page], outputs=listed.links, **PRIVATE)
    if listed.panel is not None:
        listed.panel.expand(listing, inputs=page, outputs=listed.links, **PRIVATE)
