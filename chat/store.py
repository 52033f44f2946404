"""The conversation store's interface, and the choice of its implementation.

What the service layer (chat/service.py, chat/shares.py, chat/sharing.py, chat/accounts.py
through the service, chat/portability.py) calls on a store, and nothing more:

- `History` (chat/history.py): TinyDB files under the data directory, the default; no
  server.
- `PgHistory` (chat/history_pg.py): PostgreSQL, when `PARLOR_DATABASE_URL` names one.

Both take the owner id in every call and treat a conversation of someone else exactly as
a missing one. A new operation (say, retention's sweep of old conversations) is a method
added here and to both classes; the store tests (tests/test_history.py) run on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .settings import Settings


class Store(Protocol):
    """Per-owner conversations (trees of messages), settings and share links."""

    # -- conversations
    def create_conversation(
        self,
        owner: str,
        *,
        model: str,
        title: str = "",
        conversation_id: str = "",
        first_message: str | None = None,
        messages: list[dict] = (),  # type: ignore[assignment]
        **fields: Any,
    ) -> dict: ...
    def list_conversations(self, owner: str, limit: int | None = None) -> list[dict]: ...
    def get_conversation(self, owner: str, conversation_id: str) -> dict | None: ...
    def conversation_row(self, owner: str, conversation_id: str) -> dict | None: ...
    def rename_conversation(
        self, owner: str, conversation_id: str, title: str, by: str = "person"
    ) -> dict | None: ...
    def set_conversation_fields(self, owner: str, conversation_id: str, **fields: Any) -> bool: ...
    def delete_conversation(self, owner: str, conversation_id: str) -> bool: ...
    def delete_all_conversations(self, owner: str) -> int: ...
    def search(self, owner: str, wanted: list[str], limit: int) -> list[dict]: ...

    # -- messages
    def append_message(
        self,
        owner: str,
        conversation_id: str,
        *,
        role: str,
        content: str,
        model: str | None = None,
        incomplete: bool = False,
        notice: str = "",
    ) -> dict | None: ...
    def add_messages(
        self, owner: str, conversation_id: str, messages: list[dict], *, leaf_id: str = ""
    ) -> bool: ...
    def show_leaf(self, owner: str, conversation_id: str, leaf_id: str) -> bool: ...
    def update_message(
        self, owner: str, conversation_id: str, message_id: str, **fields: Any
    ) -> bool: ...

    # -- settings
    def get_settings(self, owner: str) -> dict: ...
    def update_settings(self, owner: str, changes: dict[str, Any]) -> dict: ...

    # -- whole owners: imports, sign-in, deployer tools
    def add_conversations(
        self, owner: str, conversations: Iterable[tuple[dict, list[dict]]]
    ) -> int: ...
    def move_owner(self, source: str, target: str) -> int: ...
    def has_files(self, owner: str) -> bool: ...
    def retire(self, owner: str) -> None: ...
    def is_retired(self, owner: str) -> bool: ...
    def owners(self) -> Iterator[str]: ...
    def settings_by_key(self, owner_key: str) -> dict: ...
    def conversations_by_key(self, owner_key: str) -> Iterator[dict]: ...
    def delete_untouched(self, before_ns: int) -> dict[str, list[str]]:
        """Retention (chat/retention.py): delete every owner's conversations not changed
        since `before_ns` (ns since the epoch), with their share links; per owner key, the
        ids deleted. A write that lands first keeps its conversation."""
        ...

    # -- share links (chat/shares.py holds their rules; a store only keeps them)
    def save_share(self, owner: str, link: dict, snapshot: dict, messages: list[dict]) -> None:
        """Keep a snapshot (`snapshot` row and its `messages`) under `link["id"]`, and list
        `link` (id, title, created_at, conversation_id) under the owner."""
        ...

    def share_links(self, owner: str) -> list[dict]: ...
    def share_snapshot(self, share_id: str) -> dict | None: ...
    def drop_shares(self, owner: str, keep: Callable[[dict], bool]) -> list[str]:
        """Remove the owner's links for which `keep(link)` is false, and their snapshots:
        the one ownership check of share links. The ids removed."""
        ...

    def list_shares(self, owner: str, links: list[dict]) -> None:
        """List these links (as `share_links` gives them) under `owner` too (sign-in)."""
        ...

    def close(self) -> None:
        """The app is stopping: let go of connections (files need nothing)."""
        ...


def open_store(settings: Settings) -> Store:
    """PostgreSQL when `PARLOR_DATABASE_URL` is set (its schema migrated now), else the
    TinyDB files under the data directory."""
    if settings.database_url:
        from .history_pg import PgHistory  # psycopg is loaded only by those who use it

        return PgHistory(settings.database_url)
    from .history import History

    return History(settings.data_dir)
