"""The conversation store on PostgreSQL (`PARLOR_DATABASE_URL`), the same interface as the
TinyDB files (chat/store.py), for deployments that outgrow one machine.

Schema: chat/pg_migrations/*.sql, applied in order at start-up (`migrate`); see
docs/postgresql.md. Every row of a person's data holds their `owner_key` (the hash TinyDB
names their folder by, `history.owner_key`), and every query has the condition
`owner_key = %s` on the owner it was given: another person's conversation is never read,
and looks exactly like a missing one.

Writes to a conversation first lock its row (`SELECT … FOR UPDATE`, or an UPDATE): two
writers of one conversation are serialised there, and a write landing after a delete (or a
sign-in's move) finds no row and is refused, as with the files: deleting wins.

Search: PostgreSQL's full-text search with the 'simple' configuration (lower-cased words,
no stemming, no stop words), each wanted word a prefix (`word:*`), every word required, in
the title or any message of any branch. The snippet and its marks are made as for TinyDB
(`search_index.snippet`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from . import search_index, tree
from .history import (
    _ID,
    MESSAGE_FIELDS,
    SHAPE,
    _ns_of,
    _summary,
    clip_title,
    iso,
    message_row,
    new_conversation,
    new_id,
    owner_key,
    title_from,
)
from .settings import SettingsError

log = logging.getLogger("parlor.history_pg")

MIGRATIONS = Path(__file__).with_name("pg_migrations")
POOL_SIZE = 16  # connections kept per process: each call holds one for a few ms
CONNECT_SECONDS = 10  # at start-up: an unreachable database is said so, not waited for
_MIGRATION_LOCK = 0x7061726C6F72  # "parlor": replicas starting together migrate once
_COLUMNS = ("id", "title", "model", "created_at", "leaf_id")
_MESSAGE_COLUMNS = ("id", "parent_id", "role", "content")


class StoreUnavailable(SettingsError):
    """The database of PARLOR_DATABASE_URL cannot be reached or used; the message says why
    (never the password)."""


class SchemaTooNew(StoreUnavailable):
    """The database was migrated by a newer Parlor: this one must not write to it."""


def _where(url: str) -> str:
    """A database URL as host:port/name (never its password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "of PARLOR_DATABASE_URL (not a valid URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def migrations() -> list[tuple[int, Path]]:
    """The schema's versions, in order: `NNNN_name.sql` files."""
    found = [(int(p.name[:4]), p) for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")]
    return sorted(found)


def migrate(conn: Connection) -> list[int]:
    """Bring the schema up to date, in one transaction under an advisory lock (several
    replicas starting at once: one migrates, the others wait and find it done). The
    versions applied."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_version")}
        known = migrations()
        if done and max(done) > known[-1][0]:
            raise SchemaTooNew(
                f"the database's schema is version {max(done)}, newer than this Parlor's "
                f"({known[-1][0]}): run the newer Parlor, or restore a backup"
            )
        for version, path in known:
            if version not in done:
                conn.execute(path.read_text(encoding="utf-8"))
                conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                    (version, path.name),
                )
                applied.append(version)
    return applied


def _prefix(word: str) -> str:
    """A query word as a tsquery prefix term, quoted (its quotes and backslashes escaped)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "':*"


def _has_word(words: str, text: str, word: str) -> tuple[str, list]:
    """SQL (and its parameters) for "`word` is in this column": a word of letters or digits
    by full-text search, a bare punctuation mark by position (it makes no lexeme)."""
    if re.search(r"\w", word):
        return f"{words} @@ to_tsquery('simple', %s)", [_prefix(word)]
    return f"strpos(lower({text}), %s) > 0", [word]


def _message(row: dict) -> dict:
    return {**{k: row[k] for k in _MESSAGE_COLUMNS}, **row["extra"]}


def _message_params(key: str, conversation_id: str, m: dict) -> tuple:
    extra = {k: v for k, v in m.items() if k not in _MESSAGE_COLUMNS}
    return (
        key,
        conversation_id,
        m["id"],
        m.get("parent_id"),
        m["role"],
        m["content"],
        Jsonb(extra),
    )


_INSERT_MESSAGE = (
    "INSERT INTO messages (owner_key, conversation_id, id, parent_id, role, content, extra)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_LINK = (
    "INSERT INTO share_links (owner_key, id, conversation_id, title, created_at)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_LISTED = "id, title, model, created_at, updated_ns"


def _link_params(key: str, link: dict) -> tuple:
    return (key, link["id"], link["conversation_id"], link["title"], link["created_at"])


def _listed(row: dict) -> dict:
    return {
        **{k: row[k] for k in ("id", "title", "model", "created_at")},
        "updated_at": iso(row["updated_ns"]),
    }


class PgHistory:
    """Per-owner conversations and messages in PostgreSQL (see the module's docstring)."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_SECONDS) as conn:
                if applied := migrate(conn):
                    log.info("database schema migrated to version %d", applied[-1])
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreUnavailable(f"the database {_where(url)} cannot be used: {reason}") from None
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row},
            open=True,
            name="parlor-history",
        )

    def close(self) -> None:
        self.pool.close()

    def _conn(self):
        """A pooled connection; its transaction commits when the block ends (rolls back on
        an exception)."""
        return self.pool.connection()

    @staticmethod
    def _owned(conn: Connection, key: str) -> bool:
        """Note the owner (True: they are new here)."""
        done = conn.execute(
            "INSERT INTO owners (owner_key) VALUES (%s) ON CONFLICT DO NOTHING", (key,)
        )
        return done.rowcount == 1

    # -- conversations ------------------------------------------------------------------

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
    ) -> dict:
        """A new conversation, with its first messages (the last one shown) in the same
        transaction; titled after the first user message. See `History.create_conversation`."""
        row, messages, ns = new_conversation(model, title, conversation_id, first_message, messages)
        leaf = messages[-1]["id"] if messages else None
        extra = {k: v for k, v in fields.items() if k not in row}
        self._write_new(owner_key(owner), {**row, "leaf_id": leaf, **extra}, messages, ns)
        return dict(row)

    def _write_new(
        self, key: str, row: dict, messages: list[dict], ns: int, conn: Connection | None = None
    ) -> bool:
        """Insert a whole conversation unless this owner has its id (False then)."""
        if conn is None:
            with self._conn() as conn:
                return self._write_new(key, row, messages, ns, conn)
        self._owned(conn, key)
        extra = {k: v for k, v in row.items() if k not in (*_COLUMNS, "updated_at", "shape")}
        inserted = conn.execute(
            "INSERT INTO conversations (owner_key, id, title, model, created_at, updated_ns,"
            " leaf_id, extra) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                key,
                row["id"],
                row["title"],
                row["model"],
                row["created_at"],
                ns,
                row.get("leaf_id"),
                Jsonb(extra),
            ),
        ).fetchone()
        if inserted is None:
            return False
        with conn.cursor() as cur:
            cur.executemany(_INSERT_MESSAGE, [_message_params(key, row["id"], m) for m in messages])
        return True

    def list_conversations(self, owner: str, limit: int | None = None) -> list[dict]:
        """The owner's summaries, most recently updated first (the newest `limit`)."""
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_LISTED} FROM conversations WHERE owner_key = %s"
                " ORDER BY updated_ns DESC, seq DESC LIMIT %s",
                (owner_key(owner), None if limit is None else max(limit, 0)),
            ).fetchall()
        return [_listed(r) for r in rows]

    def _row(self, conn: Connection, key: str, conversation_id: Any, lock: bool = False):
        """The one ownership check: this owner's row for the id (None: no such id here)."""
        if not isinstance(conversation_id, str) or not _ID.match(conversation_id):
            return None
        return conn.execute(
            "SELECT * FROM conversations WHERE owner_key = %s AND id = %s"
            + (" FOR UPDATE" if lock else ""),
            (key, conversation_id),
        ).fetchone()

    @staticmethod
    def _full_row(row: dict) -> dict:
        return {
            **row["extra"],
            **{k: row[k] for k in _COLUMNS},
            "updated_at": iso(row["updated_ns"]),
            "shape": SHAPE,
        }

    def conversation_row(self, owner: str, conversation_id: str) -> dict | None:
        with self._conn() as conn:
            row = self._row(conn, owner_key(owner), conversation_id)
        return None if row is None else self._full_row(row)

    def get_conversation(self, owner: str, conversation_id: str) -> dict | None:
        key = owner_key(owner)
        with self._conn() as conn:
            row = self._row(conn, key, conversation_id)
            if row is None:
                return None
            found = conn.execute(
                "SELECT * FROM messages WHERE owner_key = %s AND conversation_id = %s ORDER BY seq",
                (key, conversation_id),
            ).fetchall()
        messages = [_message(m) for m in found]
        leaf = tree.shown_leaf(messages, row["leaf_id"])
        prompt = {k: row["extra"][k] for k in ("system_prompt",) if k in row["extra"]}
        return {**_summary(self._full_row(row)), **prompt, "leaf_id": leaf, "messages": messages}

    def rename_conversation(
        self, owner: str, conversation_id: str, title: str, by: str = "person"
    ) -> dict | None:
        """Retitle it, keeping its place; a model's title never replaces the person's."""
        with self._conn() as conn:
            row = self._row(conn, owner_key(owner), conversation_id, lock=True)
            if row is None:
                return None
            if by and by != "person" and row["extra"].get("title_set_by") == "person":
                return None
            row = conn.execute(
                "UPDATE conversations SET title = %s, extra = extra || %s"
                " WHERE owner_key = %s AND id = %s RETURNING *",
                (
                    clip_title(title),
                    Jsonb({"title_set_by": by} if by else {}),
                    row["owner_key"],
                    row["id"],
                ),
            ).fetchone()
        return _summary(self._full_row(row))

    def set_conversation_fields(self, owner: str, conversation_id: str, **fields: Any) -> bool:
        """Set extra fields on a conversation (e.g. the sharing consent), not its summary."""
        if not isinstance(conversation_id, str) or not _ID.match(conversation_id):
            return False
        with self._conn() as conn:
            done = conn.execute(
                "UPDATE conversations SET extra = extra || %s, updated_ns = %s"
                " WHERE owner_key = %s AND id = %s",
                (Jsonb(fields), time.time_ns(), owner_key(owner), conversation_id),
            )
            return done.rowcount == 1

    def delete_conversation(self, owner: str, conversation_id: str) -> bool:
        """Remove the conversation and its messages (rows deleted, not flagged)."""
        if not isinstance(conversation_id, str) or not _ID.match(conversation_id):
            return False
        with self._conn() as conn:
            done = conn.execute(
                "DELETE FROM conversations WHERE owner_key = %s AND id = %s",
                (owner_key(owner), conversation_id),
            )
            return done.rowcount == 1

    def delete_all_conversations(self, owner: str) -> int:
        with self._conn() as conn:
            done = conn.execute(
                "DELETE FROM conversations WHERE owner_key = %s", (owner_key(owner),)
            )
            return done.rowcount

    def delete_untouched(self, before_ns: int) -> dict[str, list[str]]:
        """Retention: one statement deletes the conversations untouched since `before_ns`
        (a row written meanwhile is checked again by PostgreSQL, and kept), then their
        share links and snapshots."""
        swept: dict[str, list[str]] = {}
        with self._conn() as conn:
            rows = conn.execute(
                "DELETE FROM conversations WHERE updated_ns < %s"
                " AND coalesce(extra->>'imported_at', '') < %s RETURNING owner_key, id",
                (before_ns, iso(before_ns)),  # an import counts from then (History's too)
            ).fetchall()
            for row in rows:
                swept.setdefault(row["owner_key"], []).append(row["id"])
            for key, ids in swept.items():
                links = conn.execute(
                    "DELETE FROM share_links WHERE owner_key = %s AND conversation_id = ANY(%s)"
                    " RETURNING id",
                    (key, ids),
                ).fetchall()
                gone = [r["id"] for r in links]
                conn.execute("DELETE FROM share_snapshots WHERE id = ANY(%s)", (gone,))
        return swept

    # -- search -------------------------------------------------------------------------

    def search(self, owner: str, wanted: list[str], limit: int) -> list[dict]:
        """The newest `limit` conversations holding every wanted word (a prefix of a word,
        any case) in their title or any message, as `History.search` gives them."""
        if not wanted or limit <= 0:
            return []
        key = owner_key(owner)
        in_title, every, params = [], [], []
        for word in wanted:
            title_sql, title_args = _has_word("c.title_words", "c.title", word)
            text_sql, text_args = _has_word("words", "content", word)
            in_title.append((title_sql, title_args))
            # the owner's messages holding the word, through the words' GIN index
            every.append(
                f"({title_sql} OR c.id IN (SELECT conversation_id FROM messages"
                f" WHERE owner_key = %s AND {text_sql}))"
            )
            params += [*title_args, key, *text_args]
        flags = ", ".join(sql for sql, _ in in_title)
        sql = (
            f"SELECT c.*, ARRAY[{flags}] AS in_title FROM conversations c"
            f" WHERE c.owner_key = %s AND {' AND '.join(every)}"
            " ORDER BY c.updated_ns DESC, c.seq DESC LIMIT %s"
        )
        args = [a for _, title_args in in_title for a in title_args] + [key, *params, limit]
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
            return [self._hit(conn, row, wanted) for row in rows]

    def _hit(self, conn: Connection, row: dict, wanted: list[str]) -> dict:
        """A search result: the title's match, or the first message (oldest) holding a word
        the title lacks."""
        summary = _summary(self._full_row(row))
        rest = [w for w, found in zip(wanted, row["in_title"], strict=True) if not found]
        hit = {"match_in": "title", "message_id": None}
        text = row["title"]
        if rest:
            anywhere = [_has_word("words", "content", w) for w in rest]
            message = conn.execute(
                "SELECT id, content FROM messages WHERE owner_key = %s AND conversation_id = %s"
                f" AND ({' OR '.join(sql for sql, _ in anywhere)}) ORDER BY seq LIMIT 1",
                [row["owner_key"], row["id"], *(a for _, args in anywhere for a in args)],
            ).fetchone()
            hit = {"match_in": "message", "message_id": message["id"]}
            text = message["content"]
        snippet, marks = search_index.snippet(text, wanted)
        return {**summary, **hit, "snippet": snippet, "marks": marks}

    # -- messages -----------------------------------------------------------------------

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
    ) -> dict | None:
        message = message_row(
            role, content, model=model, incomplete=incomplete, notice=notice, parent_id=""
        )
        return message if self.add_messages(owner, conversation_id, [message]) else None

    def add_messages(
        self, owner: str, conversation_id: str, messages: list[dict], *, leaf_id: str = ""
    ) -> bool:
        """Add message rows below the shown leaf (`parent_id` "") and show `leaf_id` (the
        last one), under the conversation's row lock. See `History.add_messages`."""
        key = owner_key(owner)
        with self._conn() as conn:
            row = self._row(conn, key, conversation_id, lock=True)
            if row is None:
                return False
            below = row["leaf_id"]
            for m in messages:
                if m.get("parent_id") == "":
                    m["parent_id"] = below
                below = m["id"]
            asked = next((m["content"] for m in messages if m["role"] == "user"), None)
            title = title_from(asked) if asked is not None and row["title"] == "New chat" else None
            conn.execute(
                "UPDATE conversations SET leaf_id = %s, updated_ns = %s,"
                " title = coalesce(%s, title) WHERE owner_key = %s AND id = %s",
                (leaf_id or below, time.time_ns(), title, key, conversation_id),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    _INSERT_MESSAGE, [_message_params(key, conversation_id, m) for m in messages]
                )
        return True

    def show_leaf(self, owner: str, conversation_id: str, leaf_id: str) -> bool:
        """Show the branch ending at `leaf_id`; `updated_at` stays."""
        if not isinstance(conversation_id, str) or not _ID.match(conversation_id):
            return False
        with self._conn() as conn:
            done = conn.execute(
                "UPDATE conversations c SET leaf_id = %s WHERE c.owner_key = %s AND c.id = %s"
                " AND EXISTS (SELECT 1 FROM messages m WHERE m.owner_key = c.owner_key"
                " AND m.conversation_id = c.id AND m.id = %s)",
                (leaf_id, owner_key(owner), conversation_id, leaf_id),
            )
            return done.rowcount == 1

    def update_message(
        self, owner: str, conversation_id: str, message_id: str, **fields: Any
    ) -> bool:
        """Change fields of one message (e.g. a streamed answer as it grows)."""
        allowed = {k: v for k, v in fields.items() if k in MESSAGE_FIELDS}
        if not isinstance(conversation_id, str) or not _ID.match(conversation_id):
            return False
        key = owner_key(owner)
        with self._conn() as conn:
            touched = conn.execute(  # the conversation's row first: the order of every write
                "UPDATE conversations SET updated_ns = %s WHERE owner_key = %s AND id = %s",
                (time.time_ns(), key, conversation_id),
            )
            if touched.rowcount != 1:
                return False
            content = allowed.pop("content", None)
            done = conn.execute(
                "UPDATE messages SET content = coalesce(%s, content), extra = extra || %s"
                " WHERE owner_key = %s AND conversation_id = %s AND id = %s",
                (content, Jsonb(allowed), key, conversation_id, message_id),
            )
            return done.rowcount > 0

    # -- settings -----------------------------------------------------------------------

    def get_settings(self, owner: str) -> dict:
        return self.settings_by_key(owner_key(owner))

    def update_settings(self, owner: str, changes: dict[str, Any]) -> dict:
        with self._conn() as conn:
            row = conn.execute(
                "INSERT INTO owners (owner_key, settings) VALUES (%s, %s) ON CONFLICT (owner_key)"
                " DO UPDATE SET settings = coalesce(owners.settings, '{}') || excluded.settings"
                " RETURNING settings",
                (owner_key(owner), Jsonb(changes)),
            ).fetchone()
        return row["settings"]

    # -- whole owners -------------------------------------------------------------------

    def add_conversations(
        self, owner: str, conversations: Iterable[tuple[dict, list[dict]]]
    ) -> int:
        """Store whole conversations (an import) in one transaction; ids this owner already
        has are skipped. How many were added."""
        key = owner_key(owner)
        added = 0
        with self._conn() as conn:
            for row, messages in conversations:
                if not isinstance(row.get("id"), str) or not _ID.match(row["id"]):
                    continue
                added += self._write_new(key, *_stored(row, messages), conn)
        return added

    def move_owner(self, source: str, target: str) -> int:
        """Move every conversation and setting of `source` to `target` (sign-in), in one
        transaction, then retire `source`. How many moved (ids `target` already had stay
        with it, and the visitor's copies go)."""
        src, dst = owner_key(source), owner_key(target)
        with self._conn() as conn:
            self._owned(conn, dst)
            moved = conn.execute(
                "UPDATE conversations SET owner_key = %s WHERE owner_key = %s AND id NOT IN"
                " (SELECT id FROM conversations WHERE owner_key = %s)",
                (dst, src, dst),
            ).rowcount
            settings = conn.execute(
                "SELECT settings FROM owners WHERE owner_key = %s", (src,)
            ).fetchone()
            if settings and settings["settings"]:
                conn.execute(
                    "UPDATE owners SET settings = %s || coalesce(settings, '{}')"
                    " WHERE owner_key = %s",
                    (Jsonb(settings["settings"]), dst),
                )
            conn.execute("DELETE FROM owners WHERE owner_key = %s", (src,))
            self._retire(conn, src)
        return moved

    def has_files(self, owner: str) -> bool:
        """Whether anything was ever stored for this owner."""
        with self._conn() as conn:
            return bool(
                conn.execute(
                    "SELECT 1 FROM owners WHERE owner_key = %s", (owner_key(owner),)
                ).fetchone()
            )

    @staticmethod
    def _retire(conn: Connection, key: str) -> bool:
        done = conn.execute(
            "INSERT INTO retired_owners (owner_key) VALUES (%s) ON CONFLICT DO NOTHING", (key,)
        )
        return done.rowcount == 1

    def retire(self, owner: str) -> None:
        with self._conn() as conn:
            self._retire(conn, owner_key(owner))

    def is_retired(self, owner: str) -> bool:
        with self._conn() as conn:
            return bool(
                conn.execute(
                    "SELECT 1 FROM retired_owners WHERE owner_key = %s", (owner_key(owner),)
                ).fetchone()
            )

    def owners(self) -> Iterator[str]:
        with self._conn() as conn:
            rows = conn.execute("SELECT owner_key FROM owners ORDER BY owner_key").fetchall()
        return iter([r["owner_key"] for r in rows])

    def settings_by_key(self, owner_key: str) -> dict:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT settings FROM owners WHERE owner_key = %s", (owner_key,)
            ).fetchone()
        return dict(row["settings"]) if row and row["settings"] else {}

    def conversations_by_key(self, owner_key: str) -> Iterator[dict]:
        """Every conversation of one owner key, with all fields and messages (deployer tools)."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT * FROM conversations WHERE owner_key = %s ORDER BY id", (owner_key,)
            ).fetchall()
            found = conn.execute(
                "SELECT * FROM messages WHERE owner_key = %s ORDER BY seq", (owner_key,)
            ).fetchall()
        messages: dict[str, list[dict]] = {}
        for m in found:
            messages.setdefault(m["conversation_id"], []).append(_message(m))
        for row in rows:
            yield {**self._full_row(row), "messages": messages.get(row["id"], [])}

    # -- loading a TinyDB data directory (chat/migrate.py) --------------------------------

    def load_owner(
        self,
        key: str,
        settings: dict,
        conversations: Iterable[tuple[dict, list[dict], int]],
        links: list[dict],
    ) -> tuple[int, int, int, int]:
        """One owner key's data, in one transaction; what is here already stays (its
        settings, conversations with the same id, links). (owner, conversations, messages,
        links) added."""
        added = messages = listed = 0
        with self._conn() as conn:
            new = self._owned(conn, key)
            if settings:
                conn.execute(
                    "UPDATE owners SET settings = coalesce(settings, %s) WHERE owner_key = %s",
                    (Jsonb(settings), key),
                )
            for row, rows, ns in conversations:
                if isinstance(row.get("id"), str) and _ID.match(row["id"]):
                    stored, stored_messages, _ = _stored(row, rows)
                    if self._write_new(key, stored, stored_messages, ns, conn):
                        added, messages = added + 1, messages + len(stored_messages)
            for link in links:
                listed += conn.execute(_INSERT_LINK, _link_params(key, link)).rowcount
        return int(new), added, messages, listed

    def load_snapshot(self, share_id: str, snapshot: dict, messages: list[dict]) -> bool:
        """A share link's snapshot, unless it is here already."""
        with self._conn() as conn:
            return (
                conn.execute(
                    "INSERT INTO share_snapshots (id, snapshot, messages) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (share_id, Jsonb(snapshot), Jsonb(messages)),
                ).rowcount
                == 1
            )

    def retire_key(self, key: str) -> bool:
        """Retire an owner key (True: it was not yet)."""
        with self._conn() as conn:
            return self._retire(conn, key)

    # -- share links --------------------------------------------------------------------

    def save_share(self, owner: str, link: dict, snapshot: dict, messages: list[dict]) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO share_snapshots (id, snapshot, messages) VALUES (%s, %s, %s)",
                (link["id"], Jsonb(snapshot), Jsonb(messages)),
            )
            self._list_shares(conn, owner_key(owner), [link])

    @staticmethod
    def _list_shares(conn: Connection, key: str, links: list[dict]) -> None:
        PgHistory._owned(conn, key)
        with conn.cursor() as cur:
            cur.executemany(_INSERT_LINK, [_link_params(key, r) for r in links])

    def list_shares(self, owner: str, links: list[dict]) -> None:
        if links:
            with self._conn() as conn:
                self._list_shares(conn, owner_key(owner), links)

    def share_links(self, owner: str) -> list[dict]:
        with self._conn() as conn:
            return conn.execute(
                "SELECT id, conversation_id, title, created_at FROM share_links"
                " WHERE owner_key = %s ORDER BY created_at",
                (owner_key(owner),),
            ).fetchall()

    def share_snapshot(self, share_id: str) -> dict | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT snapshot, messages FROM share_snapshots WHERE id = %s", (share_id,)
            ).fetchone()
        return None if row is None else {**row["snapshot"], "messages": row["messages"]}

    def drop_shares(self, owner: str, keep: Callable[[dict], bool]) -> list[str]:
        key = owner_key(owner)
        with self._conn() as conn:
            links = conn.execute(
                "SELECT id, conversation_id, title, created_at FROM share_links"
                " WHERE owner_key = %s FOR UPDATE",
                (key,),
            ).fetchall()
            gone = [r["id"] for r in links if not keep(r)]
            conn.execute(
                "DELETE FROM share_links WHERE owner_key = %s AND id = ANY(%s)", (key, gone)
            )
            conn.execute("DELETE FROM share_snapshots WHERE id = ANY(%s)", (gone,))
        return gone


def _stored(row: dict, messages: list[dict]) -> tuple[dict, list[dict], int]:
    """A conversation from an import or a TinyDB file as PostgreSQL keeps it: in shape 2
    (a shape-1 list read as one branch, its last message shown), `updated_at` as ns."""
    messages = [{"id": new_id(), "content": "", **m} for m in messages]
    messages = tree.as_tree(messages)
    row = {**row, "leaf_id": tree.shown_leaf(messages, row.get("leaf_id"))}
    row.setdefault("title", "New chat")
    row.setdefault("created_at", row.get("updated_at") or iso(time.time_ns()))
    return row, messages, _ns_of(row.get("updated_at"))
