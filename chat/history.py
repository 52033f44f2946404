"""The conversation store: TinyDB files under the data directory, sharded per owner.

Data model::

    <data_dir>/owners/<owner_key>/index.json              one row per conversation:
                                                          id, title, model, created_at
    <data_dir>/owners/<owner_key>/conversations/<id>.json table "conversation" (the same row,
                                                          with leaf_id and shape) and table
                                                          "messages": id, parent_id, role,
                                                          content, reasoning, created_at, model,
                                                          incomplete, notice, finish_reason

Shape 2 (`SHAPE`): a conversation is a tree (`chat/tree.py`): each message names its parent,
and the conversation its shown leaf. Files of shape 1 (a plain list, no `shape` field) are
read as one branch, and rewritten in shape 2 by the first write that changes them.

`owner_key` is a hash of the owner id, so the raw id (a cookie secret) is never on disk.
Each file holds one conversation, so a write costs in proportion to that conversation, never
to the whole store. A conversation's `updated_at` is also its file's modification time, which
the listing reads, so adding a message writes that one file and never the index. The index
is written whole, so new conversations reach it in batches (INDEX_BATCH): until then their
files are the only record, and a listing read from disk picks up the files the index does not
name. The index only repeats what the files hold, and is rebuilt from them when damaged.
Writes are atomic (temporary file, fsync, rename, fsync of the folder) and serialised per
file, so a crash never leaves half a file and concurrent writers lose nothing.

Listing: each owner's summaries are kept in memory, newest last, and updated by every write
made through this `History`, so listing the newest N costs the same whatever the owner has.
A change made on disk by anyone else (another process) changes the folder's or the index's
modification time or the index's inode, and the next listing reads the owner again.

Search (`search`, chat/search_index.py): each searcher's message texts are kept in memory,
read from the files at their first search; every write below drops the text of the
conversation it changed, so nothing deleted stays findable, and no search data is on disk.

Ownership: every function takes the owner, and `_conversation_path` is the one place that
turns (owner, conversation id) into a file. A conversation of someone else is simply not
under this owner's directory, so it looks exactly like a missing one.

Deleting wins: a write to a conversation checks that its file exists under the file's lock
(`_existing`) and never creates it, so a save landing after a delete (or after a sign-in
moved the owner's conversations) is refused. Only a new conversation creates a file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from . import search_index, tree
from .locks import KeyedLocks

log = logging.getLogger("parlor.history")

_ID = re.compile(r"^[0-9a-f]{32}$")
TITLE_WORDS = 8
MAX_TITLE_CHARS = 200  # a title is a line in the sidebar; its first words could be 16,000
SHAPE = 2  # conversation files: 1 a list of messages, 2 a tree of them (see above)


class CorruptFile(Exception):
    """A stored file is not UTF-8 JSON of the store's shape. It is left untouched so nothing
    is lost."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"stored file is damaged: {path}")
        self.path = path


# The text fields without which a row of these tables cannot be used (others: any row).
_REQUIRED = {
    "conversation": ("id", "model"),
    "conversations": ("id",),
    "messages": ("role", "content"),
}


def _well_formed(data: object) -> bool:
    """Whether parsed JSON has the shape TinyDB and this store expect: tables of rows (dicts
    under their doc ids), each row with the text fields its table needs."""
    if not isinstance(data, dict):
        return False
    for name, table in data.items():
        if not isinstance(table, dict):
            return False
        required = _REQUIRED.get(name, ())
        for row in table.values():
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in required):
                return False
    return True


class AtomicJSONStorage(Storage):
    """TinyDB storage that reads a file once, keeps TinyDB's changes in memory, and on
    `flush()` writes them in one go: a temporary file, fsync, then a rename into place.

    TinyDB rewrites the whole file for every table operation; buffering makes one `_open`
    block (say, add a message and retitle the conversation) cost one read and one write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._data: dict[str, Any] | None = None
        self._dirty = False

    def read(self) -> dict[str, Any] | None:
        if self._data is None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            except UnicodeDecodeError:
                raise CorruptFile(self.path) from None
            try:
                data = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                raise CorruptFile(self.path) from None
            if not _well_formed(data):
                raise CorruptFile(self.path)
            self._data = data
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        self._data = data
        self._dirty = True

    def flush(self, *, mtime_ns: int | None = None) -> None:
        if not self._dirty or self._data is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        # json.dumps, not json.dump: only a one-shot encode uses the C encoder (5-10× faster).
        text = json.dumps(self._data, ensure_ascii=False, separators=(",", ":"))
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            os.replace(tmp, self.path)
        except BaseException:  # a full disk: the previous version stays, and so does its space
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)  # the rename itself survives a crash only once its folder is
        self._dirty = False

    def close(self) -> None:
        pass


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="microseconds")


def now() -> str:
    return iso(time.time_ns())


def new_id() -> str:
    return uuid.uuid4().hex


def _ns_of(stamp: str | None) -> int:
    """An ISO time as nanoseconds since the epoch (now, when missing or unreadable)."""
    try:
        when = dt.datetime.fromisoformat(stamp or "")
    except ValueError:
        return time.time_ns()
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1e9)


def _untouched(folder: Path, before_ns: int) -> list[str]:
    """The ids of the conversation files in an owner's folder last changed before `before_ns`."""
    try:
        entries = list(os.scandir(folder / "conversations"))
    except FileNotFoundError:
        return []
    return [
        e.name[:-5]
        for e in entries
        if e.name.endswith(".json") and _ID.match(e.name[:-5]) and _mtime_ns(e) < before_ns
    ]


