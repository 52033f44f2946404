"""Plain HTML pages served beside the chat: the models page and the privacy page.

Both are generated from the live configuration, so they never promise what this deployment
does not do.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from .branding import PARLOR, Branding
from .catalog import Model
from .doors import OwnerOf
from .identity import Owner
from .service import ChatService

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:52rem;
margin:2rem auto;padding:0 1rem;line-height:1.55;color:#1f2937}
a{color:#4f46e5}h1{font-size:1.7rem}h2{font-size:1.2rem;margin-top:1.8rem}
.model{border:1px solid #e5e7eb;border-radius:.6rem;padding:.8rem 1rem;margin:.8rem 0}
.model h2{margin:.1rem 0 .3rem}.off{color:#9ca3af}.tag{font-size:.8rem;border-radius:1rem;
padding:.05rem .55rem;margin-left:.4rem;background:#ecfdf5;color:#047857}
.tag.off{background:#f3f4f6;color:#6b7280}.start{display:inline-block;margin-top:.4rem;
padding:.3rem .8rem;border-radius:.4rem;background:#4f46e5;color:#fff;text-decoration:none}
nav a{margin-right:1rem}nav .logo{max-height:1.6rem;vertical-align:middle;margin-right:.6rem}
"""


def _page(title: str, body: str, brand: Branding = PARLOR) -> str:
    accent = f"a{{color:{brand.accent}}}.start{{background:{brand.accent}}}" if brand.accent else ""
    logo = f"<img src='{escape(brand.logo_href('/'))}' alt='' class='logo'>" if brand.logo else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>{brand.head('/')}"
        f"<title>{escape(title)} · {escape(brand.name)}</title><style>{STYLE}{accent}</style>"
        f"</head><body><nav>{logo}<a href='/'>← Back to chat</a>"
        f"<a href='/models'>Models</a><a href='/privacy'>Privacy</a></nav>{body}</body></html>"
    )


def models_page(service: ChatService, viewer: Owner | None = None, brand: Branding = PARLOR) -> str:
    """The listed models, each available or not to `viewer` (and why not)."""
    cards = []
    for info in service.models(viewer):
        model = service.catalog.get(info["id"])
        links = [
            f"<a href='{escape(url)}' rel='noopener' target='_blank'>{label}</a>"
            for label, url in (("Model card", model.model_url), ("Website", model.website_url))
            if url
        ]
        status = (
            "<span class='tag'>available</span>"
            if info["available"]
            else "<span class='tag off'>unavailable on this server</span>"
        )
        reason = info["unavailable_reason"]
        why = f"<p class='why'>Unavailable: {escape(reason)}.</p>" if reason else ""
        start = (
            f"<a class='start' href='/?model={quote(model.id, safe='')}'>"
            f"Start a chat with this model</a>"
            if info["available"]
            else ""
        )
        cards.append(
            f"<div class='model' data-model-id='{escape(model.id)}'>"
            f"<h2>{escape(model.name)}{status}</h2>"
            f"<p>{escape(model.description)}</p>{why}{_marks(model)}"
            f"<p>{' · '.join(links)}</p>{start}</div>"
        )
    return _page(
        "Models",
        f"<h1>Models</h1><p>The models you can chat with on {escape(brand.name)}. Each "
        "conversation keeps the model it was started with.</p>" + "".join(cards),
        brand,
    )


def _paying(own_tokens: bool) -> str:
    """What the privacy page says of a signed-in person's own Hugging Face token."""
    if not own_tokens:
        return ""
    return (
        "<p>If you sign in, your requests to Inference Providers models are made with your own "
        "Hugging Face account (its free credits, its quota, its bill). Your token is kept in "
        "memory only while your request and its answer last, and in your browser only in an "
        "encrypted sign-in cookie: it is never written to this server's disk or logs, and "
        "never sent to any server but Hugging Face's.</p>"
    )


