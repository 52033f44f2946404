"""The chat page: a sidebar of conversations, a model selector, the chat and its buttons.

Handlers only translate between components and `ChatService`; none is part of the public
API (`api_visibility="private"`): the client API lives in `api.py`.
"""

from __future__ import annotations

import gradio as gr

from .doors import OwnerOf, render_answer
from .service import ChatService, ServiceError

PRIVATE = {"api_visibility": "private"}

CSS = """
#conversations label { width: 100%; }
#conversations .wrap { flex-direction: column; gap: 2px; }
#notice:empty { display: none; }
footer { display: none !important; }
"""


def _chat_messages(conversation: dict) -> list[dict]:
    return [
        {
            "role": m["role"],
            "content": render_answer(
                m["content"],
                m.get("notice") or "",
                failed=bool(m.get("notice")) and m.get("notice") != "Stopped.",
            ),
        }
        for m in conversation["messages"]
        if m["role"] in ("user", "assistant")
    ]


def _model_choices(service: ChatService) -> list[tuple[str, str]]:
    return [
        (m["name"] if m["available"] else f"{m['name']} (unavailable)", m["id"])
        for m in service.models()
    ]


def build_ui(service: ChatService, owner_of: OwnerOf) -> gr.Blocks:
    """The Blocks of the chat page (the API endpoints are added to it by `api.py`)."""
    default = service.catalog.default
    examples = [{"display_text": e.title, "text": e.prompt} for e in default.prompt_examples]

    with gr.Blocks(title="Parlor", fill_height=True) as demo:
        conversation_id = gr.State("")

        with gr.Sidebar(elem_id="sidebar", open=True):
            gr.Markdown("## Parlor")
            new_chat = gr.Button("＋ New chat", variant="primary", elem_id="new-chat")
            conversations = gr.Radio(
                choices=[], label="Conversations", elem_id="conversations", container=False
            )

        with gr.Column(scale=1):
            model = gr.Dropdown(
                choices=_model_choices(service),
                value=default.id,
                label="Model",
                elem_id="model",
                interactive=True,
            )
            notice = gr.Markdown("", elem_id="notice")
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                buttons=["copy"],
                layout="panel",
                scale=1,
                examples=examples or None,
                placeholder="**Ask anything.** Your conversations are private to you.",
                show_label=False,
            )
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Type a message…",
                    show_label=False,
                    elem_id="message",
                    scale=8,
                    lines=1,
                    max_lines=10,
                    autofocus=True,
                )
                send = gr.Button("Send", variant="primary", elem_id="send", scale=1)
                stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, visible=False)
            with gr.Row():
                delete = gr.Button(
                    "Delete this conversation", size="sm", elem_id="delete", visible=False
                )
            with gr.Row(visible=False, elem_id="confirm-delete") as confirm:
                gr.Markdown("**Delete this conversation for good?** This cannot be undone.")
                confirm_yes = gr.Button(
                    "Delete", variant="stop", size="sm", elem_id="confirm-delete-yes"
                )
                confirm_no = gr.Button("Cancel", size="sm", elem_id="confirm-delete-no")

        def listing(request: gr.Request, selected: str | None = None) -> gr.Radio:
            rows = service.conversations(owner_of(request))
            return gr.Radio(choices=[(c["title"], c["id"]) for c in rows], value=selected or None)

        def on_load(request: gr.Request):
            return listing(request)

        def start_new():
            return (
                "",
                [],
                gr.Dropdown(value=default.id, interactive=True),
                "",
                gr.Radio(value=None),
                gr.Button(visible=False),
                gr.Row(visible=False),
            )

        def open_conversation(cid: str | None, request: gr.Request):
            if not cid:
                return start_new()
            try:
                conv = service.conversation(owner_of(request), cid)
            except ServiceError as e:
                gr.Warning(str(e))
                return start_new()
            return (
                cid,
                _chat_messages(conv),
                gr.Dropdown(value=conv["model"], interactive=False),
                service.retirement_notice(conv),
                gr.Radio(),
                gr.Button(visible=True),
                gr.Row(visible=False),
            )

        async def respond(text: str, cid: str, model_id: str, history: list, request: gr.Request):
            owner = owner_of(request)
            try:
                service.check_message(text)
            except ServiceError as e:
                gr.Warning(str(e))  # the text stays in the box: nothing is lost
                yield (gr.skip(),) * 8
                return
            history = [*history, {"role": "user", "content": text.strip()}]
            shown = [*history, {"role": "assistant", "content": ""}]
            busy = (gr.Button(visible=False), gr.Button(visible=True))
            try:
                first = True
                async for u in service.send(owner, text, cid, model_id):
                    shown[-1] = {
                        "role": "assistant",
                        "content": render_answer(u.text, u.notice, failed=u.failed),
                    }
                    if first or u.done:
                        first = False
                        yield (
                            shown,
                            u.conversation_id,
                            "",
                            listing(request, u.conversation_id),
                            *(
                                (gr.Button(visible=True), gr.Button(visible=False))
                                if u.done
                                else busy
                            ),
                            gr.Dropdown(interactive=False),
                            gr.Button(visible=True),
                        )
                    else:
                        yield (shown, *(gr.skip(),) * 7)
            except ServiceError as e:
                gr.Warning(str(e))
                yield (
                    *(gr.skip(),) * 4,
                    gr.Button(visible=True),
                    gr.Button(visible=False),
                    gr.skip(),
                    gr.skip(),
                )

        def request_stop(cid: str, request: gr.Request) -> None:
            if cid:
                service.stop(owner_of(request), cid)

        def delete_current(cid: str, request: gr.Request):
            if cid:
                service.delete_conversation(owner_of(request), cid)
            fresh = start_new()
            return (*fresh[:4], listing(request), *fresh[5:])

        demo.load(on_load, outputs=conversations, **PRIVATE)
        view = [conversation_id, chatbot, model, notice, conversations, delete, confirm]
        new_chat.click(start_new, outputs=view, **PRIVATE)
        conversations.input(open_conversation, inputs=conversations, outputs=view, **PRIVATE)
        chat_outputs = [chatbot, conversation_id, message, conversations, send, stop, model, delete]
        chat_inputs = [message, conversation_id, model, chatbot]
        for trigger in (message.submit, send.click):
            trigger(
                respond, inputs=chat_inputs, outputs=chat_outputs, concurrency_limit=None, **PRIVATE
            )

        def pick_example(event: gr.SelectData) -> str:
            return event.value["text"]

        chatbot.example_select(pick_example, outputs=message, **PRIVATE).then(
            respond, inputs=chat_inputs, outputs=chat_outputs, concurrency_limit=None, **PRIVATE
        )
        stop.click(request_stop, inputs=conversation_id, **PRIVATE)
        delete.click(lambda: gr.Row(visible=True), outputs=confirm, **PRIVATE)
        confirm_no.click(lambda: gr.Row(visible=False), outputs=confirm, **PRIVATE)
        confirm_yes.click(delete_current, inputs=conversation_id, outputs=view, **PRIVATE)
    return demo
