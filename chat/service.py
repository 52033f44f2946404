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
from . import (
    importers,
    portability,
    preferences,
    search_index,
    sharing,
    titles,
    transcript,
    tree,
    watermark,
)
from .answers import Answer, Answers, ChatUpdate
from .catalog import Catalog, Model
from .endpoints import ChatError, Endpoints, Finish
from .identity import Owner
from .limits import LimitReached, Limits
from .locks import KeyedLocks
from .prompt import build_messages
from .scratch import Scratch
from .settings import ImportLimits
from .shares import Shares
from .store import Store

log = logging.getLogger("parlor.service")

NOT_FOUND = "conversation not found"
NO_MESSAGE = "message not found"
NO_SHARE = "share link not found"
NOT_KEPT = "This is a temporary chat: it is never saved, so it cannot be {what}."
HISTORY_OFF = "History is off on this server: conversations are never saved, so {what}."
FEEDBACK_RATINGS = ("up", "down", "")
MAX_FEEDBACK_CHARS = 2000
STOPPED = "Stopped."
BUSY = "An answer is still being written in this conversation."
SAVE_EVERY = 2.0  # seconds between saves of an answer in progress (crash safety)
# Saves a second of all the answers in progress together: past it, each answer is saved
# less often than SAVE_EVERY (200 at once: every 4 s). Each save rewrites and fsyncs the
# conversation's file; at 100 a second they took a fifth of the server's CPU.
SAVE_BUDGET = 50.0
# An answer saved while it streamed whose end was never written: the server stopped.
SERVER_STOPPED = "Interrupted: the server stopped before the answer ended."
MAX_QUERY_CHARS = 200  # a search is a few words; a page of text is not one
MAX_RESULTS = 100


class ServiceError(Exception):
    """A request that cannot be served; the message is written for the person asking."""


class TooManyAnswers(ServiceError):
    """An answer refused for now: the limits of answers in progress are reached."""