def _imported_since(path: Path, before_ns: int) -> bool:
    """Whether the conversation in this file was imported at `before_ns` or later: an
    import keeps the conversation's own dates, and retention counts from the import."""
    try:
        rows = json.loads(path.read_text()).get("conversation", {}).values()
    except (OSError, ValueError, AttributeError):
        return False  # unreadable: as any other file of its age
    stamps = [r.get("imported_at") for r in rows if isinstance(r, dict)]
    return any(_ns_of(stamp) >= before_ns for stamp in stamps if stamp)


def _mtime_ns(entry: os.DirEntry) -> int:
    try:
        return entry.stat().st_mtime_ns
    except FileNotFoundError:  # deleted meanwhile: nothing to expire
        return time.time_ns()


def _texts(path: str, sig: tuple[int, int, int]) -> search_index.Texts:
    """One conversation file's searchable text (a damaged file: none, its title only)."""
    try:
        data = AtomicJSONStorage(Path(path)).read() or {}
    except CorruptFile:
        log.warning("conversation file %s is damaged; searched by title only", Path(path).name)
        return search_index.Texts(sig)
    return search_index.read_texts(sig, data.get("messages", {}).values())


def _result(row: dict, match_in: str, message_id: str | None, text: str, wanted: list[str]) -> dict:
    snippet, marks = search_index.snippet(text, wanted)
    return {
        **_summary(row),
        "match_in": match_in,
        "message_id": message_id,
        "snippet": snippet,
        "marks": marks,
    }


def _titled(changes: dict) -> dict:
    """The listed fields among a write's changes (`updated_at` comes from the file)."""
    return {k: v for k, v in changes.items() if k in ("title", "model")}


def message_row(
    role: str,
    content: str,
    *,
    parent_id: str | None = None,
    stamp: str = "",
    model: str | None = None,
    incomplete: bool = False,
    notice: str = "",
    reasoning: str = "",
    finish_reason: str | None = None,
) -> dict:
    """A new message row (with a new id)."""
    return {
        "id": new_id(),
        "parent_id": parent_id,
        "role": role,
        "content": content,
        "reasoning": reasoning,
        "created_at": stamp or now(),
        "model": model,
        "incomplete": incomplete,
        "notice": notice,
        "finish_reason": finish_reason,
    }


MESSAGE_FIELDS = (
    "content",
    "reasoning",
    "incomplete",
    "notice",
    "finish_reason",
    "feedback",
    "watermark",  # optional: absent in files of older Parlors (read as None)
)


def _upgrade(db: TinyDB) -> list[dict]:
    """Rewrite a shape-1 file's rows in shape 2 (one branch, its last message shown), in
    place; the messages either way."""
    conv = db.table("conversation")
    messages = db.table("messages")
    rows = conv.all()
    if not rows or rows[0].get("shape") == SHAPE:
        return messages.all()
    previous: list[str | None] = [None]

    def chain(row: dict) -> None:
        row.setdefault("id", new_id())
        row.setdefault("parent_id", previous[0])
        previous[0] = row["id"]

    messages.update(chain)
    every = messages.all()
    conv.update({"shape": SHAPE, "leaf_id": tree.shown_leaf(every, rows[0].get("leaf_id"))})
    return every


def new_conversation(
    model: str,
    title: str,
    conversation_id: str,
    first_message: str | None,
    messages: Iterable[dict],
) -> tuple[dict, list[dict], int]:
    """A new conversation's summary row, its first messages (`first_message` first, when
    given) and its time in ns, titled after the first user message unless `title` is given
    (both stores: see `History.create_conversation`)."""
    if conversation_id and not _ID.match(conversation_id):
        raise ValueError("a conversation id is 32 hexadecimal digits")
    ns = time.time_ns()
    stamp = iso(ns)
    messages = list(messages)
    if first_message is not None:
        messages.insert(0, message_row("user", first_message, stamp=stamp))
    first = next((m["content"] for m in messages if m["role"] == "user"), None)
    if first is not None and not title:
        title = title_from(first)
    row = {
        "id": conversation_id or new_id(),
        "title": clip_title(title),
        "model": model,
        "created_at": stamp,
        "updated_at": stamp,
    }
    return row, messages, ns


