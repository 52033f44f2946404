"""Move a TinyDB data directory into PostgreSQL:

    python -m chat.migrate --from data/ --to postgresql://parlor@db.internal/parlor

Every owner's settings, conversations (files of shape 1 or 2: PostgreSQL keeps shape 2),
share links and their snapshots, and the ids retired at sign-in. Idempotent: what the
database already holds stays as it is (a conversation with the same owner and id, a link,
settings), so running it twice adds nothing, and an interrupted run can be run again. The
data directory is only read. Prints what it added; a damaged file is named and skipped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from .history import AtomicJSONStorage, CorruptFile, History
from .history_pg import PgHistory, StoreUnavailable

log = logging.getLogger("parlor.migrate")


@dataclass
class Counts:
    owners: int = 0
    conversations: int = 0
    messages: int = 0
    share_links: int = 0
    share_snapshots: int = 0
    retired_ids: int = 0

    def __str__(self) -> str:
        return ", ".join(
            f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)
        )


def _read(path: Path) -> dict:
    """A TinyDB file's tables (empty when it is missing or damaged: named in the log)."""
    try:
        return AtomicJSONStorage(path).read() or {}
    except CorruptFile:
        log.warning("damaged file skipped: %s", path)
        return {}


def _conversations(files: History, key: str) -> Iterator[tuple[dict, list[dict], int]]:
    """An owner's conversations, each with its messages and its `updated_at` in ns (the
    file's modification time, which the TinyDB listing shows)."""
    for conv in files.conversations_by_key(key):
        path = files.root / key / "conversations" / f"{conv['id']}.json"
        messages = conv.pop("messages")
        yield conv, messages, os.stat(path).st_mtime_ns


def migrate(data_dir: Path, url: str) -> Counts:
    """Copy everything under `data_dir` into the database at `url`; what was added."""
    files = History(data_dir)
    pg = PgHistory(url, pool_size=2)
    added = Counts()
    try:
        for key in sorted(files.owners()):
            links = list(_read(files.root / key / "shares.json").get("shares", {}).values())
            new, convs, messages, listed = pg.load_owner(
                key, files.settings_by_key(key), _conversations(files, key), links
            )
            added.owners += new
            added.conversations += convs
            added.messages += messages
            added.share_links += listed
        for path in sorted((Path(data_dir) / "shares").glob("*.json")):
            tables = _read(path)
            rows = list(tables.get("share", {}).values())
            if rows:
                snapshot = list(tables.get("messages", {}).values())
                added.share_snapshots += pg.load_snapshot(path.stem, rows[0], snapshot)
        retired = Path(data_dir) / "retired"
        for marker in sorted(retired.iterdir()) if retired.is_dir() else []:
            added.retired_ids += pg.retire_key(marker.name)
    finally:
        pg.close()
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="data directory")
    parser.add_argument("--to", dest="url", required=True, help="postgresql://… URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if not (args.source / "owners").is_dir():
        print(f"{args.source} is not a Parlor data directory (no owners/ in it)", file=sys.stderr)
        return 2
    if not args.url.startswith(("postgresql://", "postgres://")):
        print("--to must be a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        added = migrate(args.source, args.url)
    except StoreUnavailable as e:
        print(f"nothing moved: {e}", file=sys.stderr)
        return 1
    print(f"added {added}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
