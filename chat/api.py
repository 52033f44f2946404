"""The Gradio client API: thin doors into `ChatService` (see the README's API table)."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Callable
from typing import Any

import gradio as gr

from .doors import OwnerOf, owner_off_loop
from .history import CorruptFile
from .service import ChatService, ChatUpdate, ServiceError
from .watermark import CheckError, Detector

# A stored file that cannot be read (see `history.CorruptFile`): it is left as it was.
DAMAGED = (
    "Some of your stored data is damaged and cannot be read: it has been left untouched so "
    "that it can be recovered. Your other conversations are not affected."
)
NOT_STORED = (
    "Your message could not be stored: the server could not write to its disk{why}. "
    "Nothing was saved; send your message again later."
)


def _refuse(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ServiceError as e:
        raise _refuse(str(e)) from None
    except CorruptFile:
        raise _refuse(DAMAGED) from None


# The errors of a write the disk refused (other OSErrors, such as TimeoutError, are not).
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def not_stored(error: OSError) -> str:
    """What a person reads when their message could not be written (a full disk...)."""
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    return NOT_STORED.format(why=" (it is full)" if full else "")


def text(value: object, name: str, *, stored: bool = True) -> str:
    """A text argument as sent by any client, or a clear refusal. Text to be `stored` must
    be UTF-8, which a lone surrogate (valid in JSON, "\\ud800") cannot be written in; an id
    is only looked up, and one of any shape is simply not found."""
    if value is None:  # an argument left out
        return ""
    if not isinstance(value, str):
        raise _refuse(f"'{name}' must be text.")
    if not stored:
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(
            f"'{name}' holds characters that are not valid Unicode (lone surrogates). "
            "Remove them and send it again."
        ) from None
    return value


async def _frames(updates: AsyncIterator[ChatUpdate]) -> AsyncIterator[tuple[str, str]]:
    """A streamed answer's [conversation_id, answer so far] pairs; its failure as gr.Error."""
    try:
        async for update in updates:
            if update.done and update.failed:
                raise _refuse(update.notice)
            yield update.conversation_id, update.text
    except ServiceError as e:
        raise _refuse(str(e)) from None
    except CorruptFile:
        raise _refuse(DAMAGED) from None
    except OSError as e:  # the message could not be written: say so, never a bare "error"
        if e.errno not in DISK_ERRORS:
            raise
        raise _refuse(not_stored(e)) from None


def detected(detector: Detector, value: object, model_id: object) -> dict:
    """`/detect_watermark`: the check of /check (chat/watermark.py), or a clear refusal."""
    checked, model = text(value, "text"), text(model_id, "model_id", stored=False)
    try:
        return detector.check(checked, model)
    except CheckError as e:
        raise _refuse(str(e)) from None


def _flag(value: object) -> bool:
    """A true/false argument as sent by any client (left out: false)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _refuse("'temporary' must be true or false.")
    return value


def _scope(request: gr.Request | None) -> str:
    """What a temporary conversation is kept for: the client's session (see chat/scratch.py)."""
    return str(getattr(request, "session_hash", "") or "")


