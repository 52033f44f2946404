"""Share links: read-only snapshots of a conversation, reachable at `/r/<id>`.

    <data_dir>/shares/<id>.json               table "share" (title, model, created_at) and
                                              table "messages" (role, content, created_at,
                                              model): the branch shown when it was shared
    <data_dir>/owners/<owner_key>/shares.json table "shares": id, conversation_id, title,
                                              created_at (the owner's links)

A snapshot names no one. Ownership lives in the owner's list only, and `_owned` is the one
place that checks it: a share id not in the asker's list looks exactly like a missing one.
Files are written atomically and serialised per file, through the conversation store's own
`_open` (chat/history.py).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from tinydb import Query

from .history import History, now

_SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)


class Shares:
    def __init__(self, history: History) -> None:
        self.history = history
        self.root = history.root.parent / "shares"

    def _snapshot_path(self, share_id: str) -> Path | None:
        if not isinstance(share_id, str) or not _SHARE_ID.match(share_id):
            return None
        return self.root / f"{share_id}.json"

    def _list_path(self, owner: str) -> Path:
        return self.history._owner_dir(owner) / "shares.json"

    def _rows(self, owner: str) -> list[dict]:
        path = self._list_path(owner)
        if not path.exists():
            return []
        with self.history._open(path) as db:
            return [dict(r) for r in db.table("shares").all()]

    def create(self, owner: str, conversation: dict, messages: list[dict]) -> dict:
        """Store a snapshot of these messages and list it under the owner."""
        share_id = secrets.token_urlsafe(16)
        row = {"id": share_id, "title": conversation["title"], "created_at": now()}
        with self.history._open(self._snapshot_path(share_id)) as db:
            db.table("share").insert({**row, "model": conversation["model"]})
            db.table("messages").insert_multiple(messages)
        with self.history._open(self._list_path(owner)) as db:
            db.table("shares").insert({**row, "conversation_id": conversation["id"]})
        return row

    def listing(self, owner: str) -> list[dict]:
        """The owner's links, newest first."""
        return sorted(self._rows(owner), key=lambda r: r["created_at"], reverse=True)

    def snapshot(self, share_id: str) -> dict | None:
        """A link's snapshot (`share` row with its `messages`), or None: never made, revoked
        or deleted alike."""
        path = self._snapshot_path(share_id)
        if path is None or not path.exists():
            return None
        with self.history._open(path) as db:
            rows = db.table("share").all()
            messages = [dict(m) for m in db.table("messages").all()]
        return {**rows[0], "messages": messages} if rows else None

    def _owned(self, owner: str, keep) -> list[str]:
        """The one ownership check: drop the owner's rows for which `keep(row)` is false,
        then their snapshot files. The ids dropped."""
        return self._drop(self._list_path(owner), keep)

    def _drop(self, path: Path, keep) -> list[str]:
        """Drop the rows of the list at `path` for which `keep(row)` is false, then their
        snapshot files. The ids dropped."""
        if not path.exists():
            return []
        with self.history._open(path) as db:
            table = db.table("shares")
            gone = [r["id"] for r in table.all() if not keep(r)]
            table.remove(Query().id.one_of(gone))
        for share_id in gone:
            if (snapshot := self._snapshot_path(share_id)) is not None:
                with self.history._locks.hold(snapshot):
                    snapshot.unlink(missing_ok=True)
        return gone

    def revoke(self, owner: str, share_id: str) -> bool:
        return bool(self._owned(owner, lambda r: r["id"] != share_id))

    def remove_for(self, owner: str, conversation_ids: set[str] | None) -> int:
        """Remove the links of these conversations (all the owner's links: None)."""
        if conversation_ids is None:
            return len(self._owned(owner, lambda r: False))
        return len(self._owned(owner, lambda r: r["conversation_id"] not in conversation_ids))

    def remove_by_key(self, owner_key: str, conversation_ids: set[str]) -> int:
        """Retention: remove the links of these conversations of one owner key (see
        `History.owners`), which names no one."""
        path = self.history.root / owner_key / "shares.json"
        return len(self._drop(path, lambda r: r["conversation_id"] not in conversation_ids))

    def move(self, source: str, target: str) -> None:
        """Sign-in: the visitor's links are listed under the account (snapshots stay)."""
        rows = self._rows(source)
        if not rows:
            return
        with self.history._open(self._list_path(target)) as db:
            db.table("shares").insert_multiple(rows)