def add_models_page(
    app: FastAPI, service: ChatService, owner_of: OwnerOf, brand: Branding = PARLOR
) -> None:
    """Route `/models` on `app`, Gradio's own: its sign-in session says who is looking."""

    @app.get("/models", include_in_schema=False)
    def models(request: Request) -> HTMLResponse:
        try:
            viewer = owner_of(gr.Request(request=request))
        except gr.Error:  # no identity to trust: shown as to anyone
            viewer = Owner(id="", kind="anonymous")
        return HTMLResponse(models_page(service, viewer, brand))

    routes = app.router.routes
    routes.insert(0, routes.pop())  # before Gradio's own routes


def _marks(model: Model) -> str:
    """A model card's line on its watermark (chat/watermark.py), if it has one."""
    if model.watermark is None:
        return ""
    return (
        "<p class='watermark'>Its answers carry an invisible watermark: "
        f"<a href='/check?model={quote(model.id, safe='')}'>check whether a text is one of "
        "them</a>.</p>"
    )


def _watermarks(service: ChatService) -> str:
    """The privacy page's section on the watermark: which models mark, what it holds."""
    names = [escape(m.name) for m in service.catalog.listed if m.watermark is not None]
    if not names:
        return "<h2>Watermark</h2><p>No model of this server watermarks its answers.</p>"
    return (
        f"<h2>Watermark</h2><p>Answers of {', '.join(names)} carry an invisible watermark: the "
        "model slightly prefers words from lists computed with a secret key that never leaves "
        "this server. It says which server's model wrote a text, and nothing about you or your "
        "conversation. Anyone can <a href='/check'>check a text</a> for it; the text checked "
        "is not kept.</p>"
    )


HISTORY_OFF = (
    "<p><strong>History is off on this server:</strong> your conversations are never written "
    "to its disk. Each one is kept in the server's memory only while its page is open, to "
    "write the answers, and is gone when you close or reload the page. Nothing is listed, "
    "searched or exported.</p>"
)
TEMPORARY = (
    "<h2>Temporary chats</h2><p>Turn on <em>Temporary chat</em> for a conversation that is "
    "never written to disk: it is kept in the server's memory only while its page is open, "
    "is not listed, searched, exported or shared, and is gone when you close the page or "
    "turn Temporary chat off.</p>"
)


def _kept(service: ChatService) -> str:
    """What the page says of temporary chats, or that history is off."""
    return TEMPORARY if service.store_messages else HISTORY_OFF


def _retention(days: int | None) -> str:
    """How long conversations are kept (PARLOR_RETENTION_DAYS)."""
    if days is None:
        return "Your conversations are kept until you delete them."
    span = "1 day" if days == 1 else f"{days} days"
    return (
        f"A conversation nobody has written in for <strong>{span}</strong> is deleted from "
        "this server, with its share links; until then it is kept until you delete it."
    )


def _counted(address_limits: bool) -> str:
    """What the per-address message limits keep (chat/limits.py)."""
    if not address_limits:
        return ""
    return (
        " To limit how many messages are sent without signing in, the server counts them per "
        "network address, in memory only, with the address kept as a keyed hash it cannot be "
        "read back from, and forgotten when the count resets."
    )


