"""Target 3: 200 simultaneous chats at 10 tokens/s each, Parlor beside a bare ChatInterface.

200 people (each their own connections and cookie, their page loaded) send a message at the
same instant; every answer is 30 tokens, 100 ms apart, so the ideal chat lasts 2.9 s from
the first token to the last. A chat's time runs from its send to its last message. Target:
every chat completes, each within 1.15× the ideal. The browser path (the UI's chat event)
and the API path (/chat) are run, each on Parlor and then on the bare app, then Parlor's
plain HTTP door (/api/chat, beside the bare app's API path, its nearest equivalent); every
load is bounded (a 40 s deadline per run). First, the same load straight to the scripted
server (no app in between) gives the floor the harness itself reaches on this machine; then
the same burst of one-token answers gives what setting up 200 chats takes (the bare app on
both paths, and Parlor's plain HTTP door), which target 3 leaves 0.15 × 2.9 s for.

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
TOKENS = 30
DELAY = 0.1  # 10 tokens/s
IDEAL = (TOKENS - 1) * DELAY
LIMIT = 1.15
DEADLINE = 40.0  # seconds: ~14× the ideal
BARE = "bare ChatInterface"


async def load(
    driver: ChatDriver, pid: int, last: str = last_token(TOKENS)
) -> tuple[list[Stream | None], float]:
    """CHATS simultaneous chats; each one's stream (None if it failed) and the server CPU.
    `last`: how the answer's last token shows, which ends a chat."""
    clients = [driver.client() for _ in range(CHATS)]
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
        before = cpu_seconds(pid)
        go.set()
        done, pending = await asyncio.wait(tasks, timeout=DEADLINE)
        cpu = cpu_seconds(pid) - before
        for t in pending:
            t.cancel()
        return [t.result() if t in done else None for t in tasks], cpu
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


async def floor(base_url: str) -> list[float]:
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
            return (time.perf_counter() - start) / IDEAL

        tasks = [asyncio.create_task(one(c)) for c in clients]
        await asyncio.sleep(0.2)
        go.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def summarize(
    report: Report, path: str, results: dict[str, tuple[list, float]], baseline: str
) -> None:
    """`results`: Parlor's and the bare app's; `baseline`: what to call the bare app's."""
    rows = {}
    for label, (streams, cpu) in results.items():
        good = [s for s in streams if s is not None and s.ok and s.saw_last]
        ratios = [s.duration / IDEAL for s in good]
        within = sum(r <= LIMIT for r in ratios)
        ttfts = [s.ttft * 1000 for s in good if s.ttft is not None]
        rows[label] = (good, ratios, within, ttfts, cpu)
        print(
            f"    {path} {label}: {len(good)}/{CHATS} complete, {within} within {LIMIT}×; "
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
            f"{CHATS} chats, {path} path: chats complete within {LIMIT}× ideal",
            ours[2],
            "chats",
            baseline=theirs[2],
            baseline_name=baseline,
            target=f"all {CHATS}",
            met=ours[2] == CHATS,
            note=f"{len(ours[0])} vs {len(theirs[0])} completed at all",
        )
    )
    # A chat that did not finish within the deadline counts as the deadline.
    slowest = [max(r[1]) if len(r[0]) == CHATS else DEADLINE / IDEAL for r in (ours, theirs)]
    unfinished = [
        f"{label} {CHATS - len(r[0])} unfinished"
        for label, r in (("Parlor", ours), ("bare", theirs))
        if len(r[0]) < CHATS
    ]
    report.add(
        Figure(
            f"{CHATS} chats, {path} path: slowest chat / ideal ({IDEAL:.1f} s)",
            slowest[0],
            "×",
            baseline=slowest[1],
            baseline_name=baseline,
            target=f"≤ {LIMIT}",
            met=slowest[0] <= LIMIT,
            note=(
                f"median {median(ours[1]) if ours[1] else float('nan'):.3f} vs "
                f"{median(theirs[1]) if theirs[1] else float('nan'):.3f}"
                + (f"; {', '.join(unfinished)} (counted as the deadline)" if unfinished else "")
            ),
        )
    )
    report.add(
        Figure(
            f"{CHATS} chats, {path} path: server CPU for the whole load",
            ours[4],
            "s",
            baseline=theirs[4],
            baseline_name=baseline,
        )
    )


