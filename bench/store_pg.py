"""Issue 22: the conversation store on PostgreSQL (chat.history_pg.PgHistory), the figures of
`bench.store` (and a search) on the same operations, for comparison with TinyDB's.

A PostgreSQL server of Debian's package, started as the tests start theirs (tests/pg.py) but
durable (fsync and synchronous commit on, its defaults), on a temporary folder of the same
disk; the store talks to it over loopback TCP through its connection pool:
- appending a message, listing the newest PAGE conversations (after an untimed append, as
  in use), and searching (a word of one old answer, a title word, a word found nowhere),
  for an owner with 10 vs 1,000 conversations of MESSAGES messages (ratio ≤ 1.5);
- listing all 1,000 conversations (≤ 20 ms, as TinyDB's target);
- starting a conversation (its first message) for an owner with 10 vs 1,000;
- the same append, list and search for an owner with 10 conversations in a database holding
  10 vs 10,000 other owners (no growth: ratio ≤ 1.2).
Fixtures are written through `add_conversations` (one transaction each) and, for the other
owners, one INSERT … SELECT each, then vacuumed and analysed (as autovacuum would).

    python -m bench.store_pg
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from statistics import mean

from bench.common import ROOT, Figure, Report, bench_main
from bench.search import NOWHERE, OLD_WORD, TITLE_WORD, conversations
from bench.store import (
    FEW_OWNERS,
    FLAT_LIMIT,
    GROWTH_LIMIT,
    LARGE,
    LIST_MS,
    MANY_OWNERS,
    OPS,
    PAGE,
    SMALL,
    bounded,
    paired,
    starts,
)
from chat.history_pg import PgHistory

sys.path.insert(0, str(ROOT / "tests"))
from pg import Postgres

MESSAGES = 10  # per conversation: the first ten of bench.search's (an old answer's word in one)
SEARCH_MS = 100.0  # bench.search's goal


def filled(pg: Postgres, sizes: dict[str, int]) -> PgHistory:
    """A fresh database with these owners' conversations (MESSAGES messages each)."""
    store = PgHistory(pg.url(pg.create_database()))
    for owner, count in sizes.items():
        store.add_conversations(
            owner, [(row, rows[:MESSAGES]) for row, rows in conversations(count)]
        )
    vacuum(store)
    return store


def vacuum(store: PgHistory) -> None:
    """What autovacuum does soon after a bulk load: statistics for the planner, and the
    search index's pending entries merged (until then a search reads them all: 30 ms
    rather than 1–2 at 1,000 conversations)."""
    with store.pool.connection() as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def add_others(store: PgHistory, count: int) -> None:
    """`count` other owners of one conversation of two messages each, in one statement each."""
    with store.pool.connection() as conn:
        conn.execute(
            "INSERT INTO owners (owner_key) SELECT 'other-' || g FROM generate_series(1, %s) g",
            (count,),
        )
        conn.execute(
            "INSERT INTO conversations (owner_key, id, title, model, created_at, updated_ns)"
            " SELECT 'other-' || g, md5(g::text), 'Question ' || g, 'bench', '2026-01-01', g"
            " FROM generate_series(1, %s) g",
            (count,),
        )
        conn.execute(
            "INSERT INTO messages (owner_key, conversation_id, id, role, content)"
            " SELECT 'other-' || g, md5(g::text), md5(g::text || r), r,"
            " 'Some words about ' || g || ' and ' || r"
            " FROM generate_series(1, %s) g, unnest(ARRAY['user', 'assistant']) r",
            (count,),
        )
    vacuum(store)


def ids(store: PgHistory, owner: str) -> list[str]:
    return [c["id"] for c in store.list_conversations(owner)]


SEARCHES = {"an old answer's word": OLD_WORD, "a title word": TITLE_WORD, "nowhere": NOWHERE}


def measure(a: tuple[PgHistory, str], b: tuple[PgHistory, str]) -> dict[str, tuple[float, float]]:
    """Median ms of append, list (newest PAGE, each after an untimed append) and search,
    for owner `a` and owner `b`, alternated."""
    rng = random.Random(7)
    ids_a, ids_b = ids(*a), ids(*b)

    def appender(store: PgHistory, owner: str, its: list[str]) -> Callable[[], object]:
        return lambda: store.append_message(owner, rng.choice(its), role="user", content="More?")

    add_a, add_b = appender(*a, ids_a), appender(*b, ids_b)
    found = {"append a message": paired(add_a, add_b)}
    found["list conversations (newest 10)"] = paired(
        lambda: a[0].list_conversations(a[1], PAGE),
        lambda: b[0].list_conversations(b[1], PAGE),
        before=(add_a, add_b),
    )
    for kind, word in SEARCHES.items():
        found[f"search ({kind})"] = paired(
            lambda w=word: a[0].search(a[1], [w], 10), lambda w=word: b[0].search(b[1], [w], 10)
        )
    return found


def run(report: Report) -> None:
    pg = Postgres(durable=True)
    try:
        started = time.perf_counter()
        scale = filled(pg, {"owner-small": SMALL, "owner-large": LARGE})
        few = filled(pg, {"me": SMALL})
        many = filled(pg, {"me": SMALL})
        add_others(few, FEW_OWNERS)
        add_others(many, MANY_OWNERS)
        print(
            f"    built owners of {SMALL} and {LARGE:,} conversations ({MESSAGES} messages "
            f"each) and databases of {FEW_OWNERS} and {MANY_OWNERS:,} other owners in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        small = f"owner with {SMALL}"
        for op, (large_ms, small_ms) in measure(
            (scale, "owner-large"), (scale, "owner-small")
        ).items():
            limit, target = (SEARCH_MS, "< 100 ms") if op.startswith("search") else (0, "")
            figure = bounded(
                f"PostgreSQL: {op}, owner with {LARGE:,} conversations",
                (large_ms, small_ms, small),
                GROWTH_LIMIT,
                f"median of {OPS}",
            )
            if limit:
                figure.target, figure.met = target, large_ms < limit
            report.add(figure)
        _, all_large = paired(
            lambda: scale.list_conversations("owner-small"),
            lambda: scale.list_conversations("owner-large"),
        )
        report.add(
            Figure(
                f"PostgreSQL: list all {LARGE:,} conversations",
                all_large,
                "ms",
                target=f"≤ {LIST_MS:g} ms",
                met=all_large <= LIST_MS,
                note=f"median of {OPS}",
            )
        )
        s_large, s_small = starts(scale, ("owner-large", "owner-small"))
        report.add(
            bounded(
                f"PostgreSQL: start a conversation, owner with {LARGE:,} conversations",
                (mean(s_large), mean(s_small), small),
                GROWTH_LIMIT,
                f"mean of {OPS}; slowest {max(s_large):.1f} vs {max(s_small):.1f} ms",
            )
        )
        for op, (many_ms, few_ms) in measure((many, "me"), (few, "me")).items():
            report.add(
                bounded(
                    f"PostgreSQL: {op}, database with {MANY_OWNERS:,} other owners",
                    (many_ms, few_ms, f"{FEW_OWNERS} other owners"),
                    FLAT_LIMIT,
                    f"median of {OPS}; the owner has {SMALL} conversations",
                    target_note=" (no growth)",
                )
            )
        for store in (scale, few, many):
            store.close()
    finally:
        pg.stop()


def main() -> None:
    bench_main(__doc__, "store_pg", "conversation store on PostgreSQL (issue 22)", run)


if __name__ == "__main__":
    main()
