"""Target 3: 200 simultaneous chats at 10 tokens/s each, Parlor beside a bare ChatInterface.

200 people (each their own connections and cookie, their page loaded) send a message at the
same instant; every answer streams one token each 100 ms. 200 chats at 10 tokens/s are
2,000 tokens/s, beyond what one bare ChatInterface process streams (the issue measured
1,000-1,400): the target is that every chat keeps its pace. A chat's time runs from its send
to its last message; the ideal is the answer's own length in time. Target: every chat
completes, each within 1.15x the ideal, with answers of a typical chat's length (300 tokens,
about 225 words: 29.9 s). The same load with short answers (30 tokens, 2.9 s) is reported
beside it: there, 0.15x the ideal leaves 0.43 s to set up all 200 chats, so it measures how
fast a burst of requests is taken in rather than how streams keep their pace.

The browser path (the UI's chat event) and the API path (/chat) are run, each on Parlor and
then on the bare app, then Parlor's plain HTTP door (/api/chat, beside the bare app's API
path, its nearest equivalent); every load is bounded (a deadline of 3x the ideal, at least
40 s). First, the same load straight to the scripted server (no app in between) gives the
floor the harness itself reaches on this machine; then the same burst of one-token answers
gives what setting up 200 chats takes (the bare app on both paths, and Parlor's plain HTTP
door).

    python -m bench.concurrency
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.common import (
    FIRST_TOKEN,
    ChatDriver,
    Figure,
    Report,
    ScriptedProcess,
    Stream,
    bench_main,
    both_apps,
    cpu_seconds,
    http_client,
    last_token,
    median,
    pct,
    tokens_script,
    workdir,
)

CHATS = 200
DELAY = 0.1  # 10 tokens/s
TYPICAL = 300  # tokens in an answer of a typical chat's length: the target's load
SHORT = 30  # short answers: reported
LIMIT = 1.15
BARE = "bare ChatInterface"
LoadResult = tuple[list[Stream | None], float]  # each chat's stream, and the server CPU


def ideal(tokens: int) -> float:
    """Seconds from an answer's first token to its last, at DELAY apart."""
    return (tokens - 1) * DELAY


def deadline(tokens: int) -> float:
    return max(40.0, 3 * ideal(tokens))


def server_cpu(pids: int | list[int]) -> float:
    """CPU seconds so far of the server's processes, summed (several replicas)."""
    return sum(cpu_seconds(pid) for pid in ([pids] if isinstance(pids, int) else pids))


async def load(
    driver: ChatDriver, pid: int | list[int], tokens: int, last: str = "", chats: int = CHATS
) -> LoadResult:
    """`chats` simultaneous chats of `tokens`-token answers; each one's stream (None if it
    failed) and the server CPU (summed over `pid` when several). `last`: how the answer's
    last token shows, which ends a chat (by default the last of `tokens`)."""
    last = last or last_token(tokens)
    clients = [driver.client() for _ in range(chats)]
    try:
        pages = await asyncio.gather(*(driver.warm(c) for c in clients))
        go = asyncio.Event()

        async def one(client, page) -> Stream | None:
            await go.wait()
            try:
                return await driver.chat(client, "Hello!", last=last, session=page)
            except Exception as e:  # a refused or broken connection counts as a failure
                print(f"    {driver.label}: {type(e).__name__}: {e}", flush=True)
                return None

        tasks = [asyncio.create_task(one(c, p)) for c, p in zip(clients, pages, strict=True)]
        await asyncio.sleep(0.2)
        before = server_cpu(pid)
        go.set()
        done, pending = await asyncio.wait(tasks, timeout=deadline(tokens))
        cpu = server_cpu(pid) - before
        for t in pending:
            t.cancel()
        return [t.result() if t in done else None for t in tasks], cpu
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