def register_api(service: ChatService, owner_of: OwnerOf, detector: Detector | None = None) -> None:
    """Declare the public endpoints inside the current `gr.Blocks` context (`detector`:
    /detect_watermark, which needs no identity).

    Every endpoint takes the caller's identity from the request (session cookie or login),
    or from a Hugging Face token: `Client(url, token=...)` sends it in a header, and
    `Client(url, oauth_token=...)` in the request body, which Gradio hands us as `oauth_token`
    (the way that passes the Spaces proxy)."""

    async def models(
        request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> list[dict]:
        """The models people can chat with: id, name, description, available (to the caller),
        unavailable_reason (why not, "" when available), default."""
        return service.models(await owner_off_loop(owner_of, request, oauth_token))

    def new_conversation(
        model_id: str = "",
        temporary: bool = False,
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> dict:
        """Start an empty conversation with a model (the default one when model_id is empty).
        A `temporary` one is never saved: not listed, searched or exported, and forgotten a
        day after its last message (or by /delete_conversation)."""
        model_id = text(model_id, "model_id")
        owner = owner_of(request, oauth_token)
        return _guard(
            lambda: service.new_conversation(
                owner, model_id, temporary=_flag(temporary), scope=_scope(request)
            )
        )

    # Gradio reads the return annotation to type the endpoint's outputs: this streams
    # [conversation_id, answer_so_far] pairs, the last one holding the whole answer.
    async def chat(
        message: str,
        conversation_id: str = "",
        model_id: str = "",
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> tuple[str, str]:
        """Send a message and stream the answer; an empty conversation_id starts a new one."""
        message = text(message, "message")
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        model_id = text(model_id, "model_id")
        owner = await owner_off_loop(owner_of, request, oauth_token)
        # with history off, a new conversation is kept for this client (chat/scratch.py)
        updates = service.send(owner, message, conversation_id, model_id, scope=_scope(request))
        async for frame in _frames(updates):
            yield frame

    async def retry(
        conversation_id: str,
        message_id: str = "",
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> tuple[str, str]:
        """Write an answer again: the new answer is a sibling of the answer message_id (by
        default the last answer shown), and the old one stays (see /conversation's siblings).
        Streams [conversation_id, answer_so_far] like /chat."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        message_id = text(message_id, "message_id", stored=False)
        owner = await owner_off_loop(owner_of, request, oauth_token)
        async for frame in _frames(service.retry(owner, conversation_id, message_id)):
            yield frame

    async def edit(
        conversation_id: str,
        message_id: str,
        message: str,
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> tuple[str, str]:
        """Edit one of your messages (message_id, any of them, not only the last): the new
        text starts a new branch beside it and is answered, and the old branch stays.
        Streams [conversation_id, answer_so_far] like /chat."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        message_id = text(message_id, "message_id", stored=False)
        message = text(message, "message")
        owner = await owner_off_loop(owner_of, request, oauth_token)
        async for frame in _frames(service.edit(owner, conversation_id, message_id, message)):
            yield frame

    async def continue_(
        conversation_id: str,
        message_id: str = "",
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> tuple[str, str]:
        """Continue an answer that was cut by the length limit or stopped (message_id, by
        default the last answer shown; /conversation says which are `continuable`): the model
        writes on in the same message. Streams [conversation_id, answer_so_far], the answer
        whole from its first word."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        message_id = text(message_id, "message_id", stored=False)
        owner = await owner_off_loop(owner_of, request, oauth_token)
        updates = service.continue_answer(owner, conversation_id, message_id)
        async for frame in _frames(updates):
            yield frame

    async def follow(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> tuple[str, str]:
        """Follow the answer being written in a conversation, whoever asked for it (another
        tab, another client): streams [conversation_id, answer_so_far] from where it is to
        its end. When no answer is being written, one update with the last answer shown (or
        its error, if it failed)."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        owner = await owner_off_loop(owner_of, request, oauth_token)
        async for frame in _frames(service.follow(owner, conversation_id)):
            yield frame

    def switch_branch(
        conversation_id: str,
        message_id: str,
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> dict:
        """Show the branch through message_id (one of the `siblings` of a message), down to
        its newest answer; returns the conversation as /conversation does."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        message_id = text(message_id, "message_id", stored=False)
        return _guard(
            lambda: service.switch_branch(
                owner_of(request, oauth_token), conversation_id, message_id
            )
        )

    def stop(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Stop the answer being written in a conversation, whoever asked for it; what was
        written is kept, and every stream of it ends."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        return {"stopped": service.stop(owner_of(request, oauth_token), conversation_id)}

    def conversations(
        limit: int = 0, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> list[dict]:
        """Your conversations, newest first: id, title, model, updated_at (the newest `limit`
        of them when limit > 0, all of them otherwise)."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise _refuse("'limit' must be a whole number.")
        return service.conversations(owner_of(request, oauth_token), limit or 0)

    def search(
        query: str,
        limit: int = 20,
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> list[dict]:
        """Your conversations holding every word of `query` (case ignored) in their title or
        any message, newest first, at most `limit` (up to 100): id, title, model, updated_at,
        match_in ("title" or "message"), message_id (the message matched, null for a title),
        snippet (plain text around the match) and marks ([start, end) character offsets of
        the query's words in the snippet). An empty query finds nothing."""
        query = text(query, "query", stored=False)
        if limit is None:
            limit = 20
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise _refuse("'limit' must be a whole number.")
        return _guard(lambda: service.search(owner_of(request, oauth_token), query, limit))

    def conversation(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """One of your conversations: `messages`, the branch shown (root to leaf), each with
        id, parent_id, role, content, reasoning (a thinking model's), created_at, model,
        incomplete, notice, finish_reason, siblings (ids of it and its alternatives, in
        order) and continuable; `path`, their ids; `all_messages`, every branch's; `writing`,
        whether an answer is being written (follow it with /follow)."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        return _guard(lambda: service.conversation(owner_of(request, oauth_token), conversation_id))

    def rename_conversation(
        conversation_id: str,
        title: str,
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> dict:
        """Give one of your conversations a new title."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        title = text(title, "title")
        return _guard(
            lambda: service.rename_conversation(
                owner_of(request, oauth_token), conversation_id, title
            )
        )

    def feedback(
        conversation_id: str,
        message_id: str,
        rating: str,
        comment: str = "",
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> dict:
        """Rate one answer: rating "up", "down", or "" to clear; an optional comment.
        Returns {message_id, feedback} (feedback is {rating, comment, at} or None)."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        message_id = text(message_id, "message_id", stored=False)
        rating, comment = text(rating, "rating", stored=False), text(comment, "comment")
        return _guard(
            lambda: service.feedback(
                owner_of(request, oauth_token), conversation_id, message_id, rating, comment
            )
        )

    def delete_conversation(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Delete one of your conversations from disk, for good."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        return {
            "deleted": service.delete_conversation(owner_of(request, oauth_token), conversation_id)
        }

    def delete_all_conversations(
        request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Delete all your conversations from disk, for good."""
        return {"deleted": service.delete_all_conversations(owner_of(request, oauth_token))}

    def export(request: gr.Request = None, oauth_token: gr.OAuthToken | None = None) -> dict:
        """All your data as one JSON document (format "parlor-export", version 2)."""
        return _guard(lambda: service.export(owner_of(request, oauth_token)))

    def import_(
        data: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Add the conversations of an export to yours: JSON text from /export, a HuggingChat,
        ChatGPT (conversations.json) or Open WebUI export, or a zip (HuggingChat's data
        export) as "data:application/zip;base64,...". Returns {imported}, with skipped and
        reasons when some could not be read, and notes."""
        data = text(data, "data")
        return _guard(lambda: service.import_report(owner_of(request, oauth_token), data))

    def export_markdown(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> str:
        """One of your conversations as Markdown: title, model, times, then the branch shown
        (each answer's reasoning in a collapsed <details>)."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        return _guard(
            lambda: service.export_markdown(owner_of(request, oauth_token), conversation_id)
        )

    def settings(request: gr.Request = None, oauth_token: gr.OAuthToken | None = None) -> dict:
        """Your settings."""
        return _guard(lambda: service.settings(owner_of(request, oauth_token)))

    def update_settings(
        settings: dict, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Change some of your settings; returns them all."""
        return _guard(lambda: service.update_settings(owner_of(request, oauth_token), settings))

    # -- share links (issue 19) --
    def share(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """A read-only link to one of your conversations as it is now (later messages are
        not shown), naming no one: {id, url ("/r/<id>"), created_at, title}."""
        conversation_id = text(conversation_id, "conversation_id", stored=False)
        return _guard(lambda: service.share(owner_of(request, oauth_token), conversation_id))

    def shares(request: gr.Request = None, oauth_token: gr.OAuthToken | None = None) -> list:
        """Your share links, newest first: id, url, created_at, title."""
        return _guard(lambda: service.shares(owner_of(request, oauth_token)))

    def revoke_share(
        share_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Delete one of your share links: it answers 404 from now on."""
        share_id = text(share_id, "share_id", stored=False)
        return {"revoked": service.revoke_share(owner_of(request, oauth_token), share_id)}

    endpoints = {
        "share": share,
        "shares": shares,
        "revoke_share": revoke_share,
        "models": models,
        "new_conversation": new_conversation,
        "chat": chat,
        "retry": retry,
        "edit": edit,
        "continue": continue_,
        "follow": follow,
        "stop": stop,
        "conversations": conversations,
        "search": search,
        "conversation": conversation,
        "switch_branch": switch_branch,
        "rename_conversation": rename_conversation,
        "feedback": feedback,
        "delete_conversation": delete_conversation,
        "delete_all_conversations": delete_all_conversations,
        "export": export,
        "import": import_,
        "export_markdown": export_markdown,
        "settings": settings,
        "update_settings": update_settings,
    }
    for name, fn in endpoints.items():
        gr.api(fn, api_name=name, concurrency_limit=None)
    if detector is not None:

        def detect_watermark(text: str, model_id: str = "") -> dict:
            """Whether `text` carries the watermark of `model_id` (default: the first model that
            marks its answers): {model, tokens, green, z, p_value, threshold, watermarked (None:
            too short to judge), verdict, meaning}. The same as the /check page."""
            return detected(detector, text, model_id)

        gr.api(detect_watermark, api_name="detect_watermark", concurrency_limit=2)
