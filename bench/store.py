"""Target 4: the conversation store (chat.history.History) as it grows.

On a temporary directory (same disk as the data would be), with the real fsync:
- appending a message and listing conversations for an owner with 10 vs 1,000 of them
  (ratio ≤ 1.5), and listing 1,000 conversations in ≤ 20 ms. "Listing" is a page, the newest
  PAGE (what a sidebar or `/conversations` with `limit` shows first), as many rows for both
  owners, so that the ratio measures the history's size, not the page's; each timed listing
  follows an untimed append, so the listing is measured as it is used, between writes.
  Listing all 1,000 is measured the same way, and once more on a store just opened (its
  first read of the owner's files);
- starting a conversation (its first message, as the chat does) for an owner with 10 vs
  1,000 conversations (ratio ≤ 1.5, the mean: new rows reach the owner's index, which is
  written whole, in batches);
- the same two operations for an owner with 10 conversations when the store holds 10 vs
  10,000 other owners (must not grow: ratio ≤ 1.2, what noise allows);
- the memory the store keeps for each new person, reported.
Fixtures are written through History itself, in two worker processes, with fsync skipped
while building them only (then `sync`, so their writeback is not charged to the timings).

    python -m bench.store
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import mean

from bench.common import ROOT, Figure, Report, bench_main, median
from chat.history import INDEX_BATCH, History

OPS = 100  # timed operations per figure
SMALL, LARGE = 10, 1_000
PAGE = SMALL  # both owners' pages hold 10 rows (a page of 20 compared 20 rows with 10)
FEW_OWNERS, MANY_OWNERS = 10, 10_000
GROWTH_LIMIT = 1.5
FLAT_LIMIT = 1.2
LIST_MS = 20.0


@contextlib.contextmanager
def no_fsync() -> Iterator[None]:
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def fill(root: Path, owner: str, conversations: int) -> list[str]:
    """`conversations` new conversations for `owner` (titled, as after a first message)."""
    history = History(root)
    with no_fsync():
        return [
            history.create_conversation(owner, model="bench", title=f"Question {n}")["id"]
            for n in range(conversations)
        ]


def fill_others(root: Path, first: int, last: int) -> None:
    for n in range(first, last):
        fill(root, f"other-{n}", 1)


def paired(
    a: Callable[[], object],
    b: Callable[[], object],
    ops: int = OPS,
    before: tuple[Callable[[], object], Callable[[], object]] | None = None,
) -> tuple[float, float]:
    """Median milliseconds of `a` and of `b`, timed in alternation (ABBA...) so that drift
    and the disk's moods hit both alike; two untimed calls of each first. `before`: an
    untimed call made before each timed one of `a` (first) and `b` (second)."""
    for fn in (a, b, a, b):
        fn()
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(ops):
        for which in (0, 1) if n % 2 == 0 else (1, 0):
            fn = (a, b)[which]
            if before is not None:
                before[which]()
            t = time.perf_counter()
            fn()
            times[which].append((time.perf_counter() - t) * 1000)
    return median(times[0]), median(times[1])


def compare(
    h_a: History,
    owner_a: str,
    ids_a: list[str],
    h_b: History,
    owner_b: str,
    ids_b: list[str],
    limit: int | None = PAGE,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((append A, append B), (list A, list B)); each listing follows an untimed append."""
    rng = random.Random(7)

    def appender(h: History, owner: str, ids: list[str]) -> Callable[[], object]:
        return lambda: h.append_message(owner, rng.choice(ids), role="user", content="One more?")

    add_a, add_b = appender(h_a, owner_a, ids_a), appender(h_b, owner_b, ids_b)
    appends = paired(add_a, add_b)
    lists = paired(
        lambda: h_a.list_conversations(owner_a, limit),
        lambda: h_b.list_conversations(owner_b, limit),
        before=(add_a, add_b),
    )
    return appends, lists


def bounded(
    name: str, measured: tuple[float, float, str], limit: float, note: str, target_note: str = ""
) -> Figure:
    """A figure in ms whose ratio to its baseline must stay ≤ `limit`; `measured` is
    (value, baseline, baseline's name)."""
    value, base, base_name = measured
    return Figure(
        name,
        value,
        "ms",
        baseline=base,
        baseline_name=base_name,
        target=f"ratio ≤ {limit}{target_note}",
        met=value / base <= limit,
        note=note,
    )


def starts(history: History, owners: tuple[str, str]) -> tuple[list[float], list[float]]:
    """Milliseconds of OPS conversation starts by each of two owners, alternated (ABBA...).
    Each keeps what it started until the end (then they are deleted, untimed), so that new
    rows reach the owner's index in batches as they do in use."""
    made: list[tuple[str, str]] = []
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(OPS):
        for which in (0, 1) if n % 2 == 0 else (1, 0):
            t = time.perf_counter()
            cid = history.create_conversation(owners[which], model="bench", first_message="Hi!")
            times[which].append((time.perf_counter() - t) * 1000)
            made.append((owners[which], cid["id"]))
    for owner, cid in made:
        history.delete_conversation(owner, cid)
    return times