def title_from(text: str) -> str:
    """A conversation's first title: the first words of its first message."""
    words = text.split(maxsplit=TITLE_WORDS)
    title = " ".join(words[:TITLE_WORDS])
    if len(title) > MAX_TITLE_CHARS:
        return title[: MAX_TITLE_CHARS - 1] + "…"
    return title + ("…" if len(words) > TITLE_WORDS else "") if title else "New chat"


def clip_title(title: str) -> str:
    """A title as stored: at most MAX_TITLE_CHARS characters ("New chat" when empty)."""
    title = title.strip()
    return title[:MAX_TITLE_CHARS] if title else "New chat"


_SUMMARY = ("id", "title", "model", "created_at", "updated_at")


def _summary(row: dict) -> dict:
    """A conversation row's listed fields (what the index holds)."""
    return {k: row.get(k) for k in _SUMMARY}


LISTINGS_KEPT = 2_000  # people whose listing stays in memory (a few hundred bytes a row)
# New conversations reach the index in batches of this many: the index is written whole, so
# writing it for each new conversation made starting one cost in proportion to how many the
# owner has (5.0 ms with 1,000 vs 1.8 ms with 10). Their files hold the rows meanwhile.
INDEX_BATCH = 32


@dataclass
class _Listing:
    """One owner's conversation summaries as (mtime_ns, summary), oldest first, as of `stamp`
    (`updated_at` is the file's mtime, formatted once here rather than at every listing)."""

    stamp: tuple[int, ...]
    rows: OrderedDict[str, tuple[int, dict]] = field(default_factory=OrderedDict)
    unindexed: set[str] = field(default_factory=set)  # rows the index does not hold yet


def owner_key(owner: str) -> str:
    """What stands for an owner in the store: a hash, so the raw id (a cookie secret) is
    never stored (TinyDB's folder name, PostgreSQL's `owner_key`)."""
    if not owner:
        raise ValueError("every read and write names its owner")
    return hashlib.sha256(owner.encode()).hexdigest()[:40]


