"""The chat page's Temporary chat switch, and what the page says when history is off.

A temporary conversation is kept by the service in memory only (chat/scratch.py), for this
page (its Gradio session): the page drops it when it closes (`demo.unload`), when the switch
is turned off, and when a saved conversation is opened. With PARLOR_STORE_MESSAGES=false
every conversation is one: the switch is not offered, and the banner always says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr

from .doors import OwnerOf
from .service import ChatService

PRIVATE = {"api_visibility": "private"}

TEMPORARY = (
    "**Temporary chat: not saved.** It is not in your history, your exports or search, "
    "and it is gone when you close this page or turn Temporary chat off."
)
HISTORY_OFF = (
    "**History is off on this server: this chat is not saved.** "
    "It is gone when you close or reload this page."
)
SIDEBAR_HISTORY_OFF = "*History is off on this server: conversations are not saved.*"

CSS = """
#temporary-banner p { border-left: 4px solid #6366f1; padding: .4rem .8rem;
  background: #eef2ff; color: #1e1b4b; margin: 0; }
"""


def history_off_note(service: ChatService) -> gr.Markdown:
    """The line the sidebar shows where its list would be, when history is off."""
    return gr.Markdown(
        SIDEBAR_HISTORY_OFF, elem_id="history-off", visible=not service.store_messages
    )


@dataclass
class TemporarySwitch:
    switch: gr.Checkbox
    banner: gr.Markdown


def build_temporary_switch(service: ChatService) -> TemporarySwitch:
    """The switch (where history is kept) and the banner saying the chat is not saved."""
    always = not service.store_messages
    switch = gr.Checkbox(
        value=always,
        label="Temporary chat",
        info="Not saved: gone when you close this page.",
        elem_id="temporary",
        visible=not always,
        container=False,
    )
    banner = gr.Markdown(HISTORY_OFF if always else "", elem_id="temporary-banner")
    return TemporarySwitch(switch, banner)


def wire_temporary(
    demo: gr.Blocks,
    service: ChatService,
    owner_of: OwnerOf,
    view,
    page: gr.Textbox,
    temporary: TemporarySwitch,
    fresh,
    streams: list,
) -> None:
    """Turning the switch on or off starts a new chat; off (by hand, or because a saved
    conversation was opened: ui._shown), the page's temporary chats are forgotten; closing
    the page forgets them too. `fresh(model_id)` is the page's empty new chat; `streams`
    the events that stream answers. No event runs per message: the banner follows the
    switch in the page itself."""

    def closed(request: gr.Request) -> None:
        """The page closed: its temporary chats go. Only their owner's page drops them (its
        session hash alone, which anyone may learn, is not enough)."""
        service.drop_temporary(owner_of(request), request.session_hash or "")

    demo.unload(closed)
    if not service.store_messages:  # every chat is temporary: only closing the page drops
        return

    def switched(token: str, request: gr.Request) -> dict:
        return fresh(service.default_model(owner_of(request, page=token)).id)

    def turned(on: bool, token: str, request: gr.Request) -> None:
        if not on:
            service.drop_temporary(owner_of(request, page=token), request.session_hash or "")

    temporary.switch.input(None, cancels=streams, **PRIVATE)  # first: see ui._wire_chat
    temporary.switch.input(switched, inputs=page, outputs=view.all(), **PRIVATE)
    temporary.switch.change(turned, inputs=[temporary.switch, page], **PRIVATE)
    banner = f"(on) => on ? {json.dumps(TEMPORARY)} : ''"
    temporary.switch.change(
        None, inputs=temporary.switch, outputs=temporary.banner, js=banner, **PRIVATE
    )