def first_listing(root: Path, owner: str, times: int = 10) -> float:
    """Median ms of the first listing by a store just opened (a fresh start)."""
    spent = []
    for _ in range(times):
        history = History(root)
        t = time.perf_counter()
        history.list_conversations(owner)
        spent.append((time.perf_counter() - t) * 1000)
    return median(spent)


def kept_per_person(root: Path, people: int = 3_000) -> float:
    """Bytes the store keeps in memory for each new person who starts a conversation, once
    twice as many have come before (its listing cache, LISTINGS_KEPT people, is full by
    then, and the interpreter's own tables have grown to their size)."""
    history = History(root)

    def arrive(first: int) -> int:
        for n in range(first, first + people):
            history.create_conversation(f"person-{n}", model="bench", first_message="Hello!")
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        with no_fsync():
            arrive(0)
            before = arrive(people)
            return (arrive(2 * people) - before) / people
    finally:
        tracemalloc.stop()


def run(report: Report) -> None:
    # Where the data would live: the repo's disk, not a tmpfs.
    base = ROOT / "bench" / "out"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="store-", dir=base) as tmp:
        root, few_root, many_root = Path(tmp) / "a", Path(tmp) / "few", Path(tmp) / "many"
        started = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            large = pool.submit(fill, root, "owner-large", LARGE)
            half = MANY_OWNERS // 2
            others = [
                pool.submit(fill_others, many_root, 0, half),
                pool.submit(fill_others, many_root, half, MANY_OWNERS),
            ]
            small_ids = fill(root, "owner-small", SMALL)
            fill_others(few_root, 0, FEW_OWNERS)
            few_ids = fill(few_root, "me", SMALL)
            large_ids = large.result()
            for job in others:
                job.result()
        many_ids = fill(many_root, "me", SMALL)
        os.sync()
        print(
            f"    built owners of {SMALL} and {LARGE:,} conversations, and stores with "
            f"{FEW_OWNERS} and {MANY_OWNERS:,} other owners, in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        history = History(root)
        (a_small, a_large), (l_small, l_large) = compare(
            history, "owner-small", small_ids, history, "owner-large", large_ids
        )
        owner_small = f"owner with {SMALL}"
        report.add(
            bounded(
                f"append a message, owner with {LARGE:,} conversations",
                (a_large, a_small, owner_small),
                GROWTH_LIMIT,
                f"median of {OPS}",
            )
        )
        report.add(
            bounded(
                f"list conversations (newest {PAGE}), owner with {LARGE:,} conversations",
                (l_large, l_small, owner_small),
                GROWTH_LIMIT,
                f"median of {OPS}; {PAGE} rows each",
            )
        )
        _, (_, all_large) = compare(
            history, "owner-small", small_ids, history, "owner-large", large_ids, limit=None
        )
        report.add(
            Figure(
                f"list all {LARGE:,} conversations",
                all_large,
                "ms",
                target=f"≤ {LIST_MS:g} ms",
                met=all_large <= LIST_MS,
                note=f"median of {OPS}, each after an append",
            )
        )
        history.list_conversations("owner-small")  # as the page does before a first message
        history.list_conversations("owner-large")
        s_large, s_small = starts(history, ("owner-large", "owner-small"))
        report.add(
            bounded(
                f"start a conversation, owner with {LARGE:,} conversations",
                (mean(s_large), mean(s_small), owner_small),
                GROWTH_LIMIT,
                f"mean of {OPS}, index batches of {INDEX_BATCH} included; median "
                f"{median(s_large):.2f} vs {median(s_small):.2f} ms, slowest "
                f"{max(s_large):.1f} vs {max(s_small):.1f} ms",
            )
        )
        report.add(
            Figure(
                f"list all {LARGE:,} conversations, first listing after a start",
                first_listing(root, "owner-large"),
                "ms",
                note="reads the index and each conversation file's mtime",
            )
        )

        few, many = History(few_root), History(many_root)
        (a_few, a_many), (l_few, l_many) = compare(few, "me", few_ids, many, "me", many_ids)
        for op, value, base_value in (
            ("append a message", a_many, a_few),
            ("list conversations", l_many, l_few),
        ):
            report.add(
                bounded(
                    f"{op}, store with {MANY_OWNERS:,} other owners",
                    (value, base_value, f"{FEW_OWNERS} other owners"),
                    FLAT_LIMIT,
                    f"median of {OPS}; the owner has {SMALL} conversations",
                    target_note=" (no growth)",
                )
            )
        report.add(
            Figure(
                "memory the store keeps per new person (3,000 after 6,000)",
                kept_per_person(Path(tmp) / "people"),
                "B",
                note="tracemalloc; per-file locks are dropped once no thread holds them",
            )
        )


def main() -> None:
    bench_main(__doc__, "store", "conversation store scaling (target 4)", run)


if __name__ == "__main__":
    main()