async def floor(base_url: str, tokens: int) -> list[float]:
    """Each chat's time / ideal when the driver streams straight from the scripted server."""
    body = {"model": "x", "stream": True, "messages": [{"role": "user", "content": "Hello!"}]}
    clients = [http_client() for _ in range(CHATS)]
    try:
        await asyncio.gather(*(c.get(base_url[: -len("/v1")] + "/health") for c in clients))
        go = asyncio.Event()

        async def one(client) -> float:
            await go.wait()
            start = time.perf_counter()
            async with client.stream("POST", base_url + "/chat/completions", json=body) as r:
                async for line in r.aiter_lines():
                    if line == "data: [DONE]":
                        break
            return (time.perf_counter() - start) / ideal(tokens)

        tasks = [asyncio.create_task(one(c)) for c in clients]
        await asyncio.sleep(0.2)
        go.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), deadline(tokens))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def summarize(
    report: Report, path: str, results: dict[str, LoadResult], baseline: str, tokens: int
) -> None:
    """`results`: Parlor's and the bare app's; `baseline`: what to call the bare app's.
    Answers of TYPICAL tokens carry the target; others are reported."""
    span, target = ideal(tokens), tokens == TYPICAL
    what = f"{CHATS} chats × {tokens} tokens, {path}"
    rows = {}
    for label, (streams, cpu) in results.items():
        good = [s for s in streams if s is not None and s.ok and s.saw_last]
        ratios = [s.duration / span for s in good]
        within = sum(r <= LIMIT for r in ratios)
        ttfts = [s.ttft * 1000 for s in good if s.ttft is not None]
        rows[label] = (good, ratios, within, ttfts, cpu)
        print(
            f"    {what} {label}: {len(good)}/{CHATS} complete, {within} within {LIMIT}×; "
            f"time/ideal median {median(ratios) if ratios else float('nan'):.3f}, "
            f"p90 {pct(ratios, 90) if ratios else float('nan'):.3f}, "
            f"max {max(ratios) if ratios else float('nan'):.3f}; "
            f"TTFT median {median(ttfts) if ttfts else float('nan'):.0f} ms, "
            f"max {max(ttfts) if ttfts else float('nan'):.0f} ms; server CPU {cpu:.2f} s",
            flush=True,
        )
    ours, theirs = rows["Parlor"], rows[BARE]
    report.add(
        Figure(
            f"{what}: chats complete within {LIMIT}× ideal",
            ours[2],
            "chats",
            baseline=theirs[2],
            baseline_name=baseline,
            target=f"all {CHATS}" if target else "",
            met=ours[2] == CHATS if target else None,
            note=f"{len(ours[0])} vs {len(theirs[0])} completed at all",
        )
    )
    # A chat that did not finish within the deadline counts as the deadline.
    late = deadline(tokens) / span
    slowest = [max(r[1]) if len(r[0]) == CHATS else late for r in (ours, theirs)]
    unfinished = [
        f"{label} {CHATS - len(r[0])} unfinished"
        for label, r in (("Parlor", ours), ("bare", theirs))
        if len(r[0]) < CHATS
    ]
    report.add(
        Figure(
            f"{what}: slowest chat / ideal ({span:.1f} s)",
            slowest[0],
            "×",
            baseline=slowest[1],
            baseline_name=baseline,
            target=f"≤ {LIMIT}" if target else "",
            met=slowest[0] <= LIMIT if target else None,
            note=(
                f"median {median(ours[1]) if ours[1] else float('nan'):.3f} vs "
                f"{median(theirs[1]) if theirs[1] else float('nan'):.3f}"
                + (f"; {', '.join(unfinished)} (counted as the deadline)" if unfinished else "")
            ),
        )
    )
    report.add(
        Figure(
            f"{what}: server CPU for the whole load",
            ours[4],
            "s",
            baseline=theirs[4],
            baseline_name=baseline,
        )
    )