def privacy_page(
    service: ChatService,
    *,
    data_sharing: bool,
    login: bool,
    ephemeral: bool,
    feedback_url: str,
    own_tokens: bool = False,
    brand: Branding = PARLOR,
    retention_days: int | None = None,
    address_limits: bool = False,
) -> str:
    served = "".join(
        f"<li>{escape(m['name'])} <code>{escape(m['id'])}</code>"
        f"{'' if m['available'] else ' (not available right now)'}</li>"
        for m in service.models()
    )
    where = (
        "in this server's memory only, for you only, never on its disk (see below)"
        if not service.store_messages
        else "on this server's disk, in a folder of its own that only you can reach; the disk "
        "is wiped when the server restarts: history here is <strong>not</strong> kept across "
        "restarts"
        if ephemeral
        else "in files on this server's disk, in a folder of its own that only you can reach"
    )
    identity = (
        "If you sign in with Hugging Face, your conversations are tied to your account's "
        "stable id (not your username), and the conversations you had before signing in move "
        "to your account. "
        if login
        else ""
    )
    if data_sharing:
        sharing = (
            "<p>This server lets you choose to share your conversations with the authors of the "
            "models you chat with, to help them improve their models. It is <strong>off</strong> "
            "until you turn it on in your settings. While it is on, each conversation you have "
            "records your consent with its date and model; only those conversations are handed "
            "to the model's authors. Turning it off withdraws the consent of every conversation "
            "not yet handed over.</p>"
        )
    else:
        sharing = (
            "<p>Your conversations are shared with <strong>no one</strong>: not with the people "
            "running this server for any other purpose, and not with the authors of the models."
            "</p>"
        )
    feedback = (
        f"<h2>Questions and feedback</h2><p>Tell us on the "
        f"<a href='{escape(feedback_url)}' rel='noopener' target='_blank'>public discussion "
        f"page</a>.</p>"
        if feedback_url
        else ""
    )
    terms = _terms(brand)
    return _page(
        "Privacy",
        f"""<h1>Privacy</h1>
<p>{escape(brand.name)} keeps your conversations for one purpose: to show them back to you.</p>
<h2>What is stored, and where</h2>
<p>Each conversation you have (your messages, the answers, the model used, the times) is stored
{where}. Nothing else about you is stored.
Message text is never written to the server's logs, and no analytics are collected.
{_counted(address_limits)}</p>
{_kept(service)}
<h2>Who can see it</h2>
<p>Only you. {identity}Without signing in, you are known by a random id kept in a cookie of
this browser: your history is tied to this browser, and is lost to you if you clear its
cookies or use another browser. Nobody else can open your conversations, even knowing their
address.</p>
{sharing}
<h2>The models</h2>
<p>When you send a message, the conversation (trimmed to what the model can read) is sent to the
model you chose, to write the answer. This server serves:</p><ul>{served}</ul>
<p>Models hosted by Hugging Face Inference Providers receive your messages to answer them, under
their own terms; the embedded SmolLM2 model runs on this server itself.</p>{_paying(own_tokens)}
{_watermarks(service)}
<h2>How long, and how to delete it</h2>
<p>{_retention(retention_days)} Delete one with <em>Delete this
conversation</em>, or everything with <em>Delete all my conversations</em>: the files are
removed from disk, not just hidden. You can also export all your data as one JSON file, and
import it into another browser or another Parlor.</p>
<h2>Share links</h2>
<p><em>Share</em> on a conversation makes a read-only link that anyone holding it can open. It
shows the conversation as it was when you shared it (the title and the branch shown; nothing
written later), and nothing about you: no name, no account, no cookie. It is hidden from search
engines (<code>noindex</code>). Someone who opens it can copy it into their own history to
continue it. Revoke a link under <em>Your data</em>: it stops opening at once, and its copy is
removed from disk; deleting the conversation, or all of them, deletes its links too.</p>
{terms}{feedback}""",
        brand,
    )


# What /privacy says of each deployer link (chat/branding.py labels), "{a}" its link.
LINK_TEXT = {
    "Privacy policy": "This page says how this app keeps your conversations. The people "
    "running it have a full {a} of their own, which applies too.",
    "Terms of use": "Using this app means accepting its {a}.",
    "Legal contact": "For a legal question, or to ask about your data, write to the {a}.",
    "Source code": "The {a} of this app is public: anyone can check what it does with your "
    "conversations.",
}


def _terms(brand: Branding) -> str:
    """The deployer's links, each in a sentence (the discussion page has its own section)."""
    lines = [
        "<p>"
        + LINK_TEXT[label].replace(
            "{a}", f"<a href='{escape(href)}' rel='noopener' target='_blank'>{label.lower()}</a>"
        )
        + "</p>"
        for label, href in brand.links
        if label in LINK_TEXT
    ]
    return "<h2>Terms and contacts</h2>" + "".join(lines) if lines else ""
