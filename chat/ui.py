"""The chat page: a sidebar of conversations, a model selector, the chat and its buttons.

Handlers only translate between components and `ChatService`, returning dicts of just the
components they change. None is part of the public API (`api_visibility="private"`): the
client API lives in `api.py`. The events that stream answers are in `ui_answers.py`, how a
conversation's rows are drawn in `ui_tree.py`, the sidebar's list in `ui_sidebar.py`, the
"your data" panel in `ui_data.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import gradio as gr

from . import ui_brand, ui_markdown, ui_sidebar, ui_temporary, ui_tree
from .accounts import DECLINED
from .branding import PARLOR, Branding
from .doors import OwnerOf, owner_off_loop
from .extensions import PageParts
from .identity import Owner
from .service import ChatService, ServiceError
from .ui_answers import PRIVATE, buttons, wire_answers
from .ui_data import DataPanel, build_data_panel
from .ui_feedback import LATEX_DELIMITERS, build_feedback_box, feedback_values, wire_feedback
from .ui_markdown import build_markdown_button, wire_markdown
from .ui_settings import build_settings_panel, build_welcome
from .ui_share import build_share_controls, wire_shares
from .ui_sidebar import PAGE, SIDEBAR_JS, Sidebar, build_sidebar, found_value, listing_value
from .ui_temporary import build_temporary_switch, history_off_note, wire_temporary
from .ui_tree import BRANCH_JS, REDRAW_JS, layout

CSS = (
    """
#banner p, #cookie-warning p { border-left: 4px solid #f59e0b; padding: .4rem .8rem;
  background: #fffbeb; margin: 0; }
