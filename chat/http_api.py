"""`POST /api/chat` and `POST /api/follow`: the chat endpoints as plain HTTP streaming,
beside Gradio's queue.

Gradio runs every event through its queue (`gradio/queueing.py`, `Queue.process_events`,
then `gradio/routes.py`, `queue_data`, for the stream): several milliseconds of CPU for
each chat it sets up, which is what keeps a 2-core machine from starting hundreds of chats
at the same instant (docs/performance.md has the figures). This door takes
the same identity (session cookie; sign-in or Hugging Face token when login is on) and calls
the same `ChatService` use-cases as the Gradio `/chat`, `/edit`, `/retry` and `/follow`
endpoints, and streams their frames as Server-Sent Events straight from Starlette, with no
queue in between. The answer is the service's task: a caller hanging up only stops reading.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TypeVar

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from .api import DAMAGED, DISK_ERRORS, not_stored
from .doors import OwnerOf, owner_off_loop
from .history import CorruptFile
from .identity import Owner
from .service import (
    BUSY,
    NO_MESSAGE,
    NOT_FOUND,
    ChatService,
    ChatUpdate,
    Limited,
    ServiceError,
    TooManyAnswers,
)

PATH = "/api/chat"
FOLLOW_PATH = "/api/follow"
BAD_REQUEST = (
    'Send a JSON object such as {"message": "Hello!", "conversation_id": ""}; its fields: '
    "message, conversation_id, model_id, edit_of, retry_of, temporary."
)
BAD_FOLLOW = 'Send a JSON object such as {"conversation_id": "..."}.'
EDIT_AND_RETRY = "Send edit_of or retry_of, not both: an edit is answered afresh anyway."
RETRY_TAKES_NO_MESSAGE = (
    "retry_of writes that answer again to the same question: send it without a message "
    "(to change the question, send edit_of with the question's id)."
)
BROKEN = "Something went wrong on the server while answering. Try again."

log = logging.getLogger("parlor.http_api")


class ChatRequest(BaseModel):
    """The body of `/api/chat`: the fields of the Gradio `/chat` endpoint, and the id of the
    question an edit replaces (`/edit`) or of the answer a retry writes again (`/retry`).
    An unknown field is refused: a misspelt `edit_of` must not send a new message."""

    model_config = ConfigDict(extra="forbid")

    message: str = ""
    conversation_id: str = ""
    model_id: str = ""
    edit_of: str = ""
    retry_of: str = ""
    temporary: bool = False  # a new conversation never written to disk (chat/scratch.py)


class FollowRequest(BaseModel):
    """The body of `/api/follow`."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str


# Characters that str.splitlines() (and with it httpx's iter_lines) takes for line breaks:
# raw in an event, they would cut its data line in two.
_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _event(name: str, data: object) -> bytes:
    text = json.dumps(data, ensure_ascii=False).translate(_BREAKS)
    return f"event: {name}\ndata: {text}\n\n".encode()


def _status(error: ServiceError) -> int:
    if isinstance(error, TooManyAnswers):
        return 429
    return {NOT_FOUND: 404, NO_MESSAGE: 404, BUSY: 409}.get(str(error), 400)


async def _events(first: ChatUpdate, updates: AsyncIterator[ChatUpdate]) -> AsyncIterator[bytes]:
    """The answer as Server-Sent Events, from its first frame (already fetched) to its end:
    `generating` frames of [conversation_id, answer so far], then `complete` with the whole
    answer, or `error` with why it stopped (what was written is kept, as in the chat)."""
    try:
        update: ChatUpdate | None = first
        while update is not None:
            if update.done:
                if update.failed:
                    yield _event("error", {"error": update.notice})
                else:
                    yield _event("complete", [update.conversation_id, update.text])
                return
            yield _event("generating", [update.conversation_id, update.text])
            update = await anext(updates, None)
    except ServiceError as e:
        yield _event("error", {"error": str(e)})
    except CorruptFile:
        yield _event("error", {"error": DAMAGED})
    except OSError as e:  # the message could not be written (a full disk): say so
        log.error("an answer over %s broke: %s (errno %s)", PATH, type(e).__name__, e.errno)
        yield _event("error", {"error": not_stored(e) if e.errno in DISK_ERRORS else BROKEN})
    except Exception as e:  # never the text: it may hold the message
        log.error("an answer over %s broke: %s", PATH, type(e).__name__)
        yield _event("error", {"error": BROKEN})
    finally:
        await updates.aclose()  # type: ignore[attr-defined]


