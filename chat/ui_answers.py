"""The chat page's answers: one event per answer streams it into the chatbot, whether it is
sent, an edited question's, written again, continued, or followed on opening a conversation
where it is being written. The answer itself is a task of the server's (chat/answers.py):
these events only follow it, and the page may cancel them (see ui.py `_wire_chat`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import gradio as gr

from .doors import OwnerOf, owner_off_loop, render_answer
from .identity import Owner
from .service import ChatService, ChatUpdate, ServiceError
from .ui_tree import Layout, answer_rows, kept, layout

if TYPE_CHECKING:
    from .ui import ChatView

log = logging.getLogger("parlor.ui")
PRIVATE = {"api_visibility": "private"}
STREAMING = {"concurrency_limit": None, **PRIVATE}
FAULT = "Something went wrong while answering. Please try again."
Listing = Callable[[gr.Request, str], Awaitable[dict]]  # the sidebar, this one selected


def _displayed(messages: list[dict]) -> list[dict]:
    """The chat as sent to the page: a message just typed is shown as stored ones are (the
    others come back from the page as it showed them)."""
    return [
        {**m, "content": render_answer(m["content"])} if isinstance(m["content"], str) else m
        for m in messages
    ]


def buttons(view: ChatView, conv: dict) -> dict:
    """The buttons under a stored conversation: Stop while an answer is being written,
    else Send, Retry, and Continue under an answer that ended early."""
    writing, messages = conv["writing"], conv["messages"]
    leaf = messages[-1] if messages else {}
    return {
        view.send: gr.update(visible=not writing),
        view.stop: gr.update(visible=writing),
        view.retry: gr.update(visible=bool(messages) and not writing),
        view.cont: gr.update(visible=bool(leaf.get("continuable")) and not writing),
    }


def wire_answers(
    service: ChatService, owner_of: OwnerOf, view: ChatView, page: gr.Textbox, listing: Listing
) -> list:
    """The events that stream an answer to the page (returned, for `cancels`); `listing`
    gives the sidebar.

    One queued event per message, from the click to the end of the answer: it turns the
    page busy with its first frame and back with its last. Its frames carry the chat
    already in the chatbot's wire format (postprocess=False) and leave every other output
    as gr.skip() (cheap: gradio_patches.cheap_skips). Each event Gradio runs costs ~8 ms
    of server CPU around the handler; four per message (box, answer, listing, buttons)
    were most of what setting up a message cost when 200 people send at once."""
    outputs = [
        view.chatbot,
        view.conversation_id,
        view.message,
        view.conversations,
        view.selected,
        view.more,
        view.titling,
        view.model,
        view.send,
        view.stop,
        view.retry,
        view.cont,
        view.delete,
        view.shown,
        view.branches,
    ]
    rest = [gr.skip() for _ in outputs[1:]]

    def moves_up(cid: str, request: gr.Request) -> bool:
        """Whether an answer in `cid` changes the sidebar's order (a new one always does)."""
        if not cid or service.is_temporary(owner_of(request), cid):  # never listed
            return False
        newest = service.conversations(owner_of(request), limit=1)
        return not newest or newest[0]["id"] != cid

    def shown_answer(u: ChatUpdate) -> list[dict]:
        """The answer so far (its thinking, then the answer) in the chatbot's wire format."""
        rows = answer_rows(u.text, u.reasoning, u.notice, failed=u.failed, writing=not u.done)
        return view.chatbot.postprocess(rows).model_dump()

    async def settled(owner: Owner, cid: str, shown: list, restore: bool) -> dict:
        """The page once an answer has ended, from the conversation as stored (read once per
        answer): which message each row is, the switchers (a new answer or question may have
        siblings), Retry and Continue. The chat is drawn again only when it differs from the
        stored path: a refused edit, or a path changed elsewhere meanwhile."""
        try:
            conv = await asyncio.to_thread(service.conversation, owner, cid)
        except ServiceError:  # deleted meanwhile
            return {}
        drawn = layout(conv["messages"], writing=conv["leaf_id"] if conv["writing"] else "")
        out = {
            view.shown: drawn.state(),
            view.branches: drawn.switchers(),
            **buttons(view, conv),
        }
        if restore or len(drawn.chat) != len(shown):
            out[view.chatbot] = view.chatbot.postprocess(drawn.chat).model_dump()
        return out

    async def answer(
        request: gr.Request,
        owner: Owner,
        updates: AsyncIterator[ChatUpdate],
        shown: list,
        cid: str,
        text: str,
        staying: Layout,
    ) -> AsyncIterator[list | dict]:
        """The frames of one answer: the page turns busy with the first, the sidebar lists
        a new conversation once it is on disk, the last turns the page back. `shown` is
        the chat above the answer, `staying` the ids and switchers of the rows of it that
        were on the page already. `text` (the message sent, or "") goes back to the box if
        it could not be stored.

        The last frame lists a new conversation again. Gradio's client makes each frame's
        values by editing the previous frame's in place as it arrives, and the page shows
        the frames later, one after the other (`@gradio/client`, `apply_diff_stream`): a
        frame that arrives before the page has shown the one listing the conversation
        edits that listing away (a quick answer ends a fraction of a millisecond after it
        is stored). Nothing follows the last frame. When the stored frame is the answer's
        end, only the last frame lists it."""
        moved = bool(cid) and await asyncio.to_thread(moves_up, cid, request)
        head = view.chatbot.postprocess(_displayed(shown)).model_dump()  # once per answer
        # Only what changes: Gradio builds a new component for every update. A conversation
        # that exists already has its model locked and its Retry and Delete shown.
        busy = {
            view.send: gr.update(visible=False),
            view.stop: gr.update(visible=True),
            view.cont: gr.update(visible=False),
            view.shown: staying.state(),
            view.branches: staying.switchers(),
        }
        if not cid:
            busy[view.model] = gr.update(interactive=False)
        current, stored, cleared, chat = cid, False, False, head
        try:
            async for u in updates:
                chat = [*head, *shown_answer(u)]
                if cleared and (stored or not u.stored):
                    yield [chat, *rest]
                    continue
                frame: dict = {view.chatbot: chat}
                if not cleared:
                    cleared = True
                    frame |= busy | ({view.message: ""} if text else {})
                if u.stored and not stored:
                    stored, current = True, u.conversation_id
                    frame[view.conversation_id] = current
                    listed = not service.is_temporary(owner, current)
                    if not cid and not u.done and listed:  # it enters the sidebar
                        frame |= await listing(request, current)
                yield frame
        except ServiceError as e:
            gr.Warning(str(e))
        except Exception as e:  # a fault of Parlor's: the page must still turn back
            log.error("an answer failed: %r", type(e).__name__)  # never what it said
            gr.Warning(FAULT)
        last: dict = {view.send: gr.update(visible=True), view.stop: gr.update(visible=False)}
        if not cid and current:  # the new conversation exists now
            last |= {view.retry: gr.update(visible=True), view.delete: gr.update(visible=True)}
        elif not cid and cleared:  # it was never stored: its model can still be changed
            last[view.model] = gr.update(interactive=True)
        if cleared and text and not stored:
            last[view.message] = text  # a failed send gives the message back
        if current:
            last |= await settled(owner, current, chat, restore=not cleared)
        if stored and (moved or not cid) and not service.is_temporary(owner, current):
            last |= await listing(request, current)  # the answered one is now the newest
        if not cid and current and service.titling(owner, current):  # listed again with it
            last[view.titling] = f"{current} {time.time()}"
        yield last

    async def respond(
        text: str,
        cid: str,
        model_id: str,
        history: list,
        shown: dict,
        token: str,
        temporary: bool,
        request: gr.Request,
    ):
        above = [*history, {"role": "user", "content": (text or "").strip()}]
        owner = await owner_off_loop(owner_of, request, page=token)  # may ask the Hub
        # a temporary chat is kept for this page only (chat/ui_temporary.py)
        scope = request.session_hash or ""
        updates = service.send(owner, text, cid, model_id, temporary=temporary, scope=scope)
        staying = kept(shown, len(history))
        async for out in answer(request, owner, updates, above, cid, text, staying):
            yield out

    def answered(history: list) -> list:
        """The chat above its last answer (and that answer's thinking)."""
        while history and history[-1]["role"] == "assistant":
            history = history[:-1]
        return history

    def again(write: Callable[[Owner, str], AsyncIterator[ChatUpdate]]) -> Callable:
        """An event streaming `write(owner, conversation_id)`, an answer written again,
        continued or followed, in place of the last answer on the page."""

        async def stream(cid: str, history: list, shown: dict, token: str, request: gr.Request):
            if not cid:
                yield gr.skip()
                return
            above = answered(history)
            owner = await owner_off_loop(owner_of, request, page=token)
            staying = kept(shown, len(above))
            async for out in answer(request, owner, write(owner, cid), above, cid, "", staying):
                yield out

        return stream

    resume = again(service.follow)

    async def follow(
        wanted: str, cid: str, history: list, shown: dict, token: str, request: gr.Request
    ):
        if (wanted or "").split(" ")[0] != cid:  # the person has moved on
            yield gr.skip()
            return
        async for out in resume(cid, history, shown, token, request):
            yield out

    async def edit(
        event: gr.EditData, cid: str, history: list, shown: dict, token: str, request: gr.Request
    ):
        ids = (shown or {}).get("ids") or []
        row = event.index
        if not cid or not isinstance(row, int) or not 0 <= row < len(ids):
            gr.Warning("This message cannot be edited any more: open the conversation again.")
            yield gr.skip()
            return
        above = [*history[:row], {"role": "user", "content": (event.value or "").strip()}]
        owner = await owner_off_loop(owner_of, request, page=token)
        updates = service.edit(owner, cid, ids[row], event.value or "")
        async for out in answer(request, owner, updates, above, cid, "", kept(shown, row)):
            yield out

    streaming = {
        "outputs": outputs,
        "postprocess": False,
        "show_progress_on": view.chatbot,
        **STREAMING,
    }
    chat_inputs = [view.conversation_id, view.chatbot, view.shown, page]
    streams = []

    def send_on(trigger: Callable) -> None:
        inputs = [view.message, view.conversation_id, view.model, view.chatbot, view.shown, page]
        inputs.append(view.temporary)  # the Temporary chat switch
        streams.append(trigger(respond, inputs=inputs, **streaming))

    send_on(view.message.submit)
    send_on(view.send.click)

    def pick_example(event: gr.SelectData) -> str:
        return event.value["text"]

    send_on(view.chatbot.example_select(pick_example, outputs=view.message, **PRIVATE).then)
    retry = again(service.retry)
    streams.append(view.retry.click(retry, inputs=chat_inputs, **streaming))
    go_on = again(service.continue_answer)
    streams.append(view.cont.click(go_on, inputs=chat_inputs, **streaming))
    streams.append(view.chatbot.edit(edit, inputs=chat_inputs, **streaming))
    streams.append(view.follow.change(follow, inputs=[view.follow, *chat_inputs], **streaming))
    return streams
