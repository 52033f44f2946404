"""Thumbs up / down under each answer, with an optional comment, and how answers render
(math, code, tables). Gradio's Chatbot draws the thumbs (its `like` event); the page maps the
row liked to its message through the Layout state (chat/ui_tree.py) and stores the rating
with ChatService.feedback. A stored rating comes back as the chatbot's `feedback_value`, one
entry per answer in the order shown, so a reopened conversation shows its thumbs selected."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .service import ChatService, ServiceError

LIKE, DISLIKE = "Like", "Dislike"  # the Chatbot's own feedback options
RATINGS = {LIKE: "up", DISLIKE: "down"}
SHOWN = {v: k for k, v in RATINGS.items()}

# Math delimiters: display math as $$…$$ and \[…\], inline as \(…\) and $…$. A lone "$" (a
# price) never opens math; two prices in one paragraph can, which writing "\$" avoids.
LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "$", "right": "$", "display": False},
]


def feedback_values(messages: list[dict]) -> list[str | None]:
    """The chatbot's `feedback_value` for a shown path: one entry per answer, in order."""
    return [
        SHOWN.get((m.get("feedback") or {}).get("rating", ""))
        for m in messages
        if m["role"] == "assistant"
    ]


@dataclass
class FeedbackBox:
    """The comment box that appears after a thumb, and the answer it is about."""

    row: gr.Row
    comment: gr.Textbox
    save: gr.Button
    target: gr.State  # [message id, rating]


def build_feedback_box() -> FeedbackBox:
    with gr.Row(visible=False, elem_id="feedback-box") as row:
        comment = gr.Textbox(
            placeholder="Tell us more (optional)",
            show_label=False,
            elem_id="feedback-comment",
            scale=8,
            max_lines=4,
        )
        save = gr.Button("Send feedback", size="sm", elem_id="feedback-save", scale=1)
    return FeedbackBox(row, comment, save, gr.State([]))


def wire_feedback(service: ChatService, owner_of, view, page, box: FeedbackBox, private: dict):
    """A thumb stores its rating at once and opens the comment box; Send stores the comment."""

    def rate(cid: str, shown: dict, token: str, data: gr.LikeData, request: gr.Request):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        ids = (shown or {}).get("ids") or []
        # True / False, or the option's name; anything else: the thumb was clicked off.
        liked = {True: LIKE, False: DISLIKE}.get(data.liked, data.liked)
        rating = RATINGS.get(liked, "")
        if not cid or not isinstance(index, int) or index >= len(ids):
            return gr.skip(), gr.skip(), gr.skip()
        try:
            service.feedback(owner_of(request, page=token), cid, ids[index], rating)
        except ServiceError as e:
            gr.Warning(str(e))
            return gr.skip(), gr.skip(), gr.skip()
        return gr.update(visible=bool(rating)), "", [ids[index], rating]

    def send(cid: str, target: list, comment: str, token: str, request: gr.Request):
        if not cid or len(target) != 2:
            return gr.update(visible=False)
        try:
            service.feedback(owner_of(request, page=token), cid, target[0], target[1], comment)
        except ServiceError as e:
            gr.Warning(str(e))
            return gr.skip()
        gr.Info("Thank you for your feedback.")
        return gr.update(visible=False)

    view.chatbot.like(
        rate,
        inputs=[view.conversation_id, view.shown, page],
        outputs=[box.row, box.comment, box.target],
        **private,
    )
    for trigger in (box.save.click, box.comment.submit):
        trigger(
            send,
            inputs=[view.conversation_id, box.target, box.comment, page],
            outputs=box.row,
            **private,
        )
