"""*Markdown* beside the open conversation: downloads it as a Markdown file.

The service writes the Markdown (`ChatService.export_markdown`); the browser makes the file
from it (a Blob), so no copy is ever written on the server, not even in Gradio's cache: a
temporary chat's text must never reach the disk.
"""

from __future__ import annotations

import json
import re

import gradio as gr

from .doors import OwnerOf
from .service import ChatService, ServiceError

PRIVATE = {"api_visibility": "private"}

# The page saves {name, text} as a file, from memory.
SAVE_JS = """
(payload) => {
  if (!payload) return;
  const {name, text} = JSON.parse(payload);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "text/markdown;charset=utf-8"}));
  link.download = name;
  document.body.appendChild(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
}
"""


def file_name(title: str) -> str:
    """A file name from a conversation's title: its words, safe on any system."""
    stem = re.sub(r"[^\w-]+", "-", title, flags=re.UNICODE).strip("-")[:60]
    return f"{stem or 'conversation'}.md"


def build_markdown_button() -> tuple[gr.Button, gr.Textbox]:
    """The button (shown under a conversation with messages: see CSS), and where the page
    receives the file's name and text."""
    button = gr.Button("⬇ Markdown", size="sm", elem_id="export-markdown")
    return button, gr.Textbox(visible="hidden", elem_id="markdown-payload")


# Hidden while the chat is empty, by the page itself: showing and hiding it from the server
# would add an event to every new conversation.
CSS = "body:has(#chatbot .placeholder-content) #export-markdown { display: none; }\n"


def wire_markdown(
    service: ChatService,
    owner_of: OwnerOf,
    conversation_id: gr.State,
    page: gr.Textbox,
    button: gr.Button,
    payload: gr.Textbox,
) -> None:
    """A click downloads the open conversation."""

    def export(cid: str, token: str, request: gr.Request) -> str:
        owner = owner_of(request, page=token)
        if not cid:  # a first answer still being saved
            gr.Warning("Nothing to download yet: wait until the answer is written.")
            return ""
        try:
            conv = service.conversation(owner, cid)
            text = service.export_markdown(owner, cid)
        except ServiceError as e:
            gr.Warning(str(e))
            return ""
        return json.dumps({"name": file_name(conv["title"]), "text": text})

    button.click(export, inputs=[conversation_id, page], outputs=payload, **PRIVATE).then(
        None, inputs=payload, js=SAVE_JS, **PRIVATE
    )
