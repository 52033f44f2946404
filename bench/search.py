"""Issue 19: searching a person's conversations (ChatService.search, chat/search_index.py).

On a temporary directory (the repo's disk), owners of 10 and of 1,000 conversations of 50
messages each (25 questions of ~10 words, 25 answers of ~150), written through History:
- search time, median and p90 over QUERIES of three kinds, each timed REPEAT times,
  alternated between the two owners: a word from one old answer (conversation 3 of them
  all, its 10th message), a title word (a few titles hold it) and a word found nowhere
  (every conversation's text is read through). Goal: under 100 ms at 1,000, p90 included;
- a search right after an append (the index compares the files' stamps and reads again the
  one written);
- the first search of a store just opened (every file is read: what a person's first
  search after a restart costs), and the memory the index then keeps for that person.

    python -m bench.search
"""

from __future__ import annotations

import gc
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Figure, Report, bench_main, median, pct
from bench.store import no_fsync
from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History, message_row, new_id
from chat.identity import Owner
from chat.service import ChatService

SMALL, LARGE = 10, 1_000
MESSAGES = 50
REPEAT = 20
GOAL_MS = 100.0
OLD_WORD = "zanzibarite"  # in one old answer only
TITLE_WORD = "gardening"  # in every 50th title
NOWHERE = "quixotrope"
ENDPOINT = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}  # never called
QUERIES = {"a word of an old answer": OLD_WORD, "a title word": TITLE_WORD, "nowhere": NOWHERE}


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(5_000)]


def _sentence(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choices(words, k=n)).capitalize() + "."


def conversations(count: int, seed: int = 19) -> list[tuple[dict, list[dict]]]:
    """`count` conversations of MESSAGES messages, oldest first, an hour apart."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    start = time.time() - count * 3600
    out = []
    for n in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + n * 3600))
        title = f"Question {n} about {TITLE_WORD if n % 50 == 0 else rng.choice(words)}"
        rows, parent = [], None
        for k in range(MESSAGES):
            role = "user" if k % 2 == 0 else "assistant"
            text = _sentence(rng, words, 10 if role == "user" else 150)
            if n == 3 and k == 9:
                text += f" The {OLD_WORD} was found there."
            rows.append(message_row(role, text, parent_id=parent, stamp=stamp))
            parent = rows[-1]["id"]
        row = {"id": new_id(), "title": title, "model": "bench", "created_at": stamp}
        out.append(({**row, "updated_at": stamp, "shape": 2, "leaf_id": parent}, rows))
    return out


def timed(fn: Callable[..., object], *args: object) -> float:
    t = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t) * 1000


def run(report: Report) -> None:
    base = ROOT / "bench" / "out"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="search-", dir=base) as tmp:
        root = Path(tmp)
        owners = {n: Owner(id=f"anon:{n:040d}", kind="anonymous") for n in (SMALL, LARGE)}
        started = time.perf_counter()
        with no_fsync():
            history = History(root)
            for n, owner in owners.items():
                history.add_conversations(owner.id, conversations(n))
        print(
            f"    wrote {SMALL + LARGE:,} conversations in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        service = ChatService(
            catalog=parse_catalog(
                {"models": [{"id": "bench", "name": "Bench", "endpoints": [ENDPOINT]}]}
            ),
            history=History(root),  # a store just opened: nothing read yet
            endpoints=Endpoints(environ={}),
            max_message_chars=16_000,
            frame_seconds=0,
        )

        cold = timed(service.search, owners[LARGE], NOWHERE)
        report.add(
            Figure(
                f"first search after a start, {LARGE:,} conversations",
                cold,
                "ms",
                note=f"reads all {LARGE:,} files of {MESSAGES} messages once",
            )
        )
        for kind, query in QUERIES.items():
            assert service.search(owners[LARGE], query) or query == NOWHERE, kind
        times: dict[int, list[float]] = {SMALL: [], LARGE: []}
        for r in range(REPEAT):
            for query in QUERIES.values():
                for n in (SMALL, LARGE) if r % 2 == 0 else (LARGE, SMALL):
                    times[n].append(timed(service.search, owners[n], query))
        big, small = times[LARGE], times[SMALL]
        report.add(
            Figure(
                f"search, {LARGE:,} conversations of {MESSAGES} messages (median)",
                median(big),
                "ms",
                baseline=median(small),
                baseline_name=f"{SMALL} conversations",
                target=f"< {GOAL_MS:g} ms",
                met=median(big) < GOAL_MS,
                note=f"{len(big)} searches: {', '.join(QUERIES)}",
            )
        )
        report.add(
            Figure(
                f"search, {LARGE:,} conversations of {MESSAGES} messages (p90)",
                pct(big, 90),
                "ms",
                baseline=pct(small, 90),
                baseline_name=f"{SMALL} conversations",
                target=f"< {GOAL_MS:g} ms",
                met=pct(big, 90) < GOAL_MS,
            )
        )
        for kind, query in QUERIES.items():
            spent = [timed(service.search, owners[LARGE], query) for _ in range(REPEAT)]
            report.note(f"{kind}, {LARGE:,} conversations: median {median(spent):.2f} ms")

        ids = [c["id"] for c in service.history.list_conversations(owners[LARGE].id)]
        rng = random.Random(7)
        after = []
        for _ in range(REPEAT):
            cid = rng.choice(ids)
            service.history.append_message(owners[LARGE].id, cid, role="user", content="More?")
            after.append(timed(service.search, owners[LARGE], NOWHERE))
        report.add(
            Figure(
                f"search right after an append, {LARGE:,} conversations",
                median(after),
                "ms",
                target=f"< {GOAL_MS:g} ms",
                met=median(after) < GOAL_MS,
                note=f"median of {REPEAT}; a word found nowhere",
            )
        )
        report.add(
            Figure(
                f"memory the search keeps for a person with {LARGE:,} conversations",
                kept(root, owners[LARGE]) / 2**20,
                "MiB",
                note="tracemalloc; about their messages' characters (ASCII here)",
            )
        )


def kept(root: Path, owner: Owner) -> float:
    """Bytes a store just opened keeps after one search of `owner`."""
    history = History(root)
    gc.collect()
    tracemalloc.start()
    try:
        history.list_conversations(owner.id)  # the listing is the store's, not the search's
        listed = tracemalloc.get_traced_memory()[0]
        history.search(owner.id, [NOWHERE], 20)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - listed
    finally:
        tracemalloc.stop()


def main() -> None:
    bench_main(__doc__, "search", "searching conversations (issue 19)", run)


if __name__ == "__main__":
    main()
