"""Share links: read-only snapshots of a conversation, reachable at `/r/<id>`.

A snapshot (title, model, created_at, and the messages of the branch shown when it was
shared: role, content, created_at, model) names no one. Ownership lives in the owner's list
of links only (id, conversation_id, title, created_at), and the store's `drop_shares` is the
one place that checks it: a share id not in the asker's list looks exactly like a missing
one. Where they are kept is the store's (chat/store.py): files beside the conversations
(chat/history.py), or tables (chat/history_pg.py).
"""

from __future__ import annotations

import re
import secrets

from .history import now
from .store import Store

_SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)


class Shares:
    def __init__(self, history: Store) -> None:
        self.history = history

    def create(self, owner: str, conversation: dict, messages: list[dict]) -> dict:
        """Store a snapshot of these messages and list it under the owner."""
        share_id = secrets.token_urlsafe(16)
        row = {"id": share_id, "title": conversation["title"], "created_at": now()}
        self.history.save_share(
            owner,
            {**row, "conversation_id": conversation["id"]},
            {**row, "model": conversation["model"]},
            messages,
        )
        return row

    def listing(self, owner: str) -> list[dict]:
        """The owner's links, newest first."""
        rows = self.history.share_links(owner)
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)

    def snapshot(self, share_id: str) -> dict | None:
        """A link's snapshot (`share` row with its `messages`), or None: never made, revoked
        or deleted alike."""
        if not isinstance(share_id, str) or not _SHARE_ID.match(share_id):
            return None
        return self.history.share_snapshot(share_id)

    def revoke(self, owner: str, share_id: str) -> bool:
        return bool(self.history.drop_shares(owner, lambda r: r["id"] != share_id))

    def remove_for(self, owner: str, conversation_ids: set[str] | None) -> int:
        """Remove the links of these conversations (all the owner's links: None)."""
        if conversation_ids is None:
            return len(self.history.drop_shares(owner, lambda r: False))
        keep = lambda r: r["conversation_id"] not in conversation_ids  # noqa: E731
        return len(self.history.drop_shares(owner, keep))

    def move(self, source: str, target: str) -> None:
        """Sign-in: the visitor's links are listed under the account (snapshots stay)."""
        self.history.list_shares(target, self.history.share_links(source))