async def _body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it proves longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _chat_updates(
    service: ChatService, owner: Owner, body: ChatRequest
) -> AsyncIterator[ChatUpdate]:
    """The answer a `/api/chat` body asks for: to a new message, an edit, or a retry."""
    if body.edit_of and body.retry_of:
        raise ServiceError(EDIT_AND_RETRY)
    if body.retry_of:
        if body.message:
            raise ServiceError(RETRY_TAKES_NO_MESSAGE)
        return service.retry(owner, body.conversation_id, body.retry_of)
    if body.edit_of:
        return service.edit(owner, body.conversation_id, body.edit_of, body.message)
    return service.send(
        owner, body.message, body.conversation_id, body.model_id, temporary=body.temporary
    )


Body = TypeVar("Body", bound=BaseModel)


def add_http_api(app: FastAPI, service: ChatService, owner_of: OwnerOf) -> None:
    """Route `POST /api/chat` and `POST /api/follow` on `app`, Gradio's own (its sign-in
    session is read there)."""
    # Room for the longest message allowed, each character escaped in JSON (an emoji as
    # two \uXXXX), and the other fields: a bigger body is refused before it is read.
    limit = 12 * service.max_message_chars + 4096
    too_large = (
        f"The request is too large. A message may be up to {service.max_message_chars:,} "
        "characters long."
    )

    async def answer(
        request: Request,
        kind: type[Body],
        bad_request: str,
        updates_for: Callable[[Owner, Body], AsyncIterator[ChatUpdate]],
    ) -> Response:
        """The answer `updates_for` the caller and their request body, as events; what
        fails before it starts, as a plain HTTP status."""
        raw = await _body(request, limit)
        if raw is None:
            return JSONResponse({"error": too_large}, status_code=413)
        try:
            body = kind.model_validate_json(raw)
        except ValidationError:
            return JSONResponse({"error": bad_request}, status_code=422)
        try:
            owner = await owner_off_loop(owner_of, gr.Request(request=request))
        except gr.Error as e:
            return JSONResponse({"error": e.message}, status_code=401)
        try:
            updates = updates_for(owner, body)
            first = await anext(updates)
        except ServiceError as e:
            # A usage limit says when it resets, in seconds (RFC 9110 Retry-After).
            wait = {"retry-after": str(math.ceil(e.retry_after))} if isinstance(e, Limited) else {}
            return JSONResponse({"error": str(e)}, status_code=_status(e), headers=wait)
        return StreamingResponse(
            _events(first, updates),
            media_type="text/event-stream",
            headers={"cache-control": "no-store"},
        )

    @app.post(PATH, include_in_schema=False)
    async def chat(request: Request) -> Response:
        return await answer(request, ChatRequest, BAD_REQUEST, partial(_chat_updates, service))

    @app.post(FOLLOW_PATH, include_in_schema=False)
    async def follow(request: Request) -> Response:
        return await answer(
            request,
            FollowRequest,
            BAD_FOLLOW,
            lambda owner, body: service.follow(owner, body.conversation_id),
        )

    # First in the router: each request is matched against routes in turn, and Gradio's
    # app has dozens (~1 ms of CPU per chat when a burst of them arrives, by py-spy).
    routes = app.router.routes
    routes[:0] = [routes.pop(), routes.pop()]
