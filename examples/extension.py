"""An example extension (`PARLOR_EXTENSION=examples.extension`): a "Word count" panel in the
sidebar that counts the words of the conversation open on the page, question and answers.

It uses only what chat/extensions.py hands over: the service's public API, and the page's
token and open conversation as the inputs of its event, resolved to the person asking the
same way the page's own events are. Someone else's conversation id counts as "not found".
"""

from __future__ import annotations

import gradio as gr

from chat.extensions import PageParts
from chat.service import ServiceError


def count_words(messages: list[dict]) -> tuple[int, int]:
    """(words of the person's questions, words of the answers) of the shown messages."""
    counts = {"user": 0, "assistant": 0}
    for m in messages:
        if m["role"] in counts:
            counts[m["role"]] += len((m["content"] or "").split())
    return counts["user"], counts["assistant"]


def extend(blocks: gr.Blocks, parlor: PageParts) -> None:
    with parlor.sidebar, gr.Accordion("Word count", open=False, elem_id="word-count-panel"):
        button = gr.Button("Count words", size="sm", elem_id="word-count-button")
        shown = gr.Markdown("", elem_id="word-count")

    def words(conversation_id: str, token: str, request: gr.Request) -> str:
        if not conversation_id:
            return "No conversation is open."
        try:
            conv = parlor.service.conversation(parlor.owner(request, token), conversation_id)
        except ServiceError:
            return "This conversation is gone."
        asked, answered = count_words(conv["messages"])
        return f"**{asked + answered} words**: {asked} in your messages, {answered} in answers."

    button.click(
        words,
        inputs=[parlor.conversation_id, parlor.page],
        outputs=shown,
        api_visibility="private",
    )
