"""Temporary conversations: held in memory only, never written to disk.

`Scratch` offers the service the same calls as the store (`chat/history.py`) for one
conversation (create, get, add messages, update a message, show a leaf, rename, delete), so
a temporary conversation gets every feature a stored one has: streamed answers, retry,
edit, branches, continue. It is never listed, searched, exported or shared.

Each conversation is owned by one person (an id of someone else's looks exactly like a
missing one) and kept for one `scope`: the page that made it (Gradio's session hash), which
drops it when it closes (`drop`). A scope that never says goodbye (an API client) loses its
conversations after IDLE_SECONDS without a change; a person keeps at most PER_OWNER of them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import history as store
from . import tree

IDLE_SECONDS = 24 * 3600.0
PER_OWNER = 50  # past it, the person's least recently changed one goes


@dataclass
class _Held:
    row: dict  # id, title, model, created_at, updated_at, leaf_id, system_prompt...
    messages: list[dict]
    scope: str
    changed: float = field(default_factory=time.monotonic)


class Scratch:
    """The temporary conversations of everyone, in memory, by (owner id, conversation id)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], _Held] = {}
        self._guard = threading.Lock()

    def holds(self, owner: str, conversation_id: str) -> bool:
        return (owner, conversation_id) in self._held

    def create_conversation(
        self,
        owner: str,
        *,
        model: str,
        title: str = "",
        conversation_id: str = "",
        messages: list[dict] = (),  # type: ignore[assignment]
        scope: str = "",
        **fields: Any,
    ) -> dict:
        """A new temporary conversation (as `History.create_conversation`), kept for `scope`."""
        stamp = store.now()
        messages = [dict(m) for m in messages]
        first = next((m["content"] for m in messages if m["role"] == "user"), None)
        row = {
            **fields,
            "id": conversation_id or store.new_id(),
            "title": store.clip_title(title or (store.title_from(first) if first else "")),
            "model": model,
            "created_at": stamp,
            "updated_at": stamp,
            "leaf_id": messages[-1]["id"] if messages else None,
        }
        with self._guard:
            self._expire(owner)
            self._held[(owner, row["id"])] = _Held(row, messages, scope)
        return {k: row[k] for k in ("id", "title", "model", "created_at", "updated_at")}

    def get_conversation(self, owner: str, conversation_id: str) -> dict | None:
        with self._guard:
            held = self._held.get((owner, conversation_id))
            if held is None:
                return None
            messages = [dict(m) for m in held.messages]
            row = dict(held.row)
        row["leaf_id"] = tree.shown_leaf(messages, row["leaf_id"])
        return {**row, "messages": messages}

    def add_messages(
        self, owner: str, conversation_id: str, messages: list[dict], *, leaf_id: str = ""
    ) -> bool:
        """As `History.add_messages`: rows whose `parent_id` is "" go below the shown leaf."""
        with self._guard:
            held = self._held.get((owner, conversation_id))
            if held is None:
                return False
            below = held.row["leaf_id"]
            for m in messages:
                if m.get("parent_id") == "":
                    m["parent_id"] = below
                below = m["id"]
                held.messages.append(dict(m))
            asked = next((m["content"] for m in messages if m["role"] == "user"), None)
            if asked is not None and held.row["title"] == "New chat":
                held.row["title"] = store.title_from(asked)
            held.row["leaf_id"] = leaf_id or below
            self._changed(held)
        return True

    def update_message(
        self, owner: str, conversation_id: str, message_id: str, **fields: Any
    ) -> bool:
        allowed = {k: v for k, v in fields.items() if k in store.MESSAGE_FIELDS}
        with self._guard:
            held = self._held.get((owner, conversation_id))
            messages = held.messages if held else []
            target = next((m for m in messages if m["id"] == message_id), None)
            if target is None:
                return False
            target.update(allowed)
            self._changed(held)
        return True

    def show_leaf(self, owner: str, conversation_id: str, leaf_id: str) -> bool:
        with self._guard:
            held = self._held.get((owner, conversation_id))
            if held is None or not any(m["id"] == leaf_id for m in held.messages):
                return False
            held.row["leaf_id"] = leaf_id
        return True

    def rename_conversation(
        self, owner: str, conversation_id: str, title: str, by: str = "person"
    ) -> dict | None:
        with self._guard:
            held = self._held.get((owner, conversation_id))
            if held is None:
                return None
            held.row["title"] = store.clip_title(title)
            self._changed(held)
            return {k: held.row[k] for k in ("id", "title", "model", "created_at", "updated_at")}

    def delete_conversation(self, owner: str, conversation_id: str) -> bool:
        with self._guard:
            return self._held.pop((owner, conversation_id), None) is not None

    def drop(self, owner: str, scope: str | None = None) -> list[str]:
        """Forget the person's temporary conversations (those kept for `scope`, or all):
        the ids forgotten."""
        with self._guard:
            gone = [
                key
                for key, held in self._held.items()
                if key[0] == owner and (scope is None or held.scope == scope)
            ]
            for key in gone:
                del self._held[key]
        return [cid for _, cid in gone]

    def __len__(self) -> int:
        return len(self._held)

    def _changed(self, held: _Held) -> None:
        held.changed = time.monotonic()
        held.row["updated_at"] = store.now()

    def _expire(self, owner: str) -> None:
        """Under the guard: forget the conversations idle too long, and the person's oldest
        past PER_OWNER (room for the one being made)."""
        now = time.monotonic()
        for key in [k for k, h in self._held.items() if now - h.changed > IDLE_SECONDS]:
            del self._held[key]
        mine = sorted((h.changed, k) for k, h in self._held.items() if k[0] == owner)
        for _, key in mine[: max(0, len(mine) - PER_OWNER + 1)]:
            del self._held[key]