async def setup_floor(report: Report, tmp: Path) -> None:
    """The same burst when every answer is one token with no delay: what setting up CHATS
    chats takes, on the bare app (Gradio alone) and on Parlor's plain HTTP door. Short
    answers leave (LIMIT - 1) × their ideal for it."""
    budget = (LIMIT - 1) * ideal(SHORT)
    with ScriptedProcess(tokens_script(1, 0)) as srv, both_apps(tmp, srv.base_url) as apps:
        parlor, bare = apps
        for driver, pid, what in (
            (ChatDriver.bare(bare.url, "browser"), bare.pid, "the bare app, browser path"),
            (ChatDriver.bare(bare.url, "api"), bare.pid, "the bare app, api path"),
            (ChatDriver.parlor(parlor.url, "http"), parlor.proc.pid, "Parlor, /api/chat"),
        ):
            async with driver.client() as c:  # warm-up: first-call imports
                await driver.chat(c, "warm up", session=await driver.warm(c))
            streams, cpu = await load(driver, pid, 1, last=FIRST_TOKEN)
            good = [s.duration for s in streams if s is not None and s.ok and s.saw_last]
            middle = median(good) if good else float("nan")
            report.add(
                Figure(
                    f"{CHATS} one-token chats at once on {what}: the last one done after",
                    max(good) if len(good) == CHATS else deadline(1),
                    "s",
                    target=f"≤ {budget:.2f} s for short answers to be within {LIMIT}×",
                    met=len(good) == CHATS and max(good) <= budget,
                    note=f"{len(good)}/{CHATS} complete; median {middle:.2f} s; "
                    f"server CPU {cpu:.2f} s, {cpu / CHATS * 1000:.1f} ms per chat",
                )
            )
            await asyncio.sleep(1)


async def harness_floor(report: Report, base_url: str, tokens: int) -> None:
    ratios = await floor(base_url, tokens)
    within = sum(r <= LIMIT for r in ratios)
    report.add(
        Figure(
            f"{CHATS} streams × {tokens} tokens straight from the scripted server (no app): "
            "slowest / ideal",
            max(ratios),
            "×",
            note=f"the harness's own floor; median {median(ratios):.3f}, "
            f"{within}/{CHATS} within {LIMIT}×",
        )
    )


async def loads(report: Report, tmp: Path, tokens: int) -> None:
    """Every path at `tokens`-token answers: Parlor's, then the bare app's."""
    with ScriptedProcess(tokens_script(tokens, DELAY)) as srv:
        await harness_floor(report, srv.base_url, tokens)
        with both_apps(tmp, srv.base_url) as (parlor, bare):
            bare_api: LoadResult | None = None
            for path in ("browser", "api", "http"):
                drivers = [(ChatDriver.parlor(parlor.url, path), parlor.proc.pid)]
                if path != "http":  # the bare app has no such door: its API path stands in
                    drivers.append((ChatDriver.bare(bare.url, path), bare.pid))
                results = {}
                for driver, pid in drivers:
                    async with driver.client() as c:  # warm-up: first-call imports
                        await driver.chat(c, "warm up", session=await driver.warm(c))
                    started = time.perf_counter()
                    results[driver.label] = await load(driver, pid, tokens)
                    took = time.perf_counter() - started
                    print(f"    {path} {driver.label}: load ran {took:.1f} s", flush=True)
                    await asyncio.sleep(1)  # let connections close before the next load
                if path == "api":
                    bare_api = results[BARE]
                if path == "http":
                    assert bare_api is not None
                    results[BARE] = bare_api
                    summarize(
                        report, "plain HTTP (/api/chat)", results, f"{BARE}, API path", tokens
                    )
                else:
                    summarize(report, f"{path} path", results, BARE, tokens)


async def run(report: Report) -> None:
    report.note(
        f"{CHATS} chats at {1 / DELAY:g} tokens/s: answers of {TYPICAL} tokens (ideal "
        f"{ideal(TYPICAL):.1f} s, the target's load) and of {SHORT} (ideal {ideal(SHORT):.1f} s)"
    )
    with workdir() as tmp:
        await loads(report, tmp, TYPICAL)
        await setup_floor(report, tmp)
        await loads(report, tmp, SHORT)


def main() -> None:
    bench_main(__doc__, "concurrency", "200 simultaneous chats at 10 tokens/s (target 3)", run)


if __name__ == "__main__":
    main()
