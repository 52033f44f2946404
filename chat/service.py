"""Parlor's use-cases. The UI (`ui.py`) and the client API (`api.py`) both call these.

Each use-case takes the `Owner` first; stored data is only ever read or written for that
owner. Failures a person should see are `ServiceError`s with a message written for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from . import history as store
from . import portability, sharing
from .catalog import Catalog, Model
from .endpoints import ChatError, Endpoints
from .identity import Owner
from .locks import KeyedLocks
from .prompt import build_messages
from .settings import ImportLimits

log = logging.getLogger("parlor.service")

NOT_FOUND = "conversation not found"
BUSY = "An answer is still being written in this conversation."
SAVE_EVERY = 2.0  # seconds between saves of an answer in progress (crash safety)
# Saves a second of all the answers in progress together: past it, each answer is saved
# less often than SAVE_EVERY (200 at once: every 4 s). Each save rewrites and fsyncs the
# conversation's file; at 100 a second they took a fifth of the server's CPU.
SAVE_BUDGET = 50.0
# An answer saved while it streamed whose end was never written: the server stopped.
SERVER_STOPPED = "Interrupted: the server stopped before the answer ended."


class ServiceError(Exception):
    """A request that cannot be served; the message is written for the person asking."""


@dataclass(frozen=True)
class ChatUpdate:
    """One frame of a streamed answer: the whole answer so far, not a delta."""

    conversation_id: str
    text: str
    done: bool = False
    notice: str = ""  # why the answer is incomplete (stopped, failed), empty when complete
    failed: bool = False
    stored: bool = False  # the person's message is on disk (always true of the last frame)


class ChatService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        history: store.History,
        endpoints: Endpoints,
        max_message_chars: int,
        frame_seconds: float,
        frame_budget: float = 800.0,
        data_sharing: bool = False,
        import_limits: ImportLimits | None = None,
    ) -> None:
        self.data_sharing = data_sharing
        self.import_limits = import_limits or ImportLimits(message_chars=max_message_chars)
        self.catalog = catalog
        self.history = history
        self.endpoints = endpoints
        self.max_message_chars = max_message_chars
        self.frame_seconds = frame_seconds
        self.frame_budget = frame_budget
        self._stops: dict[tuple[str, str], asyncio.Event] = {}
        self._all_deleted: list[Callable[[Owner], None]] = []
        self._adopting = KeyedLocks()

    # -- models -------------------------------------------------------------------------

    def models(self) -> list[dict]:
        """The listed models with their availability; the default one first."""
        default = self.catalog.default.id
        return [
            {
                "id": m.id,
                "name": m.name,
                "description": m.description,
                "available": not (why := self.endpoints.why_unavailable(m)),
                "unavailable_reason": why,  # "" when available
                "default": m.id == default,
            }
            for m in self.catalog.listed
        ]

    def _model_for_new(self, model_id: str) -> Model:
        if not model_id:
            return self.catalog.default
        model = self.catalog.get(model_id)
        if model is None:  # unlisted models are usable by id, just not shown
            raise ServiceError(f"unknown model: {model_id}")
        if model.retired is not None:
            raise ServiceError(
                f"{model.name} was retired on {model.retired.on}; choose another model."
            )
        if why := self.endpoints.why_unavailable(model):
            raise ServiceError(f"{model.name} is not available on this server right now: {why}.")
        return model

    def _model_for(self, conversation: dict) -> Model:
        """The model that answers in a conversation (a retired one hands over)."""
        model = self.catalog.get(conversation["model"]) or self.catalog.default
        if model.retired is not None:
            model = self.catalog.get(model.retired.transfer_to) or self.catalog.default
        return model

    def retirement_notice(self, conversation: dict) -> str:
        model = self.catalog.get(conversation["model"])
        if model is None or model.retired is None:
            return ""
        heir = self.catalog.get(model.retired.transfer_to)
        return (
            f"{model.name} was retired on {model.retired.on}. "
            f"{heir.name if heir else 'Another model'} continues this conversation."
        )

    # -- conversations ------------------------------------------------------------------

    def new_conversation(self, owner: Owner, model_id: str = "") -> dict:
        model = self._model_for_new(model_id)
        return self.history.create_conversation(owner.id, model=model.id)

    def conversations(self, owner: Owner, limit: int = 0) -> list[dict]:
        """Newest first: all of them, or the newest `limit` (a page) when limit > 0."""
        return [
            {k: c[k] for k in ("id", "title", "model", "updated_at")}
            for c in self.history.list_conversations(owner.id, limit if limit > 0 else None)
        ]

    def conversation(self, owner: Owner, conversation_id: str) -> dict:
        conv = self._load(owner, conversation_id)
        writing = (owner.id, conversation_id) in self._stops
        conv["messages"] = [
            {
                k: m.get(k)
                for k in ("id", "role", "content", "created_at", "model", "incomplete", "notice")
            }
            for m in conv["messages"]
        ]
        for m in conv["messages"]:  # an answer's end is saved with why it is incomplete,
            if m["incomplete"] and not m["notice"] and not writing:  # unless the server died
                m["notice"] = SERVER_STOPPED
        conv["notice"] = self.retirement_notice(conv)  # empty unless its model was retired
        return conv

    def _load(self, owner: Owner, conversation_id: str) -> dict:
        try:
            conv = self.history.get_conversation(owner.id, conversation_id)
        except store.CorruptFile:
            log.error("a conversation file is damaged and was left untouched")
            raise ServiceError(
                "This conversation's stored file is damaged and cannot be opened. "
                "It has been left untouched so that it can be recovered."
            ) from None
        if conv is None:
            raise ServiceError(NOT_FOUND)
        return conv

    def rename_conversation(self, owner: Owner, conversation_id: str, title: str) -> dict:
        title = " ".join(title.split())[: store.MAX_TITLE_CHARS]
        if not title:
            raise ServiceError("A title cannot be empty.")
        row = self.history.rename_conversation(owner.id, conversation_id, title)
        if row is None:
            raise ServiceError(NOT_FOUND)
        return {k: row[k] for k in ("id", "title", "model", "updated_at")}

    def delete_conversation(self, owner: Owner, conversation_id: str) -> bool:
        """Delete for good: the answer being written in it stops and is never saved."""
        self.stop(owner, conversation_id)
        return self.history.delete_conversation(owner.id, conversation_id)

    def delete_all_conversations(self, owner: Owner) -> int:
        """Delete every conversation for good, stop their answers, and tell the doors
        (`when_all_deleted`) to drop what they keep of them (the page's export files)."""
        for who, conversation_id in list(self._stops):
            if who == owner.id:
                self.stop(owner, conversation_id)
        deleted = self.history.delete_all_conversations(owner.id)
        for forget in self._all_deleted:
            forget(owner)
        return deleted

    def when_all_deleted(self, forget: Callable[[Owner], None]) -> None:
        """Call `forget(owner)` whenever someone deletes all their conversations."""
        self._all_deleted.append(forget)

    # -- settings, export, import ---------------------------------------------------------

    SHARE = sharing.SETTING

    def settings(self, owner: Owner) -> dict:
        """The person's settings. Sharing appears only where the deployment offers it."""
        stored = self.history.get_settings(owner.id)
        return {self.SHARE: bool(stored.get(self.SHARE))} if self.data_sharing else {}

    def update_settings(self, owner: Owner, changes: dict) -> dict:
        if not isinstance(changes, dict):
            raise ServiceError("Settings must be an object of setting names and values.")
        known = set(self.settings(owner))
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ServiceError(f"Unknown setting: {', '.join(map(str, unknown))}.")
        if self.SHARE in changes:
            if not isinstance(changes[self.SHARE], bool):
                raise ServiceError(f"'{self.SHARE}' must be true or false.")
            if not changes[self.SHARE]:
                self._withdraw_consent(owner)
        self.history.update_settings(owner.id, changes)
        return self.settings(owner)

    def _withdraw_consent(self, owner: Owner, ids: list[str] | None = None) -> None:
        """No conversation of the person (or just those `ids`) is shared any more."""
        if ids is None:
            ids = [conv["id"] for conv in self.history.list_conversations(owner.id)]
        for conversation_id in ids:
            self.history.set_conversation_fields(owner.id, conversation_id, consent=None)

    def _record_consent(self, owner: Owner, conversation_id: str, model: Model) -> None:
        """While the person shares with model authors, mark the conversation as covered."""
        consent = self._consent(owner, model)
        if not consent:
            return
        row = self.history.conversation_row(owner.id, conversation_id) or {}
        if not row.get("consent"):
            self.history.set_conversation_fields(owner.id, conversation_id, **consent)

    def _consent(self, owner: Owner, model: Model) -> dict:
        """The conversation field that marks it as shared, while the person shares (else {})."""
        if not self.data_sharing:
            return {}
        try:
            sharing = self.settings(owner).get(self.SHARE)
        except store.CorruptFile:  # damaged settings cannot say yes: the chat goes on, unshared
            log.error("a settings file is damaged and was left untouched")
            sharing = False
        return {"consent": {"at": store.now(), "model": model.id}} if sharing else {}

    def export(self, owner: Owner) -> dict:
        """All the person's data as one JSON document (schema in `portability`)."""
        return portability.export_owner(self.history, owner.id, self.settings(owner))

    def import_data(self, owner: Owner, data: str) -> int:
        """Add the conversations of an export; a document past `import_limits` is refused."""
        try:
            document = portability.parse_export(data, self.import_limits)
        except portability.PortabilityError as e:
            raise ServiceError(str(e)) from None
        return portability.import_into(self.history, owner.id, document)

    def adopt(self, account: Owner, anonymous: Owner) -> int:
        """On login: move the anonymous visitor's data to the account (merged with what the
        account has) and retire the visitor's id, so an old copy of its cookie reaches
        nothing. A visitor with no data is left as it is.

        Every event of a signed-in person asks, almost always about a visitor with nothing
        to move (retired, or the fresh cookie given after sign-in): that is answered without
        any lock. A move holds a lock of that visitor's only, so that two events moving the
        same visitor at once move it once, and holds no one else up."""
        if self.history.is_retired(anonymous.id) or not self.history.has_files(anonymous.id):
            return 0
        with self._adopting.hold(anonymous.id):
            if not self._has_data(anonymous):  # or moved meanwhile by another event
                return 0
            shared = self.history.get_settings(anonymous.id).get(self.SHARE)
            ids = [c["id"] for c in self.history.list_conversations(anonymous.id)]
            moved = self.history.move_owner(anonymous.id, account.id)
            if shared and not self.history.get_settings(account.id).get(self.SHARE):
                self._withdraw_consent(account, ids)  # the account's "off" won the merge
        log.info("moved %d conversation(s) of a visitor to their account at login", moved)
        return moved

    def _has_data(self, owner: Owner) -> bool:
        return not self.history.is_retired(owner.id) and bool(
            self.history.get_settings(owner.id) or self.history.list_conversations(owner.id, 1)
        )

    # -- chatting -----------------------------------------------------------------------

    def check_message(self, message: str) -> str:
        text = (message or "").strip()
        if not text:
            raise ServiceError("Type a message first: an empty message is not sent.")
        if len(text) > self.max_message_chars:
            raise ServiceError(
                f"Your message is {len(text):,} characters long; the limit is "
                f"{self.max_message_chars:,}. Shorten it and send it again."
            )
        return text

    def stop(self, owner: Owner, conversation_id: str) -> bool:
        """Stop the answer being written in this conversation; what was written is kept."""
        event = self._stops.get((owner.id, conversation_id))
        if event is None:
            return False
        event.set()
        return True

    async def send(
        self, owner: Owner, message: str, conversation_id: str = "", model_id: str = ""
    ) -> AsyncIterator[ChatUpdate]:
        """Store the message, stream the answer, store it as it grows.

        The person's message is always stored before any of the answer is (its first words
        may show while that write is under way: `ChatUpdate.stored` says when it is done);
        the answer is stored every few seconds while it streams, and at the end marked
        complete, stopped or failed (with the reason).
        """
        text = self.check_message(message)
        if conversation_id:  # read and parsed in a worker thread: it may be large
            conv = await asyncio.to_thread(self._load, owner, conversation_id)
        else:  # created with its first message, in _store_question
            conv = {"id": "", "model": self._model_for_new(model_id).id, "messages": []}
        async with contextlib.aclosing(self._generate(owner, conv, text)) as updates:
            async for update in updates:
                yield update

    async def retry(self, owner: Owner, conversation_id: str) -> AsyncIterator[ChatUpdate]:
        """Write the last answer again (after a failure, or to get another one)."""
        conv = await asyncio.to_thread(self._without_last_answer, owner, conversation_id)
        async with contextlib.aclosing(self._generate(owner, conv, None)) as updates:
            async for update in updates:
                yield update

    def _without_last_answer(self, owner: Owner, conversation_id: str) -> dict:
        """The conversation, its last answers deleted (in a worker thread: files)."""
        conv = self._load(owner, conversation_id)
        messages = conv["messages"]
        while messages and messages[-1]["role"] == "assistant":
            if (owner.id, conversation_id) in self._stops:
                raise ServiceError(BUSY)
            self.history.delete_message(owner.id, conversation_id, messages.pop()["id"])
        if not messages:
            raise ServiceError("There is no message to answer again in this conversation.")
        return conv

    def _store_question(
        self, owner: Owner, conv: dict, cid: str, model: Model, text: str | None
    ) -> None:
        """Create the conversation if it is new, record the sharing consent, store the
        person's message. Runs in a worker thread: each write fsyncs (ms on a real disk)."""
        if not conv["id"]:  # one write: the row, its consent, the message
            self.history.create_conversation(
                owner.id,
                model=conv["model"],
                conversation_id=cid,
                first_message=text,
                **self._consent(owner, model),
            )
            return
        self._record_consent(owner, cid, model)  # before the message, so that it is covered
        if text is not None:
            self.history.append_message(owner.id, cid, role="user", content=text)

    async def _generate(
        self, owner: Owner, conv: dict, text: str | None
    ) -> AsyncIterator[ChatUpdate]:
        model = self._model_for(conv)
        cid = conv["id"] or store.new_id()
        key = (owner.id, cid)
        if key in self._stops:
            raise ServiceError(BUSY)
        self._stops[key] = stop = asyncio.Event()
        try:
            history = list(conv["messages"])
            if text is not None:
                history.append({"role": "user", "content": text})
            prompt = build_messages(
                history,
                system_prompt=model.system_prompt,
                context_window=model.context_window,
                max_tokens=model.parameters.max_tokens or 512,
            )
            # The request to the model leaves first. The person's message is written in a
            # worker thread meanwhile: the fsyncs stay out of the time to first token and
            # never stall the event loop other chats stream on. The answer is only ever
            # written after it (see _answer), and frames say when it is stored.
            stream = self.endpoints.stream(model, prompt)
            head = asyncio.ensure_future(anext(stream, None))
            stored = asyncio.ensure_future(
                asyncio.to_thread(self._store_question, owner, conv, cid, model, text)
            )
            stored.add_done_callback(_log_store_failure)
            # Closed with this generator, so that an answer cut short is saved before it ends.
            answer = self._answer(owner, cid, model, stream, head, stored, stop)
            async with contextlib.aclosing(answer) as updates:
                async for update in updates:
                    if update.done:  # free the conversation before the caller hears it ended
                        self._free(key, stop)
                    yield update
        finally:
            self._free(key, stop)

    def _spread(self, seconds: float, budget: float) -> float:
        """`seconds`, or longer when so many answers stream at once that doing something
        every `seconds` in each would pass `budget` times a second in all. An answer alone
        always keeps `seconds` (with frame_seconds=0, a frame for every token)."""
        streaming = len(self._stops)
        return max(seconds, streaming / budget) if streaming > 1 else seconds

    _closing = False  # set by shutdown(): answers stopped from then on say the server stopped

    async def shutdown(self, timeout: float = 5.0) -> int:
        """The server is about to exit: stop every answer in progress, and wait (at most
        `timeout` seconds) until each is saved with SERVER_STOPPED. Returns how many."""
        self._closing = True
        stops = list(self._stops.values())
        for stop in stops:
            stop.set()
        deadline = time.monotonic() + timeout
        while self._stops and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return len(stops)

    def _free(self, key: tuple[str, str], stop: asyncio.Event) -> None:
        """The conversation takes a next message (unless a next one has already begun)."""
        if self._stops.get(key) is stop:
            del self._stops[key]

    async def _answer(
        self,
        owner: Owner,
        cid: str,
        model: Model,
        stream: AsyncIterator[str],
        head: asyncio.Future,
        stored: asyncio.Future,
        stop: asyncio.Event,
    ) -> AsyncIterator[ChatUpdate]:
        parts: list[str] = []
        last_frame, last_save = 0.0, time.monotonic()
        notice, failed = "", False
        saved: dict = {}  # the stored answer, once written

        def save(**fields) -> None:
            # The answer is first written after SAVE_EVERY seconds (or at its end), not before
            # its first token: the disk stays out of the time to first token.
            if "id" in saved:
                self.history.update_message(owner.id, cid, saved["id"], **fields)
            else:
                saved.update(
                    self.history.append_message(
                        owner.id,
                        cid,
                        role="assistant",
                        model=model.id,
                        **{"content": "", "incomplete": True, **fields},
                    )
                    or {}
                )

        def question_stored() -> bool:
            return stored.done() and not stored.cancelled() and stored.exception() is None

        try:
            yield ChatUpdate(cid, "", stored=question_stored())
            async for piece in _after(head, stream):
                parts.append(piece)
                if stop.is_set():
                    notice = SERVER_STOPPED if self._closing else "Stopped."
                    break
                now = time.monotonic()
                # Under load the words come a few at a time instead of everyone's answer
                # falling behind: a frame costs the web server the same whatever it holds.
                if now - last_frame >= self._spread(self.frame_seconds, self.frame_budget):
                    last_frame = now
                    yield ChatUpdate(cid, "".join(parts), stored=question_stored())
                if now - last_save >= self._spread(SAVE_EVERY, SAVE_BUDGET):
                    last_save = now
                    await stored  # the question first, always
                    await asyncio.to_thread(save, content="".join(parts))
        except ChatError as e:
            notice, failed = str(e), True
        except (asyncio.CancelledError, GeneratorExit):
            # The page or client went away mid-answer: keep what was written, saved in a
            # worker thread (shielded: a second cancel leaves the save to finish there).
            if question_stored():
                interrupted = asyncio.to_thread(
                    save,
                    content="".join(parts),
                    incomplete=True,
                    notice="Interrupted: the page was closed before the answer ended.",
                )
                await asyncio.shield(interrupted)
            raise
        finally:
            await _close(head, stream)
        await stored  # the question first, always (raises if it could not be stored)
        text = "".join(parts)
        await asyncio.to_thread(save, content=text, incomplete=bool(notice), notice=notice)
        yield ChatUpdate(cid, text, done=True, notice=notice, failed=failed, stored=True)


def _log_store_failure(stored: asyncio.Future) -> None:
    """Say when a person's message could not be stored (never what it said)."""
    if not stored.cancelled() and stored.exception() is not None:
        log.error("a message could not be stored: %r", type(stored.exception()).__name__)


async def _close(head: asyncio.Future, stream: AsyncIterator[str]) -> None:
    """Cancel the request for the first piece if it is still out, and close the stream."""
    if not head.done():
        head.cancel()
        with contextlib.suppress(BaseException):
            await head
    await stream.aclose()  # type: ignore[attr-defined]


async def _after(head: asyncio.Future, stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """The pieces of `stream`, whose first one `head` is already fetching."""
    first = await head
    if first is None:
        return
    yield first
    async for piece in stream:
        yield piece