class History:
    """Per-owner conversations and messages, kept in TinyDB files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "owners"
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks = KeyedLocks()  # one per file
        self._listings: OrderedDict[str, _Listing] = OrderedDict()  # least recent first
        self._listings_guard = threading.Lock()
        self._search = search_index.SearchIndex()

    # -- files and locks ----------------------------------------------------------------

    def _owner_dir(self, owner: str) -> Path:
        return self.root / owner_key(owner)

    def _conversation_path(self, owner: str, conversation_id: str) -> Path | None:
        """The one ownership check: where the owner's file for this id is (None for an id
        that cannot be one). Whether it exists is only known under its lock (`_existing`)."""
        if not isinstance(conversation_id, str) or not _ID.match(conversation_id):
            return None
        return self._owner_dir(owner) / "conversations" / f"{conversation_id}.json"

    @contextmanager
    def _existing(
        self,
        owner: str,
        conversation_id: str,
        *,
        stamp_ns: int | None = None,
        upgrade: bool = False,
    ) -> Iterator[TinyDB | None]:
        """The owner's conversation file opened under its lock, or None if there is none;
        in shape 2 (`_upgrade`) when this opening is to change it (`upgrade`).

        Existence is checked under the lock: a delete (or a move at sign-in) landing just
        before would otherwise let this write create the file again, after "deleted"."""
        path = self._conversation_path(owner, conversation_id)
        if path is None:
            yield None
            return
        with self._locks.hold(path):
            if not path.exists():
                yield None
                return
            with self._open(path, stamp_ns=stamp_ns) as db:
                if upgrade:
                    _upgrade(db)
                yield db

    @contextmanager
    def _open(self, path: Path, *, stamp_ns: int | None = None) -> Iterator[TinyDB]:
        """TinyDB on one file, under its lock; changes are written once, at the end.

        A conversation file's modification time is its `updated_at` (`stamp_ns`): the listing
        reads it from the file system, so adding a message never rewrites the index."""
        with self._locks.hold(path):
            db = TinyDB(path, storage=AtomicJSONStorage)
            yield db
            db.storage.flush(mtime_ns=stamp_ns)
            db.close()

    def _index(self, owner: str) -> AbstractContextManager[TinyDB]:
        return self._index_at(self._owner_dir(owner) / "index.json")

    @contextmanager
    def _index_at(self, path: Path) -> Iterator[TinyDB]:
        with self._locks.hold(path):
            try:
                with self._open(path) as db:
                    db.storage.read()  # read now, to find damage early
                    yield db
                    return
            except CorruptFile:
                self._rebuild_index(path)
            with self._open(path) as db:
                yield db

    def _rebuild_index(self, path: Path) -> None:
        """The index only repeats what the conversation files hold: rebuild it from them."""
        aside = path.with_name(f"index.json.damaged-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
        shutil.move(path, aside)
        log.warning("rebuilt a damaged conversation index (kept aside as %s)", aside.name)
        rows = []
        for conv in (path.parent / "conversations").glob("*.json"):
            try:
                with self._open(conv) as db:
                    # Plain rows: TinyDB would insert a Document under its own doc_id (1).
                    rows += [_summary(r) for r in db.table("conversation")]
            except CorruptFile:
                log.warning("conversation file %s is damaged; left untouched", conv.name)
        with self._open(path) as db:
            db.table("conversations").insert_multiple(rows)

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
        """A new conversation (with `conversation_id` when given: a fresh `new_id()`).

        With `first_message` (or `messages`, rows made with `message_row`, the last one
        shown), it holds them and is titled after the first, in one write of its file and one
        of the index (rather than two of each). `fields`: extra fields of the conversation
        row (e.g. the sharing consent)."""
        row, messages, ns = new_conversation(model, title, conversation_id, first_message, messages)
        path = self._owner_dir(owner) / "conversations" / f"{row['id']}.json"
        leaf = messages[-1]["id"] if messages else None
        with self._open(path, stamp_ns=ns) as db:
            # extras never replace the summary
            db.table("conversation").insert({**fields, **row, "shape": SHAPE, "leaf_id": leaf})
            db.table("messages").insert_multiple(messages)
        self._index_new(owner, row)
        self._touched(owner, row["id"], **{k: v for k, v in row.items() if k != "updated_at"})
        return dict(row)

    def list_conversations(self, owner: str, limit: int | None = None) -> list[dict]:
        """The owner's conversation summaries, most recently updated first (the newest
        `limit` of them, when given)."""
        listing = self._listing(owner)
        newest = reversed(listing.rows.values())
        picked = newest if limit is None else islice(newest, max(limit, 0))
        return [dict(summary) for _, summary in picked]

    # -- the in-memory listing ------------------------------------------------------------

    def _stamp(self, owner: str) -> tuple[int, ...]:
        """What changes when anyone writes this owner's files: the conversations folder's
        mtime (files added, replaced, removed) and the index's inode and mtime."""
        folder = self._owner_dir(owner)
        stamp: list[int] = []
        for path in (f"{folder}/conversations", f"{folder}/index.json"):
            try:
                st = os.stat(path)
                stamp += [st.st_mtime_ns, st.st_ino]
            except FileNotFoundError:
                stamp += [0, 0]
        return tuple(stamp)

    def _listing(self, owner: str) -> _Listing:
        stamp = self._stamp(owner)
        with self._listings_guard:
            listing = self._listings.get(owner)
            if listing is not None and listing.stamp == stamp:
                self._listings.move_to_end(owner)
                return listing
        listing = self._read_listing(owner, stamp)
        with self._listings_guard:
            self._listings[owner] = listing
            while len(self._listings) > LISTINGS_KEPT:  # the people seen least recently
                self._listings.popitem(last=False)
        return listing

    def _read_listing(self, owner: str, stamp: tuple[int, ...]) -> _Listing:
        """The listing from disk: the index's rows and those of conversation files it does
        not name yet (see INDEX_BATCH), with each file's mtime as `updated_at`."""
        with self._index(owner) as index:
            rows = index.table("conversations").all()
        folder = f"{self._owner_dir(owner)}/conversations/"  # str: pathlib costs 10 µs a join
        unindexed = self._unindexed_rows(folder, {row["id"] for row in rows})
        found = []
        for row in rows + unindexed:
            try:
                ns = os.stat(f"{folder}{row['id']}.json").st_mtime_ns
            except FileNotFoundError:
                continue  # deleted while we listed
            found.append((ns, {**_summary(row), "updated_at": iso(ns)}))
        found.sort(key=lambda pair: pair[0])
        listing = OrderedDict((summary["id"], (ns, summary)) for ns, summary in found)
        return _Listing(stamp, listing, {row["id"] for row in unindexed})

    def _unindexed_rows(self, folder: str, indexed: set[str]) -> list[dict]:
        """The rows of the conversation files in `folder` that the index does not name."""
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        rows = []
        for name in names:
            cid = name[:-5]
            if not name.endswith(".json") or cid in indexed or not _ID.match(cid):
                continue  # includes the temporary files of writes in progress
            try:
                with self._open(Path(folder) / name) as db:
                    rows += db.table("conversation").all()[:1]
            except CorruptFile:
                log.warning("conversation file %s is damaged; left untouched", name)
        return rows

    def _index_new(self, owner: str, row: dict) -> None:
        """Add a new conversation's summary to the index, in batches of INDEX_BATCH: until
        the batch is full, it is only noted in the owner's listing (kept in memory)."""
        with self._listings_guard:
            listing = self._listings.get(owner)
        if listing is None:  # read it now (for someone new, a folder of one file)
            listing = self._listing(owner)
        with self._listings_guard:
            if len(listing.unindexed | {row["id"]}) < INDEX_BATCH:
                listing.unindexed.add(row["id"])
                return
            waiting = [listing.rows[cid][1] for cid in listing.unindexed if cid in listing.rows]
        with self._index(owner) as index:
            table = index.table("conversations")
            indexed = {r["id"] for r in table.all()}
            batch = {r["id"]: _summary(r) for r in [*waiting, row]}
            table.insert_multiple(r for cid, r in batch.items() if cid not in indexed)
        with self._listings_guard:
            listing.unindexed.difference_update(batch)

    def _touched(self, owner: str, conversation_id: str, **changes: Any) -> None:
        """After this process wrote a conversation: move it to its place in the listing."""
        folder = self._owner_dir(owner)
        self._search.forget(folder.name, conversation_id)
        path = f"{folder}/conversations/{conversation_id}.json"
        with self._listings_guard:
            listing = self._listings.get(owner)
            if listing is None:
                return
            try:
                ns = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                listing.rows.pop(conversation_id, None)
            else:
                old = listing.rows.pop(conversation_id, None)
                summary = {**(old[1] if old else {}), **changes, "updated_at": iso(ns)}
                newest = next(reversed(listing.rows.values()), (0, None))[0]
                if old is None and not {"id", "title", "model", "created_at"} <= summary.keys():
                    del self._listings[owner]  # not enough to list it: read again
                    return
                listing.rows[conversation_id] = (ns, summary)
                if ns < newest:  # an import of an older conversation: rare, read again
                    del self._listings[owner]
                    return
            listing.stamp = self._stamp(owner)

    def _forget_listing(self, owner: str) -> None:
        with self._listings_guard:
            self._listings.pop(owner, None)

    def get_conversation(self, owner: str, conversation_id: str) -> dict | None:
        """The conversation with every message (each with its `parent_id`) and the shown
        leaf's id, or None when this owner has no such id."""
        with self._existing(owner, conversation_id) as db:
            if db is None:
                return None
            rows = db.table("conversation").all()
            messages = db.table("messages").all()
        if not rows:
            return None
        messages = tree.as_tree(dict(m) for m in messages)
        leaf = tree.shown_leaf(messages, rows[0].get("leaf_id"))
        # the system prompt it started with travels with it (older rows have none)
        prompt = {k: rows[0][k] for k in ("system_prompt",) if k in rows[0]}
        return {**_summary(rows[0]), **prompt, "leaf_id": leaf, "messages": messages}

    def rename_conversation(
        self, owner: str, conversation_id: str, title: str, by: str = "person"
    ) -> dict | None:
        """Retitle it. A title the person set is marked so: one written for them (`by` "model")
        never replaces it, checked under the file's lock (None then, as when there is none)."""
        return self._update_summary(owner, conversation_id, title=clip_title(title), _by=by)

    def delete_conversation(self, owner: str, conversation_id: str) -> bool:
        """Remove the conversation's file from disk (not a flag). False if there is none."""
        return self._delete(owner, [conversation_id]) == 1

    def delete_all_conversations(self, owner: str) -> int:
        return self._delete(owner, [c["id"] for c in self.list_conversations(owner)])

    def _delete(self, owner: str, ids: list[str]) -> int:
        """Remove these conversations' files, then their index rows in one write."""
        gone = [cid for cid in ids if self._unlink(owner, cid)]
        if not gone:
            return 0
        with self._index(owner) as index:
            index.table("conversations").remove(Query().id.one_of(set(gone)))
        with self._listings_guard:
            if (listing := self._listings.get(owner)) is not None:
                listing.unindexed.difference_update(gone)
        for cid in gone:
            self._touched(owner, cid)
        return len(gone)

    def _unlink(self, owner: str, conversation_id: str) -> bool:
        """Remove one conversation's file under its lock; False if there is none."""
        path = self._conversation_path(owner, conversation_id)
        if path is None:
            return False
        with self._locks.hold(path):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def delete_untouched(self, before_ns: int) -> dict[str, list[str]]:
        """Retention: delete every owner's conversations not changed since `before_ns`
        (nanoseconds since the epoch; a file's mtime is its `updated_at`). Per owner key
        (see `owners`), the ids deleted; their share links go with them. A write landing
        first keeps its conversation."""
        swept: dict[str, list[str]] = {}
        for key in self.owners():
            folder = self.root / key
            old = _untouched(folder, before_ns)
            gone = [cid for cid in old if self._expire(folder, cid, before_ns)]
            if not gone:
                continue
            with self._index_at(folder / "index.json") as index:
                index.table("conversations").remove(Query().id.one_of(set(gone)))
            for cid in gone:
                self._search.forget(key, cid)
            links = folder / "shares.json"
            self._drop_links_at(links, lambda r, ids=set(gone): r["conversation_id"] not in ids)
            swept[key] = gone
        with self._listings_guard:  # read again from disk at their next listing
            for owner in [o for o in self._listings if self._owner_dir(o).name in swept]:
                del self._listings[owner]
        return swept

    def _expire(self, folder: Path, conversation_id: str, before_ns: int) -> bool:
        """Remove one conversation file if it is still untouched since `before_ns`."""
        path = folder / "conversations" / f"{conversation_id}.json"
        with self._locks.hold(path):
            try:
                if path.stat().st_mtime_ns >= before_ns or _imported_since(path, before_ns):
                    return False
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    # -- search -------------------------------------------------------------------------

    def search(self, owner: str, wanted: list[str], limit: int) -> list[dict]:
        """The newest `limit` conversations holding every wanted word (lower-case) in their
        title or the content of any message (any branch), as summaries with `match_in`
        ("title" or "message"), `message_id` (the first message holding a word the title
        lacks), `snippet` and `marks` (`search_index.snippet`). See chat/search_index.py."""
        if not wanted or limit <= 0:
            return []
        folder = self._owner_dir(owner)
        stamp = self._stamp(owner)  # before the listing: a change meanwhile is seen next time
        listing = self._listing(owner)
        with self._listings_guard:
            rows = [summary for _, summary in reversed(listing.rows.values())]
        texts = self._search.texts(
            folder.name, f"{folder}/conversations/", [r["id"] for r in rows], stamp, _texts
        )
        found: list[dict] = []
        for row in rows:
            rest = search_index.match(row["title"] or "", texts.get(row["id"]), wanted)
            if rest is not None and (hit := self._hit(owner, row, rest, wanted)) is not None:
                found.append(hit)
                if len(found) == limit:
                    break
        return found

    def _hit(self, owner: str, row: dict, rest: list[str], wanted: list[str]) -> dict | None:
        """A search result: the title's match, or the first message holding a word of
        `rest` (read from its file: None if it was deleted meanwhile)."""
        if not rest:
            return _result(row, "title", None, row["title"], wanted)
        with self._existing(owner, row["id"]) as db:
            if db is None:
                return None
            messages = db.table("messages").all()
        for m in messages:
            lowered = str(m.get("content") or "").lower()
            if any(w in lowered for w in rest):
                return _result(row, "message", m.get("id"), m["content"], wanted)
        return None  # changed since it was read: the next search reads it again

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
        """Add a message below the shown leaf, and show it; the first user message also
        titles a new conversation."""
        message = message_row(
            role, content, model=model, incomplete=incomplete, notice=notice, parent_id=""
        )
        return message if self.add_messages(owner, conversation_id, [message]) else None

    def add_messages(
        self, owner: str, conversation_id: str, messages: list[dict], *, leaf_id: str = ""
    ) -> bool:
        """Add message rows (`message_row`) and show `leaf_id` (default: the last one), in
        one write. A row whose `parent_id` is "" goes below the shown leaf. The first user
        message titles a conversation still called "New chat". False: no such conversation."""
        ns = time.time_ns()
        changes: dict[str, Any] = {"updated_at": iso(ns)}
        with self._existing(owner, conversation_id, stamp_ns=ns, upgrade=True) as db:
            if db is None:
                return False
            conv = db.table("conversation")
            first = conv.all()[0] if conv.all() else {}
            below = first.get("leaf_id")
            for m in messages:
                if m.get("parent_id") == "":
                    m["parent_id"] = below
                below = m["id"]
            db.table("messages").insert_multiple(messages)
            asked = next((m["content"] for m in messages if m["role"] == "user"), None)
            if asked is not None and first.get("title") == "New chat":
                changes["title"] = title_from(asked)
            conv.update({**changes, "leaf_id": leaf_id or below})
        if "title" in changes:  # the index holds titles; recency comes from the file itself
            self._update_index(owner, conversation_id, changes)
        self._touched(owner, conversation_id, **_titled(changes))
        return True

    def show_leaf(self, owner: str, conversation_id: str, leaf_id: str) -> bool:
        """Show the branch ending at `leaf_id`. Not a change of the conversation: its
        `updated_at` (and place in the listing) stays. False: no such message here."""
        with self._stamp_kept(owner, conversation_id) as ns:
            if ns is None:
                return False
            with self._existing(owner, conversation_id, stamp_ns=ns, upgrade=True) as db:
                if db is None or not db.table("messages").contains(Query().id == leaf_id):
                    return False
                db.table("conversation").update({"leaf_id": leaf_id})
        return True

    @contextmanager
    def _stamp_kept(self, owner: str, conversation_id: str) -> Iterator[int | None]:
        """The file's modification time, under its lock (None: there is none), for a write
        that is not a change of the conversation to keep it."""
        path = self._conversation_path(owner, conversation_id)
        if path is None:
            yield None
            return
        with self._locks.hold(path):
            try:
                ns = path.stat().st_mtime_ns
            except FileNotFoundError:
                ns = None
            yield ns

    def update_message(
        self, owner: str, conversation_id: str, message_id: str, **fields: Any
    ) -> bool:
        """Change fields of one message (e.g. a streamed answer as it grows)."""
        allowed = {k: v for k, v in fields.items() if k in MESSAGE_FIELDS}
        ns = time.time_ns()
        with self._existing(owner, conversation_id, stamp_ns=ns, upgrade=True) as db:
            if db is None:
                return False
            done = db.table("messages").update(allowed, Query().id == message_id)
            db.table("conversation").update({"updated_at": iso(ns)})
        self._touched(owner, conversation_id)
        return bool(done)

    # -- helpers ------------------------------------------------------------------------

    def _update_summary(
        self, owner: str, conversation_id: str, _by: str = "", **changes: Any
    ) -> dict | None:
        """Change the conversation's summary (its title). Not a new message: its
        `updated_at`, and so its place in the listing, stays."""
        with self._stamp_kept(owner, conversation_id) as ns:
            if ns is None:
                return None
            changes["updated_at"] = iso(ns)
            with self._existing(owner, conversation_id, stamp_ns=ns, upgrade=True) as db:
                if db is None:
                    return None
                conv = db.table("conversation")
                if _by and _by != "person" and conv.all()[0].get("title_set_by") == "person":
                    return None
                conv.update({**changes, "title_set_by": _by} if _by else changes)
                row = conv.all()[0]
        self._update_index(owner, conversation_id, changes)
        self._touched(owner, conversation_id, **_titled(changes))
        return _summary(row)

    def _update_index(self, owner: str, conversation_id: str, changes: dict) -> None:
        with self._index(owner) as index:
            index.table("conversations").update(changes, Query().id == conversation_id)

    # -- settings -----------------------------------------------------------------------

    def get_settings(self, owner: str) -> dict:
        path = self._owner_dir(owner) / "settings.json"
        if not path.exists():
            return {}
        with self._open(path) as db:
            rows = db.table("settings").all()
        return dict(rows[0]) if rows else {}

    def update_settings(self, owner: str, changes: dict[str, Any]) -> dict:
        path = self._owner_dir(owner) / "settings.json"
        with self._open(path) as db:
            table = db.table("settings")
            if table.all():
                table.update(changes)
            else:
                table.insert(changes)
            return dict(table.all()[0])

    def set_conversation_fields(self, owner: str, conversation_id: str, **fields: Any) -> bool:
        """Set extra fields on a conversation (e.g. the sharing consent), not its summary."""
        with self._existing(owner, conversation_id, upgrade=True) as db:
            if db is None:
                return False
            db.table("conversation").update(fields)
        self._touched(owner, conversation_id)
        return True

    def conversation_row(self, owner: str, conversation_id: str) -> dict | None:
        """The stored conversation row with every field (summary and extras)."""
        with self._existing(owner, conversation_id) as db:
            if db is None:
                return None
            rows = db.table("conversation").all()
        return dict(rows[0]) if rows else None

    # -- whole owners -------------------------------------------------------------------

    def add_conversations(
        self, owner: str, conversations: Iterable[tuple[dict, list[dict]]]
    ) -> int:
        """Store whole conversations (an import); ids this owner already has are skipped.
        Returns how many were added. Each file is written, then the index once, then the
        listing is read again once: the cost grows with the number added, not its square."""
        added = [row for row, messages in conversations if self._write_new(owner, row, messages)]
        self._index_many(owner, added)
        return len(added)

    def _write_new(self, owner: str, conversation: dict, messages: list[dict]) -> bool:
        """Write a whole conversation's file, unless the owner already has its id."""
        path = self._conversation_path(owner, conversation.get("id"))
        if path is None:
            return False
        with self._locks.hold(path):
            if path.exists():
                return False
            with self._open(path, stamp_ns=_ns_of(conversation.get("updated_at"))) as db:
                db.table("conversation").insert(conversation)
                db.table("messages").insert_multiple(messages)
        return True

    def _index_many(self, owner: str, rows: list[dict]) -> None:
        """Add the summaries of conversations just written to the index, in one write."""
        if not rows:
            return
        with self._index(owner) as index:
            table = index.table("conversations")
            indexed = {r["id"] for r in table.all()}
            table.insert_multiple(_summary(r) for r in rows if r["id"] not in indexed)
        self._forget_listing(owner)  # read again once, at the next listing

    def move_owner(self, source: str, target: str) -> int:
        """Move every conversation and setting of `source` to `target` (login), then retire
        `source` so that nothing reaches its data any more. Returns how many moved."""
        moved = [
            row
            for conv in self.list_conversations(source)
            if (row := self._move(source, target, conv["id"])) is not None
        ]
        self._index_many(target, moved)
        settings = self.get_settings(source)
        if settings:
            self.update_settings(target, {**settings, **self.get_settings(target)})
        src = self._owner_dir(source)
        if src.exists():
            shutil.rmtree(src)
        self._forget_listing(source)
        self._search.forget_owner(src.name)
        self.retire(source)
        return len(moved)

    def _move(self, source: str, target: str, conversation_id: str) -> dict | None:
        """Copy one conversation to `target`, then remove it from `source`, all under the
        source file's lock: an answer still being saved there is refused, never re-created.
        The row moved, or None (none there, or `target` already has that id)."""
        path = self._conversation_path(source, conversation_id)
        if path is None:
            return None
        with self._locks.hold(path):
            with self._existing(source, conversation_id) as db:
                if db is None:
                    return None
                rows = db.table("conversation").all()
                messages = [dict(m) for m in db.table("messages").all()]
            row = dict(rows[0]) if rows else None
            written = row is not None and self._write_new(target, row, messages)
            path.unlink()
        return row if written else None

    def has_files(self, owner: str) -> bool:
        """Whether anything was ever stored for this owner (one stat: no listing is read)."""
        return self._owner_dir(owner).exists()

    def retire(self, owner: str) -> None:
        """Mark an owner id as used up: a cookie still naming it gets a fresh identity."""
        marker = self.root.parent / "retired" / self._owner_dir(owner).name
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def is_retired(self, owner: str) -> bool:
        return (self.root.parent / "retired" / self._owner_dir(owner).name).exists()

    def owners(self) -> Iterator[str]:
        """The owner keys present in the store (for deployer tools, which see no raw ids)."""
        return (p.name for p in self.root.iterdir() if p.is_dir())

    def settings_by_key(self, owner_key: str) -> dict:
        """One owner key's settings (deployer tools, which see no raw ids)."""
        path = self.root / owner_key / "settings.json"
        if not path.exists():
            return {}
        with self._open(path) as db:
            rows = db.table("settings").all()
        return dict(rows[0]) if rows else {}

    def close(self) -> None:
        """Nothing to let go of: every write is on disk when it returns."""

    # -- share links: the files (chat/shares.py holds their rules) ------------------------

    def _snapshot_path(self, share_id: str) -> Path:
        return self.root.parent / "shares" / f"{share_id}.json"

    def _links_path(self, owner: str) -> Path:
        return self._owner_dir(owner) / "shares.json"

    def save_share(self, owner: str, link: dict, snapshot: dict, messages: list[dict]) -> None:
        """<data_dir>/shares/<id>.json holds the snapshot (tables "share" and "messages");
        the owner's shares.json lists the link (table "shares")."""
        with self._open(self._snapshot_path(link["id"])) as db:
            db.table("share").insert(snapshot)
            db.table("messages").insert_multiple(messages)
        self.list_shares(owner, [link])

    def share_links(self, owner: str) -> list[dict]:
        path = self._links_path(owner)
        if not path.exists():
            return []
        with self._open(path) as db:
            return [dict(r) for r in db.table("shares").all()]

    def share_snapshot(self, share_id: str) -> dict | None:
        path = self._snapshot_path(share_id)
        if not path.exists():
            return None
        with self._open(path) as db:
            rows = db.table("share").all()
            messages = [dict(m) for m in db.table("messages").all()]
        return {**rows[0], "messages": messages} if rows else None

    def drop_shares(self, owner: str, keep) -> list[str]:
        return self._drop_links_at(self._links_path(owner), keep)

    def _drop_links_at(self, path: Path, keep) -> list[str]:
        """Drop the links of the list at `path` for which `keep(row)` is false, then their
        snapshots. The ids dropped."""
        if not path.exists():
            return []
        with self._open(path) as db:
            table = db.table("shares")
            gone = [r["id"] for r in table.all() if not keep(r)]
            table.remove(Query().id.one_of(gone))
        for share_id in gone:
            snapshot = self._snapshot_path(share_id)
            with self._locks.hold(snapshot):
                snapshot.unlink(missing_ok=True)
        return gone

    def list_shares(self, owner: str, links: list[dict]) -> None:
        if links:
            with self._open(self._links_path(owner)) as db:
                db.table("shares").insert_multiple(links)

    def conversations_by_key(self, owner_key: str) -> Iterator[dict]:
        """Every conversation of one owner key, with all fields and messages (deployer tools)."""
        for path in sorted((self.root / owner_key / "conversations").glob("*.json")):
            try:
                with self._open(path) as db:
                    rows = db.table("conversation").all()
                    messages = db.table("messages").all()
            except CorruptFile:
                log.warning("conversation file %s is damaged; skipped", path.name)
                continue
            if rows:
                yield {**rows[0], "messages": [dict(m) for m in messages]}