class Limited(TooManyAnswers):
    """A message refused by a usage limit (chat/limits.py) for `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        history: Store,
        endpoints: Endpoints,
        max_message_chars: int,
        frame_seconds: float,
        frame_budget: float = 800.0,
        data_sharing: bool = False,
        import_limits: ImportLimits | None = None,
        answer_limits: tuple[int, int] = (4, 1000),
        model_titles: bool = True,
        store_messages: bool = True,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()  # usage limits: none unless the settings name some
        self.data_sharing = data_sharing
        self.import_limits = import_limits or ImportLimits(message_chars=max_message_chars)
        self.catalog = catalog
        self.history = history
        self.endpoints = endpoints
        self.max_message_chars = max_message_chars
        self.frame_seconds = frame_seconds
        self.frame_budget = frame_budget
        self.answers = Answers()
        self.max_answers_per_person, self.max_answers = answer_limits
        self._all_deleted: list[Callable[[Owner], None]] = []
        self._adopting = KeyedLocks()
        self.share_store = Shares(history)
        # titles being written, by (owner id, conversation id); kept referenced
        self._titling: dict[tuple[str, str], asyncio.Future] = {}
        self.model_titles = model_titles
        # Temporary conversations, in memory only (chat/scratch.py): every one of them when
        # the deployment stores no messages.
        self.scratch = Scratch()
        self.store_messages = store_messages

    # -- models -------------------------------------------------------------------------

    def models(self, owner: Owner | None = None) -> list[dict]:
        """The listed models with their availability to `owner` (None: to the server itself,
        with its own tokens); the default one first."""
        default = self.catalog.default.id
        return [
            {
                "id": m.id,
                "name": m.name,
                "description": m.description,
                "available": not (why := self.endpoints.why_unavailable(m, owner)),
                "unavailable_reason": why,  # "" when available
                "default": m.id == default,
            }
            for m in self.catalog.listed
        ]

    def _model_for_new(self, model_id: str, owner: Owner) -> Model:
        if not model_id:
            return self.catalog.default
        model = self.catalog.get(model_id)
        if model is None:  # unlisted models are usable by id, just not shown
            raise ServiceError(f"unknown model: {model_id}")
        if model.retired is not None:
            raise ServiceError(
                f"{model.name} was retired on {model.retired.on}; choose another model."
            )
        if why := self.endpoints.why_unavailable(model, owner):
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
        if model is None:  # an imported conversation's model, or one no longer listed
            return (
                f"{conversation['model']} is not on this server: "
                f"{self.catalog.default.name} continues this conversation."
            )
        if model.retired is None:
            return ""
        heir = self.catalog.get(model.retired.transfer_to)
        return (
            f"{model.name} was retired on {model.retired.on}. "
            f"{heir.name if heir else 'Another model'} continues this conversation."
        )

    # -- conversations ------------------------------------------------------------------

    def new_conversation(
        self, owner: Owner, model_id: str = "", *, temporary: bool = False, scope: str = ""
    ) -> dict:
        """An empty conversation; a `temporary` one (never written to disk) is kept for
        `scope` (the page that made it: see `drop_temporary`)."""
        model = self._model_for_new(model_id, owner) if model_id else self.default_model(owner)
        prompt = self._system_prompt_for(owner, model)
        if self._in_memory(temporary):
            return self.scratch.create_conversation(
                owner.id, model=model.id, system_prompt=prompt, scope=scope
            ) | {"temporary": True}
        row = self.history.create_conversation(owner.id, model=model.id, system_prompt=prompt)
        return row | {"temporary": False}

    # -- temporary conversations (chat/scratch.py) ---------------------------------------

    def _in_memory(self, asked: bool = False) -> bool:
        """Whether a new conversation is temporary: when `asked`, or always when the
        deployment stores no messages."""
        return asked or not self.store_messages

    def is_temporary(self, owner: Owner, conversation_id: str) -> bool:
        return self.scratch.holds(owner.id, conversation_id)

    def drop_temporary(self, owner: Owner, scope: str | None = None) -> int:
        """Forget the person's temporary conversations kept for `scope` (a page that closed
        or turned Temporary chat off; None: all of them), stopping their answers. How many."""
        gone = self.scratch.drop(owner.id, scope)
        for cid in gone:
            self.stop(owner, cid)
        return len(gone)

    def _store(self, owner: Owner, conversation_id: str) -> store.History | Scratch:
        """Where this conversation of the person's is kept: in memory (temporary) or on disk."""
        if self.scratch.holds(owner.id, conversation_id):
            return self.scratch
        return self.history

    def default_model(self, owner: Owner) -> Model:
        """The person's default model while it can be used, else the deployment's."""
        model = self.catalog.get(self._readable_settings(owner).get("default_model") or "")
        usable = model is not None and not self.endpoints.why_unavailable(model, owner)
        if model is None or model.retired is not None or not usable:
            return self._model_for_new("", owner)
        return model

    def _system_prompt_for(self, owner: Owner, model: Model) -> str:
        """The prompt a new conversation with `model` starts with, and keeps."""
        custom = self._readable_settings(owner).get("system_prompts") or {}
        return custom.get(model.id) or model.system_prompt

    def _why_unavailable_to(self, owner: Owner) -> Callable[[Model], str]:
        return lambda model: self.endpoints.why_unavailable(model, owner)

    def _readable_settings(self, owner: Owner) -> dict:
        """The stored settings, or none when their file is damaged: the chat goes on."""
        try:
            return self.history.get_settings(owner.id)
        except store.CorruptFile:
            log.error("a settings file is damaged and was left untouched")
            return {}

    def conversations(self, owner: Owner, limit: int = 0) -> list[dict]:
        """Newest first: all of them, or the newest `limit` (a page) when limit > 0. Temporary
        conversations are never listed; with history off, none is."""
        if not self.store_messages:
            return []
        return [
            {k: c[k] for k in ("id", "title", "model", "updated_at")}
            # A limit past anyone's count means all (itertools.islice refuses > sys.maxsize).
            for c in self.history.list_conversations(owner.id, limit if 0 < limit < 2**31 else None)
        ]

    def conversation(self, owner: Owner, conversation_id: str) -> dict:
        """The conversation: `messages` on the shown path (root to `leaf_id`, ids in `path`),
        `all_messages` of every branch; each message with its `siblings` (ids, its own
        included) and whether it can be `continuable`. An answer being written shows as far
        as it has got (`writing`)."""
        conv = self._load(owner, conversation_id)
        live = self.answers.get((owner.id, conversation_id))
        messages = conv["messages"]
        if live is not None:
            messages, conv["leaf_id"] = _with_live(messages, live), live.message_id
        for m in messages:  # an answer's end is saved with why it is incomplete,
            if m.get("incomplete") and not m.get("notice"):  # unless the server died
                if live is None or m["id"] != live.message_id:
                    m["notice"] = SERVER_STOPPED
        shown = tree.path(messages, conv["leaf_id"])
        replies = tree.replies(messages)
        public = {m["id"]: _public(m, replies) for m in messages}
        conv["path"] = [m["id"] for m in shown]
        conv["messages"] = [public[m["id"]] for m in shown]
        conv["all_messages"] = list(public.values())
        conv["writing"] = live is not None
        conv["notice"] = self.retirement_notice(conv)  # empty unless its model is retired or absent
        conv["temporary"] = self.is_temporary(owner, conversation_id)
        return conv

    def search(self, owner: Owner, query: str, limit: int = 20) -> list[dict]:
        """The owner's conversations holding every word of `query` (case ignored, a word may
        be part of a longer one) in their title or any message of any branch, newest first,
        at most `limit` (1 to MAX_RESULTS). Each: id, title, model, updated_at, match_in
        ("title" when the title holds every word, else "message"), message_id (the first
        message holding a word the title lacks; None for a title match), snippet (plain text
        around that match, "…" where cut) and marks ([start, end) character offsets of the
        query's words in the snippet). An empty query finds nothing."""
        if len(query) > MAX_QUERY_CHARS:
            raise ServiceError(
                f"A search is at most {MAX_QUERY_CHARS} characters long; "
                f"this one has {len(query)}. Search for a few words instead."
            )
        limit = min(max(limit, 1), MAX_RESULTS)
        if not self.store_messages:
            return []
        hits = self.history.search(owner.id, search_index.words(query), limit)
        keys = ("id", "title", "model", "updated_at", "snippet", "marks", "match_in", "message_id")
        return [{k: hit[k] for k in keys} for hit in hits]

    def _load(self, owner: Owner, conversation_id: str) -> dict:
        try:
            conv = self._store(owner, conversation_id).get_conversation(owner.id, conversation_id)
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
        row = self._store(owner, conversation_id).rename_conversation(
            owner.id, conversation_id, title
        )
        if row is None:
            raise ServiceError(NOT_FOUND)
        return {k: row[k] for k in ("id", "title", "model", "updated_at")}

    def feedback(
        self, owner: Owner, conversation_id: str, message_id: str, rating: str, comment: str = ""
    ) -> dict:
        """Rate one answer "up" or "down" with an optional comment; "" clears the rating.
        Returns the message's feedback ({rating, comment, at} or None)."""
        if rating not in FEEDBACK_RATINGS:
            raise ServiceError('A rating is "up", "down", or "" to clear it.')
        message = self._message(self._load(owner, conversation_id), message_id)
        if message["role"] != "assistant":
            raise ServiceError("Only answers can be rated.")
        comment = comment.strip()[:MAX_FEEDBACK_CHARS]
        value = {"rating": rating, "comment": comment, "at": store.now()} if rating else None
        kept = self._store(owner, conversation_id)
        if not kept.update_message(owner.id, conversation_id, message_id, feedback=value):
            raise ServiceError(NO_MESSAGE)
        return {"message_id": message_id, "feedback": value}

    def delete_conversation(self, owner: Owner, conversation_id: str) -> bool:
        """Delete for good: the answer being written in it stops and is never saved."""
        self.stop(owner, conversation_id)
        if self.scratch.delete_conversation(owner.id, conversation_id):
            return True
        deleted = self.history.delete_conversation(owner.id, conversation_id)
        if deleted:  # its links go with it
            self.share_store.remove_for(owner.id, {conversation_id})
        return deleted

    def delete_all_conversations(self, owner: Owner) -> int:
        """Delete every conversation for good, stop their answers, and tell the doors
        (`when_all_deleted`) to drop what they keep of them (the page's export files)."""
        for live in self.answers.owned_by(owner.id):
            live.stop()
        self.scratch.drop(owner.id)
        deleted = self.history.delete_all_conversations(owner.id)
        self.share_store.remove_for(owner.id, None)
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
        shared = {self.SHARE: bool(stored.get(self.SHARE))} if self.data_sharing else {}
        return {**preferences.current(stored), **shared}

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
        if why := preferences.check(changes, self.catalog, self._why_unavailable_to(owner)):
            raise ServiceError(why)
        if self.SHARE in changes and not changes[self.SHARE]:
            self._withdraw_consent(owner)
        if "system_prompts" in changes:  # merged per model; an empty prompt means the model's own
            prompts = {**self.settings(owner)["system_prompts"], **changes["system_prompts"]}
            changes = {**changes, "system_prompts": {k: v for k, v in prompts.items() if v}}
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
        # damaged settings cannot say yes: the chat goes on, unshared
        sharing = self._readable_settings(owner).get(self.SHARE) is True
        return {"consent": {"at": store.now(), "model": model.id}} if sharing else {}

    def export(self, owner: Owner) -> dict:
        """All the person's data as one JSON document (schema in `portability`)."""
        return portability.export_owner(self.history, owner.id, self.settings(owner))

    def import_data(self, owner: Owner, data: str | bytes) -> int:
        """Add the conversations of an export (see `import_report`); how many were added."""
        return self.import_report(owner, data)["imported"]

    def import_report(self, owner: Owner, data: str | bytes) -> dict:
        """Add the conversations of a Parlor, HuggingChat (zip or JSON), ChatGPT or Open
        WebUI export (see `importers`): `{"imported": n}`, with `skipped` and `reasons` when
        some could not be read, and `notes` (models this server lacks). Conversations
        already there are skipped silently (importing twice adds nothing); a document past
        `import_limits` is refused whole."""
        if not self.store_messages:
            raise ServiceError(HISTORY_OFF.format(what="nothing can be imported"))
        try:
            batch = importers.read(data, self.import_limits)
        except portability.PortabilityError as e:
            raise ServiceError(str(e)) from None
        added = portability.import_into(self.history, owner.id, batch.document)
        notes = self._unknown_models(batch.document) if added else []
        notes += self._import_settings(owner, batch.document.get("settings") or {})
        return batch.report(added, notes)

    CARRIED = ("default_model", "system_prompts", "theme")  # sharing is never carried

    def _import_settings(self, owner: Owner, imported: dict) -> list[str]:
        """Take an export's settings where the person has set none: their own always win,
        and consent to sharing must be given here, never imported. The notes: what was not
        taken (a default model this server lacks...)."""
        if not isinstance(imported, dict):
            return []
        mine = self.history.get_settings(owner.id)
        changes, notes = {}, []
        for key in self.CARRIED:
            value = imported.get(key)
            if key not in imported or value in ("", {}, None):
                continue
            if key == "system_prompts" and isinstance(value, dict):
                value = {**value, **(mine.get(key) or {})}  # theirs per model win
            elif key in mine:
                continue
            why = preferences.check({key: value}, self.catalog, self._why_unavailable_to(owner))
            if why:
                notes.append(f"A setting was not imported: {why}")
            else:
                changes[key] = value
        if changes:
            self.history.update_settings(owner.id, changes)
        return notes

    def _unknown_models(self, document: dict) -> list[str]:
        conversations = document.get("conversations", [])
        missing = [m for m in importers.models_of(conversations) if self.catalog.get(m) is None]
        if not missing:
            return []
        return [
            f"Made with models this server does not have ({', '.join(missing[:10])}"
            f"{', …' if len(missing) > 10 else ''}): their names are kept, and "
            f"{self.catalog.default.name} answers in those conversations."
        ]

    def export_markdown(self, owner: Owner, conversation_id: str) -> str:
        """One conversation as Markdown: its title, model and times, then the branch shown,
        each answer's reasoning folded in a collapsed <details>."""
        return transcript.as_markdown(self.conversation(owner, conversation_id))

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
            self.share_store.move(anonymous.id, account.id)  # before the visitor's folder goes
            moved = self.history.move_owner(anonymous.id, account.id)
            if shared and not self.history.get_settings(account.id).get(self.SHARE):
                self._withdraw_consent(account, ids)  # the account's "off" won the merge
        log.info("moved %d conversation(s) of a visitor to their account at login", moved)
        return moved

    def _has_data(self, owner: Owner) -> bool:
        return not self.history.is_retired(owner.id) and bool(
            self.history.get_settings(owner.id) or self.history.list_conversations(owner.id, 1)
        )

    # -- share links --------------------------------------------------------------------

    def share(self, owner: Owner, conversation_id: str) -> dict:
        """A read-only link to the conversation's shown branch as it is now (later messages
        are not in it): {id, url, created_at, title}. It names no one."""
        conv = self.conversation(owner, conversation_id)
        if conv["temporary"]:  # a link's snapshot is a file
            raise ServiceError(NOT_KEPT.format(what="shared"))
        keys = ("role", "content", "created_at", "model")
        messages = [{k: m.get(k) for k in keys} for m in conv["messages"]]
        link = self.share_store.create(owner.id, conv, messages)
        if self.history.conversation_row(owner.id, conversation_id) is None:
            self.share_store.revoke(owner.id, link["id"])  # deleted meanwhile: deleting wins
            raise ServiceError(NOT_FOUND)
        return _linked(link)

    def shares(self, owner: Owner) -> list[dict]:
        """The person's links, newest first: id, url, created_at, title."""
        return [_linked(row) for row in self.share_store.listing(owner.id)]

    def revoke_share(self, owner: Owner, share_id: str) -> bool:
        """Delete one of the person's links: it answers 404 from now on."""
        return self.share_store.revoke(owner.id, share_id)

    def shared(self, share_id: str) -> dict | None:
        """A link's snapshot, for anyone holding the link (None: no such link)."""
        return self.share_store.snapshot(share_id)

    def continue_shared(self, owner: Owner, share_id: str) -> str:
        """Copy a link's snapshot into the person's history as a new conversation of
        theirs; its id."""
        snapshot = self.share_store.snapshot(share_id)
        if snapshot is None:
            raise ServiceError(NO_SHARE)
        if not self.store_messages:
            raise ServiceError(HISTORY_OFF.format(what="a link cannot be copied into it"))
        rows, parent = [], None
        for m in snapshot["messages"]:
            row = store.message_row(
                m["role"],
                m["content"],
                parent_id=parent,
                stamp=m.get("created_at") or "",
                model=m.get("model"),
            )
            rows.append(row)
            parent = row["id"]
        stamp = store.now()
        conversation = {
            "id": store.new_id(),
            "title": snapshot["title"],
            "model": snapshot["model"],
            "created_at": stamp,
            "updated_at": stamp,
            "leaf_id": parent,
            "shape": store.SHAPE,
        }
        self.history.add_conversations(owner.id, [(conversation, rows)])
        return conversation["id"]

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

    # -- answers: each one a task of the server's (chat/answers.py) ----------------------

    def writing(self, owner: Owner, conversation_id: str) -> bool:
        """Whether an answer is being written in this conversation right now."""
        return self.answers.get((owner.id, conversation_id)) is not None

    def stop(self, owner: Owner, conversation_id: str) -> bool:
        """Stop the answer being written in this conversation, from any page or client (and
        any thread): the request to the model is cancelled, what was written is kept."""
        live = self.answers.get((owner.id, conversation_id))
        if live is None:
            return False
        live.stop()
        return True

    async def send(
        self,
        owner: Owner,
        message: str,
        conversation_id: str = "",
        model_id: str = "",
        *,
        temporary: bool = False,
        scope: str = "",
    ) -> AsyncIterator[ChatUpdate]:
        """Store the message below the shown leaf, write the answer, follow it.

        The person's message is always stored before any of the answer is (its first words
        may show while that write is under way: `ChatUpdate.stored` says when it is done);
        the answer is stored every few seconds while it streams, and at the end marked
        complete, stopped or failed (with the reason). Leaving never stops it: see `follow`.
        A new conversation that is `temporary` is kept in memory only, for `scope` (see
        `new_conversation`).
        """
        text = self.check_message(message)
        if conversation_id:  # read and parsed in a worker thread: it may be large
            conv = await asyncio.to_thread(self._load, owner, conversation_id)
        else:  # created with its first message, in _store_turn
            model = self._model_for_new(model_id, owner) if model_id else self.default_model(owner)
            prompt = self._system_prompt_for(owner, model)
            conv = {"id": "", "model": model.id, "messages": [], "leaf_id": None}
            conv["system_prompt"] = prompt
            if self._in_memory(temporary):
                conv["scope"] = scope  # kept in memory (see _store_turn)
        async for update in self._write(owner, self._asked(conv, text, conv["leaf_id"])):
            yield update

    async def edit(
        self, owner: Owner, conversation_id: str, message_id: str, message: str
    ) -> AsyncIterator[ChatUpdate]:
        """Ask again with `message` in place of the person's message `message_id`: a new
        branch beside it, answered afresh. The old branch stays as it was."""
        text = self.check_message(message)
        conv = await asyncio.to_thread(self._load, owner, conversation_id)
        target = self._message(conv, message_id)
        if target["role"] != "user":
            raise ServiceError("Only your own messages can be edited; answer again instead.")
        async for update in self._write(owner, self._asked(conv, text, target["parent_id"])):
            yield update

    async def retry(
        self, owner: Owner, conversation_id: str, message_id: str = ""
    ) -> AsyncIterator[ChatUpdate]:
        """Another answer beside the answer `message_id` (default: the shown one); the first
        one stays, and both can be browsed. A question left unanswered is answered."""
        conv = await asyncio.to_thread(self._load, owner, conversation_id)
        target = self._message(conv, message_id or conv["leaf_id"] or "")
        asked = target["parent_id"] if target["role"] == "assistant" else target["id"]
        if asked is None:
            raise ServiceError("There is no message to answer again in this conversation.")
        prompt = tree.path(conv["messages"], asked)
        answer = self._new_answer(conv, asked)
        async for update in self._write(owner, _Turn(conv, prompt, [answer], answer)):
            yield update

    async def continue_answer(
        self, owner: Owner, conversation_id: str, message_id: str = ""
    ) -> AsyncIterator[ChatUpdate]:
        """Go on writing the answer `message_id` (default: the shown one) where it ended: cut
        by the model's length limit, or stopped. The model is sent it as its own last turn."""
        conv = await asyncio.to_thread(self._load, owner, conversation_id)
        target = self._message(conv, message_id or conv["leaf_id"] or "")
        if not _continuable(target, tree.replies(conv["messages"])):
            raise ServiceError(
                "Only an answer that was stopped or reached the length limit, with nothing "
                "after it, can be continued."
            )
        prompt = tree.path(conv["messages"], target["id"])
        async for update in self._write(owner, _Turn(conv, prompt, [], target)):
            yield update

    def switch_branch(self, owner: Owner, conversation_id: str, message_id: str) -> dict:
        """Show the branch through `message_id` (down to its newest answer); the conversation."""
        conv = self._load(owner, conversation_id)
        self._message(conv, message_id)
        if self.writing(owner, conversation_id):
            raise ServiceError(BUSY)
        leaf = tree.deepest(conv["messages"], message_id)
        if not self._store(owner, conversation_id).show_leaf(owner.id, conversation_id, leaf):
            raise ServiceError(NOT_FOUND)
        return self.conversation(owner, conversation_id)

    async def follow(self, owner: Owner, conversation_id: str) -> AsyncIterator[ChatUpdate]:
        """The answer being written in this conversation, live from where it is to its end.
        When none is, one last frame with the shown answer as stored."""
        live = self.answers.get((owner.id, conversation_id))
        if live is not None:
            async for update in live.frames():
                yield update
            return
        conv = await asyncio.to_thread(self.conversation, owner, conversation_id)
        shown = conv["messages"][-1] if conv["messages"] else {}
        if shown.get("role") != "assistant":
            yield ChatUpdate(conversation_id, "", done=True, stored=True)
            return
        notice = shown["notice"] or ""
        yield ChatUpdate(
            conversation_id,
            shown["content"],
            done=True,
            notice=notice,
            failed=notice not in ("", STOPPED, SERVER_STOPPED),
            stored=True,
            message_id=shown["id"],
            reasoning=shown["reasoning"] or "",
            finish_reason=shown["finish_reason"],
        )

    def _message(self, conv: dict, message_id: str) -> dict:
        for m in conv["messages"]:
            if m["id"] == message_id:
                return m
        raise ServiceError(NO_MESSAGE)

    def _new_answer(self, conv: dict, parent_id: str) -> dict:
        model = self._model_for(conv)
        row = store.message_row(
            "assistant", "", parent_id=parent_id, model=model.id, incomplete=True
        )
        if (mark := watermark.stamp(model)) is not None:
            row["watermark"] = mark  # the page marks it, /conversation says so
        return row

    def _asked(self, conv: dict, text: str, parent_id: str | None) -> _Turn:
        """A new question below `parent_id`, and its answer to come."""
        question = store.message_row("user", text, parent_id=parent_id)
        answer = self._new_answer(conv, question["id"])
        prompt = [*tree.path(conv["messages"], parent_id), question]
        return _Turn(conv, prompt, [question, answer], answer)

    def _admit(self, owner: Owner, key: tuple[str, str]) -> None:
        """Refuse an answer past the bounds (one per conversation, the answers in progress,
        the usage limits), or count it against the usage limits."""
        if self.answers.get(key) is not None:
            raise ServiceError(BUSY)
        mine = len(self.answers.owned_by(owner.id))
        if mine >= self.max_answers_per_person:
            raise TooManyAnswers(
                f"You already have {mine} answer{'s' if mine > 1 else ''} being written. "
                "Wait until one ends (or stop one), then send your message again."
            )
        if len(self.answers) >= self.max_answers:
            raise TooManyAnswers(
                "The server is writing as many answers as it can right now. "
                "Send your message again in a moment."
            )
        try:  # last: a message refused above is not counted
            self.limits.admit(owner.id, owner.address if owner.kind == "anonymous" else "")
        except LimitReached as e:
            raise Limited(str(e), e.retry_after) from None

    async def _write(self, owner: Owner, turn: _Turn) -> AsyncIterator[ChatUpdate]:
        """Start the answer as a task of the server's, and follow it. Whoever reads this
        may go away: the answer goes on to its end, and is saved."""
        cid = turn.conv["id"] or store.new_id()
        key = (owner.id, cid)
        self._admit(owner, key)  # and started in the same step: no await in between
        live = self.answers.start(
            key, turn.answer["id"], lambda live: self._produce(owner, cid, turn, live)
        )
        live.rows = turn.new
        async for update in live.frames():
            yield update

    def _store_turn(self, owner: Owner, cid: str, turn: _Turn, model: Model) -> None:
        """Create the conversation if it is new, record the sharing consent, store the
        question and the answer's row. Runs in a worker thread: each write fsyncs (ms on a
        real disk), and it is one write of the conversation's file."""
        if not turn.conv["id"]:  # one write: the row, its consent, the messages
            if "scope" in turn.conv:  # temporary: in memory only, never shared
                new_in, extra = self.scratch, {"scope": turn.conv["scope"]}
            else:
                new_in, extra = self.history, self._consent(owner, model)
            _stamp(turn.new)  # after the consent's time: the messages are covered by it
            new_in.create_conversation(
                owner.id,
                model=turn.conv["model"],
                conversation_id=cid,
                messages=turn.new,
                system_prompt=turn.conv["system_prompt"],
                **extra,
            )
            return
        kept = self._store(owner, cid)
        if kept is self.history:  # a temporary one is never shared
            self._record_consent(owner, cid, model)  # before the message: it is covered
        _stamp(turn.new)
        if turn.new:
            kept.add_messages(owner.id, cid, turn.new)
            return
        # A continued answer: incomplete again until its new end is saved, and shown.
        fields = {"incomplete": True, "notice": "", "finish_reason": None}
        if (mark := watermark.stamp(model)) is not None and not turn.answer.get("watermark"):
            fields["watermark"] = mark  # written on by a model that marks
        kept.update_message(owner.id, cid, turn.answer["id"], **fields)
        kept.show_leaf(owner.id, cid, turn.answer["id"])

    async def _produce(
        self, owner: Owner, cid: str, turn: _Turn, live: Answer
    ) -> AsyncIterator[ChatUpdate]:
        """The answer's frames, as the model writes it: runs as the answer's task."""
        model = self._model_for(turn.conv)
        prompt = build_messages(
            turn.prompt,
            # the prompt the conversation started with; older ones use the model's own
            system_prompt=turn.conv.get("system_prompt", model.system_prompt),
            context_window=model.context_window,
            max_tokens=model.parameters.max_tokens or 512,
        )
        # The request to the model leaves first. The person's message is written in a
        # worker thread meanwhile: the fsyncs stay out of the time to first token and
        # never stall the event loop other chats stream on. The answer is only ever
        # written after it (see _answer), and frames say when it is stored.
        stream = self.endpoints.stream(model, prompt, owner)  # their own token, if it pays
        head = asyncio.ensure_future(anext(stream, None))
        stored = asyncio.ensure_future(asyncio.to_thread(self._store_turn, owner, cid, turn, model))
        stored.add_done_callback(_log_store_failure)
        answer = self._answer(owner, cid, turn.answer, stream, head, stored, live)
        # a new one's first answer; a temporary one is never listed: no title
        titled = not turn.conv["id"] and self.model_titles and "scope" not in turn.conv
        async with contextlib.aclosing(answer) as updates:
            async for update in updates:
                if titled and update.done and not update.notice:  # before the page sees
                    self._start_title(owner, cid, model, turn.new[0]["content"])  # the end
                yield update

    # -- titles -------------------------------------------------------------------------

    def _start_title(self, owner: Owner, cid: str, model: Model, question: str) -> None:
        """Have the model write the new conversation's title, in the background: the answer
        is not held up, and its first words stay the title until (and unless) one comes."""
        task = asyncio.ensure_future(self._write_title(owner, cid, model, question))
        key = (owner.id, cid)
        self._titling[key] = task
        task.add_done_callback(lambda _: self._titling.pop(key, None))

    def titling(self, owner: Owner, conversation_id: str) -> bool:
        """Whether the model is writing this conversation's title now."""
        return (owner.id, conversation_id) in self._titling

    async def title_written(self, owner: Owner, conversation_id: str) -> None:
        """Wait until the title being written for it, if any, is stored or given up (at
        most `title_seconds`)."""
        if (task := self._titling.get((owner.id, conversation_id))) is not None:
            await asyncio.wait([task])  # never cancels it, nor raises what it raised

    title_seconds = titles.SECONDS  # a slower model leaves the first words of the question

    async def titles_written(self) -> None:
        """Wait until the titles being written are (or are given up)."""
        await asyncio.gather(*self._titling.values(), return_exceptions=True)

    async def _write_title(self, owner: Owner, cid: str, model: Model, question: str) -> None:
        try:
            async with asyncio.timeout(self.title_seconds):
                stream = self.endpoints.stream(model, titles.request(question), owner)
                text = await _first_line(stream)
        except (ChatError, TimeoutError) as e:  # the first words stay
            log.info("no title written: %s", type(e).__name__)
            return
        if not (title := titles.clean(text)):
            return
        try:  # never over a title the person set (see History)
            await asyncio.to_thread(self.history.rename_conversation, owner.id, cid, title, "model")
        except Exception as e:  # a damaged or vanished file: the first words stay
            log.warning("a title could not be stored: %s", type(e).__name__)

    def _spread(self, seconds: float, budget: float) -> float:
        """`seconds`, or longer when so many answers stream at once that doing something
        every `seconds` in each would pass `budget` times a second in all. An answer alone
        always keeps `seconds` (with frame_seconds=0, a frame for every token)."""
        streaming = len(self.answers)
        return max(seconds, streaming / budget) if streaming > 1 else seconds

    _closing = False  # set by shutdown(): answers stopped from then on say the server stopped

    async def shutdown(self, timeout: float = 5.0) -> int:
        """The server is about to exit: stop every answer in progress, and wait (at most
        `timeout` seconds) until each is saved with SERVER_STOPPED. Returns how many."""
        self._closing = True
        for task in list(self._titling.values()):  # a title is never worth waiting for
            task.cancel()
        live = self.answers.all()
        for answer in live:
            answer.stop()
        deadline = time.monotonic() + timeout
        while len(self.answers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return len(live)

    async def _answer(
        self,
        owner: Owner,
        cid: str,
        row: dict,
        stream: AsyncIterator[str],
        head: asyncio.Future,
        stored: asyncio.Future,
        live: Answer,
    ) -> AsyncIterator[ChatUpdate]:
        base = row["content"]  # what a continued answer already says
        parts: list[str] = []
        thoughts: list[str] = [row.get("reasoning") or ""]
        last_frame, last_save = 0.0, time.monotonic()
        notice, failed, finish = "", False, None
        saving: asyncio.Future | None = None  # a save in a worker thread, never abandoned

        def save(**fields) -> None:  # dropped meanwhile: the store has no such file, no write
            self._store(owner, cid).update_message(owner.id, cid, row["id"], **fields)

        def question_stored() -> bool:
            return stored.done() and not stored.cancelled() and stored.exception() is None

        def frame(**fields) -> ChatUpdate:
            return ChatUpdate(
                cid,
                base + "".join(parts),
                stored=fields.pop("stored", None) or question_stored(),
                message_id=row["id"],
                reasoning="".join(thoughts),
                **fields,
            )

        try:
            yield frame()
            async for piece in _after(head, stream):
                if type(piece) is str:  # the answer itself: the common case, checked first
                    parts.append(piece)
                elif isinstance(piece, Finish):
                    finish = piece.reason
                    continue
                else:
                    thoughts.append(piece)
                now = time.monotonic()
                # Under load the words come a few at a time instead of everyone's answer
                # falling behind: a frame costs the web server the same whatever it holds.
                if now - last_frame >= self._spread(self.frame_seconds, self.frame_budget):
                    last_frame = now
                    yield frame()
                if now - last_save >= self._spread(SAVE_EVERY, SAVE_BUDGET):
                    last_save = now
                    await asyncio.shield(stored)  # the question first, always
                    content, reasoning = base + "".join(parts), "".join(thoughts)
                    saving = asyncio.ensure_future(
                        asyncio.to_thread(save, content=content, reasoning=reasoning)
                    )
                    await asyncio.shield(saving)
        except ChatError as e:
            notice, failed = str(e), True
        except asyncio.CancelledError:
            if not live.stopping:  # the loop is going down without shutdown(): keep it
                if question_stored():
                    text = base + "".join(parts)
                    kept = asyncio.to_thread(save, content=text, notice=SERVER_STOPPED)
                    await asyncio.shield(kept)
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            notice = SERVER_STOPPED if self._closing else STOPPED
        finally:
            live.finishing = True  # a stop from now on changes nothing
            await _close(head, stream)
        if saving is not None:
            await asyncio.wait([saving])  # the last save lands after it, never before
        await stored  # the question first, always (raises if it could not be stored)
        text, reasoning = base + "".join(parts), "".join(thoughts)
        await asyncio.to_thread(
            save,
            content=text,
            reasoning=reasoning,
            incomplete=bool(notice),
            notice=notice,
            finish_reason=None if notice else finish or "stop",
        )
        finish = None if notice else finish or "stop"
        yield frame(done=True, notice=notice, failed=failed, stored=True, finish_reason=finish)


@dataclass
class _Turn:
    """What one answer is written for: the conversation as loaded, the messages the model
    sees (root to question, or to the answer it continues), the rows to store first (the
    question and the answer's, or none), and the answer's row."""

    conv: dict
    prompt: list[dict]
    new: list[dict]
    answer: dict


def _linked(row: dict) -> dict:
    """A share link as the person sees it."""
    return {k: row[k] for k in ("id", "created_at", "title")} | {"url": f"/r/{row['id']}"}


def _stamp(rows: list[dict]) -> None:
    """Date rows as they are stored."""
    stamp = store.now()
    for row in rows:
        row["created_at"] = stamp


def _continuable(message: dict, replies: dict[str | None, list[str]]) -> bool:
    """An answer with nothing after it (`replies`: see tree.replies) that ended early: cut
    by the length limit, stopped, or interrupted when the server stopped."""
    if message["role"] != "assistant" or replies.get(message["id"]):
        return False
    if message.get("finish_reason") == "length":
        return True
    return message.get("notice") in (STOPPED, SERVER_STOPPED) or (
        message.get("incomplete") and not message.get("notice")
    )


async def _first_line(stream: AsyncIterator) -> str:
    """The text a stream writes up to its first full line (a title is one); the rest is
    not waited for: closing the stream cancels the request."""
    text = ""
    async with contextlib.aclosing(stream) as pieces:
        async for piece in pieces:
            text += piece if type(piece) is str else ""
            if "\n" in text.strip() or len(text) > 4 * titles.MAX_CHARS:
                break
    return text


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


MESSAGE_KEYS = (
    "id",
    "parent_id",
    "role",
    "content",
    "reasoning",
    "created_at",
    "model",
    "incomplete",
    "notice",
    "finish_reason",
    "feedback",
    "watermark",  # {model, gamma, delta} of an answer written with the watermark, or None
)


def _public(message: dict, replies: dict[str | None, list[str]]) -> dict:
    """A message as the doors show it: its fields, its siblings' ids, and Continue."""
    out = {k: message.get(k) for k in MESSAGE_KEYS}
    out["reasoning"] = out["reasoning"] or ""
    out["notice"] = out["notice"] or ""
    out["siblings"] = list(replies.get(message.get("parent_id"), ()))
    out["continuable"] = _continuable(message, replies)
    return out


def _with_live(messages: list[dict], live: Answer) -> list[dict]:
    """The stored messages with the answer in progress as far as it has got (its rows too,
    when their first write has not landed yet)."""
    have = {m["id"] for m in messages}
    rows = [*messages, *(dict(r) for r in live.rows if r["id"] not in have)]
    frame = live.frame
    if frame is None:
        return rows
    return [
        {**m, "content": frame.text, "reasoning": frame.reasoning}
        if m["id"] == live.message_id
        else m
        for m in rows
    ]