async def setup_floor(report: Report, tmp: Path) -> None:
    """The same burst when every answer is one token with no delay: what setting up CHATS
    chats takes, on the bare app (Gradio alone) and on Parlor's plain HTTP door. Target 3
    leaves (LIMIT - 1) × IDEAL for it."""
    budget = (LIMIT - 1) * IDEAL
    with ScriptedProcess(tokens_script(1, 0)) as srv, both_apps(tmp, srv.base_url) as apps:
        parlor, bare = apps
        for driver, pid, what in (
            (ChatDriver.bare(bare.url, "browser"), bare.pid, "the bare app, browser path"),
            (ChatDriver.bare(bare.url, "api"), bare.pid, "the bare app, api path"),
            (ChatDriver.parlor(parlor.url, "http"), parlor.proc.pid, "Parlor, /api/chat"),
        ):
            async with driver.client() as c:  # warm-up: first-call imports
                await driver.chat(c, "warm up", session=await driver.warm(c))
            streams, cpu = await load(driver, pid, last=FIRST_TOKEN)
            good = [s.duration for s in streams if s is not None and s.ok and s.saw_last]
            middle = median(good) if good else float("nan")
            report.add(
                Figure(
                    f"{CHATS} one-token chats at once on {what}: the last one done after",
                    max(good) if len(good) == CHATS else DEADLINE,
                    "s",
                    target=f"≤ {budget:.2f} s for target 3 to be reachable",
                    met=len(good) == CHATS and max(good) <= budget,
                    note=f"{len(good)}/{CHATS} complete; median {middle:.2f} s; "
                    f"server CPU {cpu:.2f} s, {cpu / CHATS * 1000:.1f} ms per chat",
                )
            )
            await asyncio.sleep(1)


async def run(report: Report) -> None:
    report.note(f"{CHATS} chats × {TOKENS} tokens at {1 / DELAY:g} tokens/s; ideal {IDEAL:.1f} s")
    with workdir() as tmp, ScriptedProcess(tokens_script(TOKENS, DELAY)) as srv:
        ratios = await floor(srv.base_url)
        within = sum(r <= LIMIT for r in ratios)
        report.add(
            Figure(
                f"{CHATS} streams straight from the scripted server (no app): slowest / ideal",
                max(ratios),
                "×",
                note=f"the harness's own floor; median {median(ratios):.3f}, "
                f"{within}/{CHATS} within {LIMIT}×",
            )
        )
        await setup_floor(report, tmp)
        with both_apps(tmp, srv.base_url) as (parlor, bare):
            bare_api: tuple[list, float] | None = None
            for path in ("browser", "api", "http"):
                drivers = [(ChatDriver.parlor(parlor.url, path), parlor.proc.pid)]
                if path != "http":  # the bare app has no such door: its API path stands in
                    drivers.append((ChatDriver.bare(bare.url, path), bare.pid))
                results = {}
                for driver, pid in drivers:
                    async with driver.client() as c:  # warm-up: first-call imports
                        await driver.chat(c, "warm up", session=await driver.warm(c))
                    started = time.perf_counter()
                    results[driver.label] = await load(driver, pid)
                    took = time.perf_counter() - started
                    print(f"    {path} {driver.label}: load ran {took:.1f} s", flush=True)
                    await asyncio.sleep(1)  # let connections close before the next load
                if path == "api":
                    bare_api = results[BARE]
                if path == "http":
                    assert bare_api is not None
                    results[BARE] = bare_api
                    summarize(report, "plain HTTP (/api/chat)", results, f"{BARE}, API path")
                else:
                    summarize(report, path, results, BARE)


def main() -> None:
    bench_main(__doc__, "concurrency", "200 simultaneous chats at 10 tokens/s (target 3)", run)


if __name__ == "__main__":
    main()