.parlor-links { font-size: .9rem; }
/* A phone: the box and Send side by side, the buttons under them as small as their words. */
@media (max-width: 768px) {
  #composer { flex-wrap: nowrap; }
  #composer > * { min-width: 0 !important; }
  #composer > button { flex: 0 0 auto !important; width: auto; padding: 0 .9rem;
    align-self: stretch; }
  #actions { flex-wrap: wrap; gap: .4rem; }
  /* the chat shorter, so that the box shows without scrolling, welcome notice and all */
  #chatbot { height: 300px !important; flex-grow: 1; }
  #actions > * { flex: 0 1 auto !important; min-width: 0 !important; width: auto; }
}
/* In a frame, Gradio's login cookie is blocked: sign-in happens in a tab of its own. */
.parlor-framed #login, body:not(.parlor-framed) #login-in-tab { display: none !important; }
"""
    + ui_tree.CSS
    + ui_sidebar.CSS
    + ui_temporary.CSS
    + ui_markdown.CSS
    + ui_brand.CSS
)

# Tells the person when this browser refuses the session cookie (e.g. third-party cookies
# blocked in an iframe), instead of silently losing their history.
COOKIE_CHECK_JS = """
async () => {
  if (window.self !== window.top) document.body.classList.add("parlor-framed");
  const ask = () => fetch("session/check", {credentials: "include"}).then(r => r.json());
  try {
    await ask();
    const second = await ask();
    if (second.cookie) return "";
  } catch (e) { return ""; }
  return "⚠️ **This browser blocks Parlor's cookie here**, so your history will not be kept " +
         "once you leave this page. " +
         "[Open Parlor in a new tab](" + window.location.href.split("?")[0] +
         ") to keep it.";
}
"""

# Asks the server for this page's own secret (chat/doors.py): where the browser keeps no
# cookie, the page's events carry it to stay one person. Over plain HTTP to this page only,
# not through Gradio's queue, whose stream anyone who knows the session hash may open.
PAGE_TOKEN_JS = """
async () => {
  try {
    const r = await fetch("session/page", {cache: "no-store"});
    return (await r.json()).token || "";
  } catch (e) { return ""; }
}
"""


def _model_choices(service: ChatService, owner: Owner | None = None) -> list[tuple[str, str]]:
    """(label, id) of each listed model; one `owner` cannot use says why in its label."""
    return [
        (m["name"] + (f" (unavailable: {w})" if (w := m["unavailable_reason"]) else ""), m["id"])
        for m in service.models(owner)
    ]


@dataclass
class ChatView:
    """The components that show one conversation."""

    conversation_id: gr.State
    conversations: gr.Textbox  # the sidebar's listing (chat/ui_sidebar.py)
    selected: gr.Textbox  # the conversation the sidebar highlights
    more: gr.Button  # lists the conversations older than the first PAGE
    titling: gr.Textbox  # "<id> <time>": the sidebar lists again once its title is written
    model: gr.Dropdown
    notice: gr.Markdown
    chatbot: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    retry: gr.Button
    cont: gr.Button  # Continue: only under an answer that ended early
    delete: gr.Button
    confirm: gr.Row
    shown: gr.State  # Layout.state() of the chat: the message of each row, the switchers
    branches: gr.Textbox  # the switchers, for the page to draw (ui_tree.BRANCH_JS)
    pick: gr.Textbox  # the message a switcher was clicked to show, written by the page
    follow: gr.Textbox  # "<conversation id> <time>": follow the answer being written in it
    temporary: gr.Checkbox  # Temporary chat: a new conversation is never saved (ui_temporary)

    def all(self) -> list:
        return list(vars(self).values())


def build_ui(
    service: ChatService,
    owner_of: OwnerOf,
    *,
    footer: str = "",
    login: bool = False,
    welcome: str = "",
    api: Callable[[], None] = lambda: None,
    copy_label: str = "",
    brand: Branding = PARLOR,
    extend: Callable[[gr.Blocks, PageParts], None] | None = None,
) -> gr.Blocks:
    """The Blocks of the chat page. `api()` declares the client API inside it first, so that
    the public endpoints get their names before the UI's private events take any. `footer`:
    a warning over the chat (ephemeral storage); `copy_label`: a line that copying a message
    appends ("" for none); `brand`: the deployer's name, logo, links, announcement, header
    and footer (chat/ui_brand.py); `extend`: a deployer's extension, called last inside the
    page (chat/extensions.py)."""
    default = service.catalog.default
    examples = [{"display_text": e.title, "text": e.prompt} for e in default.prompt_examples]

    with gr.Blocks(title=brand.name, fill_height=True, delete_cache=(600, 900)) as demo:
        api()
        with gr.Sidebar(elem_id="sidebar", open=True) as sidebar:
            ui_brand.build_brand_header(brand)
            account = gr.Markdown("", elem_id="account")
            if login:
                gr.LoginButton("Sign in with Hugging Face", elem_id="login")
                gr.Markdown(  # shown instead of the button inside a frame (see CSS)
                    "[Sign in with Hugging Face](login/huggingface) (opens a new tab)",
                    elem_id="login-in-tab",
                )
            new_chat = gr.Button("+ New chat", variant="primary", elem_id="new-chat")
            history_off_note(service)  # PARLOR_STORE_MESSAGES=false: in place of the list
            side = build_sidebar(history=service.store_messages)
            data_panel = build_data_panel(service)
            settings_panel = build_settings_panel(service)
            gr.Markdown(ui_brand.links_markdown(brand), elem_classes="parlor-links")

        with gr.Column(scale=1) as main:
            gr.Markdown(footer, elem_id="banner", visible=bool(footer))
            announcement = ui_brand.build_announcement(brand)
            ui_brand.build_header(brand)
            settings_panel.welcome, settings_panel.dismiss = build_welcome(welcome, brand.name)
            cookie_warning = gr.Markdown("", elem_id="cookie-warning")
            temporary = build_temporary_switch(service)  # chat/ui_temporary.py
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
                editable="user",  # any of the person's messages: a new branch (service.edit)
                layout="panel",
                scale=1,
                examples=examples or None,
                placeholder="**Ask anything.** Your conversations are private to you.",
                show_label=False,
                latex_delimiters=LATEX_DELIMITERS,  # chat/ui_feedback.py
                feedback_options=("Like", "Dislike"),
                watermark=copy_label or None,  # a line Copy adds (PARLOR_LABEL_ON_COPY)
            )
            feedback_box = build_feedback_box()  # after a thumb: chat/ui_feedback.py
            with gr.Row(elem_id="composer"):
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
            with gr.Row(elem_id="actions"):
                retry = gr.Button("↻ Retry", size="sm", elem_id="retry", visible=False)
                cont = gr.Button("Continue", size="sm", elem_id="continue", visible=False)
                delete = gr.Button(
                    "Delete this conversation", size="sm", elem_id="delete", visible=False
                )
                share_controls = build_share_controls()  # share links: chat/ui_share.py
                markdown = build_markdown_button()  # chat/ui_markdown.py
            with gr.Row(visible=False, elem_id="confirm-delete") as confirm:
                gr.Markdown("**Delete this conversation for good?** This cannot be undone.")
                confirm_yes = gr.Button(
                    "Delete", variant="stop", size="sm", elem_id="confirm-delete-yes"
                )
                confirm_no = gr.Button("Cancel", size="sm", elem_id="confirm-delete-no")
            ui_brand.build_footer(brand)

        page = gr.Textbox(visible=False)  # this page's token: see PAGE_TOKEN_JS
        view = ChatView(
            gr.State(""),
            side.listing,
            side.selected,
            side.more,
            side.titling,
            model,
            notice,
            chatbot,
            message,
            send,
            stop,
            retry,
            cont,
            delete,
            confirm,
            gr.State({}),
            gr.Textbox(visible="hidden", elem_id="branches"),
            gr.Textbox(visible="hidden", elem_id="branch-pick"),
            gr.Textbox(visible="hidden", elem_id="follow"),
            temporary.switch,
        )
        streams = _wire_chat(service, owner_of, view, page, default.id, confirm_yes, confirm_no)
        _wire_sidebar(service, owner_of, view, side, page, streams, default.id)
        wire_feedback(service, owner_of, view, page, feedback_box, PRIVATE)
        loaded = _wire_page(
            demo, service, owner_of, view, page, sidebar, cookie_warning, account, data_panel
        )
        wire_shares(service, owner_of, page, view.conversation_id, share_controls, data_panel.links)
        settings_panel.wire(loaded, owner_of, page)
        wire_markdown(service, owner_of, view.conversation_id, page, *markdown)
        fresh = partial(_fresh, view)
        wire_temporary(demo, service, owner_of, view, page, temporary, fresh, streams)

        def start_afresh(token: str, request: gr.Request) -> dict:
            """A new chat. The sidebar is listed again: the page may have left an answer
            before the frame that listed its new conversation."""
            owner = owner_of(request, page=token)  # resolved here; _listing reuses it
            fresh = _fresh(view, service.default_model(owner).id)
            return {**fresh, **_listing(view, service, owner_of, request)}

        for trigger in (new_chat.click, chatbot.clear):  # clearing the chat starts a new one
            trigger(None, cancels=streams, **PRIVATE)  # first: see _wire_chat
            trigger(start_afresh, inputs=page, outputs=view.all(), **PRIVATE)
        announcement.wire(demo, brand)
        if extend is not None:  # last: the page is whole, its parts named in PageParts
            extend(demo, PageParts(service, owner_of, page, view.conversation_id, sidebar, main))
    return demo


def _fresh(view: ChatView, model_id: str) -> dict:
    """An empty new chat."""
    return {
        view.conversation_id: "",
        view.chatbot: [],
        view.shown: {},
        view.branches: "[]",
        view.model: gr.update(value=model_id, interactive=True),
        view.notice: "",
        view.selected: "",
        view.send: gr.update(visible=True),
        view.stop: gr.update(visible=False),
        view.retry: gr.update(visible=False),
        view.cont: gr.update(visible=False),
        view.delete: gr.update(visible=False),
        view.confirm: gr.update(visible=False),
    }


def _shown(view: ChatView, conv: dict) -> dict:
    """A stored conversation on the page; one being written is then followed live (its
    `view.follow` changes, which starts the event that follows it)."""
    writing = conv["writing"]
    drawn = layout(conv["messages"], writing=conv["leaf_id"] if writing else "")
    out = {
        view.conversation_id: conv["id"],
        view.selected: conv["id"],
        view.chatbot: gr.update(value=drawn.chat, feedback_value=feedback_values(conv["messages"])),
        view.shown: drawn.state(),
        view.branches: drawn.switchers(),
        view.model: gr.update(value=conv["model"], interactive=False),
        view.notice: conv["notice"],
        view.delete: gr.update(visible=True),
        view.confirm: gr.update(visible=False),
        **buttons(view, conv),
        **({} if conv["temporary"] else {view.temporary: False}),  # a saved one: ui_temporary
    }
    if writing:
        out[view.follow] = f"{conv['id']} {time.time()}"
    return out


def _listing(
    view: ChatView,
    service: ChatService,
    owner_of: OwnerOf,
    request: gr.Request,
    selected: str = "",
    *,
    every: bool = False,
) -> dict:
    """The sidebar: the newest PAGE conversations (`every` one of them), and the button for
    the older ones when there are any; `selected` is highlighted (else it stays as it is)."""
    rows = service.conversations(owner_of(request), limit=0 if every else PAGE + 1)
    older = len(rows) > PAGE and not every
    out = {
        view.conversations: listing_value(rows[:PAGE] if older else rows),
        view.more: gr.update(visible=older),
    }
    if selected:
        out[view.selected] = selected
    return out


def _delete(
    view: ChatView,
    service: ChatService,
    owner_of: OwnerOf,
    request: gr.Request,
    target: str,
    cid: str,
    default_id: str,
) -> dict:
    """Delete `target` for good and list the sidebar again; a new chat when it was the one
    open (`cid`)."""
    if target:
        service.delete_conversation(owner_of(request), target)
    out = _listing(view, service, owner_of, request)
    return {**_fresh(view, default_id), **out} if target == cid else out


def _on_branch(service: ChatService, owner, cid: str, message_id: str | None) -> dict:
    """The conversation, showing the branch through `message_id` (where a search found its
    words) when there is one; as it was shown when it cannot be switched (an answer is being
    written in it)."""
    if message_id:
        try:
            return service.switch_branch(owner, cid, message_id)
        except ServiceError:
            pass
    return service.conversation(owner, cid)


def _opened(service: ChatService, owner, cid: str) -> dict | None:
    """The conversation `?c=` names, or None (not the person's: the page opens as usual)."""
    try:
        return service.conversation(owner, cid)
    except ServiceError:
        return None


def _wire_page(demo, service, owner_of, view, page, sidebar, cookie_warning, account, data_panel):
    """Page load (the page's token, then query options and the listing) and the data panel;
    returns the load that gets the page's token (what comes after it may use `page`)."""

    def on_load(token: str, request: gr.Request):
        query = dict(request.query_params or {})
        owner = owner_of(request, page=token)  # first: the calls below reuse it
        out = _listing(view, service, owner_of, request)
        # Availability changes while the app runs (the embedded model warms up): ask now.
        wanted = query.get("model", "")
        if not any(m["id"] == wanted and m["available"] for m in service.models(owner)):
            wanted = service.default_model(owner).id
        choices = _model_choices(service, owner)
        out[view.model] = gr.update(choices=choices, value=wanted, interactive=True)
        if query.get("embed") in ("1", "true"):
            out[sidebar] = gr.update(visible=False)  # small frames: the chat only
        out[account] = f"Signed in as **{owner.name}**" if owner.kind == "hf" else ""
        if query.get("signin") == DECLINED and owner.kind != "hf":
            gr.Info("You did not sign in: you are still anonymous, with your conversations.")
        if service.data_sharing:
            out[data_panel.share] = bool(service.settings(owner).get(service.SHARE))
        # -- ?c=<id> opens that conversation (a share link's Continue lands here) --
        if (cid := query.get("c", "")) and (conv := _opened(service, owner, cid)) is not None:
            out.update(_shown(view, conv))
            out.update(_listing(view, service, owner_of, request, cid))
        # -- end of ?c= --
        return out

    outputs = [view.conversations, view.more, view.model, sidebar, account, data_panel.share]
    outputs += [c for c in view.all() if c not in outputs]  # what ?c= shows
    loaded = demo.load(None, js=PAGE_TOKEN_JS, outputs=page, **PRIVATE)
    loaded.then(on_load, inputs=page, outputs=outputs, **PRIVATE)
    demo.load(None, js=COOKIE_CHECK_JS, outputs=cookie_warning, **PRIVATE)
    demo.load(None, js=BRANCH_JS, **PRIVATE)  # the page draws the switchers: chat/ui_tree.py
    demo.load(None, js=SIDEBAR_JS, **PRIVATE)  # and the sidebar's list: chat/ui_sidebar.py
    view.branches.change(None, js=REDRAW_JS, **PRIVATE)
    data_panel.wire(
        owner_of,
        page,
        lambda r: _listing(view, service, owner_of, r),
        lambda: _fresh(view, service.catalog.default.id),
        view.all(),
    )
    return loaded


def _wire_chat(
    service: ChatService,
    owner_of: OwnerOf,
    view: ChatView,
    page: gr.Textbox,
    default_id: str,
    confirm_yes: gr.Button,
    confirm_no: gr.Button,
) -> list:
    """Opening a conversation, switching branch, stopping, deleting, and the events that
    stream answers (`ui_answers.wire_answers`, returned). Every event sends the page's token
    (`page`), and resolves its owner with it first: the helpers that call `owner_of(request)`
    after that get the same owner.

    An answer is a task of the server's (chat/answers.py): the page only follows it. Opening
    another conversation, a new chat or a deletion cancels the page's event that follows
    (`cancels`), never the answer, which a later visit finds done or follows again. The
    listener that cancels is added to a trigger before the one that acts: Gradio's page runs
    a trigger's listeners in order, each to its end, so a canceller added after would cancel
    the event the first one had just started."""

    def switch_branch(picked: str, cid: str, token: str, request: gr.Request):
        message_id = (picked or "").split(" ")[0]
        if not cid or not message_id:
            return {}
        try:
            conv = service.switch_branch(owner_of(request, page=token), cid, message_id)
        except ServiceError as e:
            gr.Warning(str(e))
            return {}
        return _shown(view, conv)

    def request_stop(cid: str, token: str, request: gr.Request) -> None:
        if cid:
            service.stop(owner_of(request, page=token), cid)

    def delete_current(cid: str, token: str, request: gr.Request):
        owner_of(request, page=token)  # resolved here; _delete reuses it
        return _delete(view, service, owner_of, request, cid, cid, default_id)

    async def listing(request: gr.Request, selected: str) -> dict:
        return await asyncio.to_thread(_listing, view, service, owner_of, request, selected)

    everything = view.all()
    streams = wire_answers(service, owner_of, view, page, listing)
    view.stop.click(request_stop, inputs=[view.conversation_id, page], **PRIVATE)

    view.pick.change(
        switch_branch,
        inputs=[view.pick, view.conversation_id, page],
        outputs=everything,
        **PRIVATE,
    )
    view.delete.click(lambda: gr.update(visible=True), outputs=view.confirm, **PRIVATE)
    confirm_no.click(lambda: gr.update(visible=False), outputs=view.confirm, **PRIVATE)
    confirm_yes.click(None, cancels=streams, **PRIVATE)  # first: see above
    confirm_yes.click(
        delete_current, inputs=[view.conversation_id, page], outputs=everything, **PRIVATE
    )

    def list_every_one(cid: str, token: str, request: gr.Request) -> dict:
        owner_of(request, page=token)  # resolved here; _listing reuses it
        return _listing(view, service, owner_of, request, cid, every=True)

    view.more.click(
        list_every_one,
        inputs=[view.conversation_id, page],
        outputs=[view.conversations, view.selected, view.more],
        **PRIVATE,
    )
    return streams


def _wire_sidebar(
    service: ChatService,
    owner_of: OwnerOf,
    view: ChatView,
    side: Sidebar,
    page: gr.Textbox,
    streams: list,
    default_id: str,
) -> None:
    """The sidebar's rows and search box (chat/ui_sidebar.py). Opening a conversation or
    deleting the open one cancels the page's event that follows an answer, first (see
    `_wire_chat`); renaming or deleting another row leaves it be."""
    quiet = {"show_progress": "hidden", **PRIVATE}

    def act(value: str, cid: str, token: str, request: gr.Request) -> dict:
        wanted = ui_sidebar.asked(value)
        owner = owner_of(request, page=token)  # first: the calls below reuse it
        target = wanted.get("id", "")
        if wanted.get("op") == "delete":
            return _delete(view, service, owner_of, request, target, cid, default_id)
        try:
            if wanted.get("op") == "open":
                return _shown(view, _on_branch(service, owner, target, wanted.get("message")))
            if wanted.get("op") == "rename":
                service.rename_conversation(owner, target, wanted.get("title", ""))
        except ServiceError as e:  # gone meanwhile (another tab), or an empty title
            gr.Warning(str(e))
        return _listing(view, service, owner_of, request)

    def find(query: str, token: str, request: gr.Request) -> str:
        query = (query or "").strip()
        if not query:
            return found_value("", [])
        try:
            return found_value(query, service.search(owner_of(request, page=token), query))
        except ServiceError as e:  # too long
            gr.Warning(str(e))
            return found_value(query, [])

    async def titled(value: str, token: str, request: gr.Request) -> dict:
        cid = (value or "").split(" ")[0]
        owner = await owner_off_loop(owner_of, request, page=token)
        if cid:  # (it may be written already)
            await service.title_written(owner, cid)
        return await asyncio.to_thread(_listing, view, service, owner_of, request)

    everything = view.all()
    side.opening.change(None, cancels=streams, **PRIVATE)  # first: see above
    side.opening.change(
        act, inputs=[side.opening, view.conversation_id, page], outputs=everything, **PRIVATE
    )
    side.acting.change(
        act, inputs=[side.acting, view.conversation_id, page], outputs=everything, **quiet
    )
    side.search.change(None, js=ui_sidebar.REDRAW_JS, **PRIVATE)  # cleared: the list at once
    side.search.change(  # typed, pasted or cleared
        find, inputs=[side.search, page], outputs=side.found, trigger_mode="always_last", **quiet
    )
    side.titling.change(
        titled,
        inputs=[side.titling, page],
        outputs=[view.conversations, view.more],
        concurrency_limit=None,
        **quiet,
    )
    for value in (side.listing, side.selected, side.found):
        value.change(None, js=ui_sidebar.REDRAW_JS, **PRIVATE)


__all__ = ["CSS", "DataPanel", "build_ui"]
