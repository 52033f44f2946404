"""Target 4 through the page: a message costs the same with 1,000 conversations as with 10.

The store's own figures are `bench.store`. Here the whole app is measured on the browser
path, where the sidebar lists every conversation a person has: two people, one with 10
conversations and one with 1,000 (made through the `/new_conversation` API), send short
messages in turn; the app process's CPU is read around each block of messages. Two kinds:
- continuing the conversation the page shows (the newest one);
- starting a new conversation (a page just loaded; the sidebar must then list it).
Target: ratio ≤ 1.5, as for the store.

    python -m bench.sidebar
"""

from __future__ import annotations

import asyncio

import httpx

from bench.common import (
    ChatDriver,
    Figure,
    Report,
    ScriptedProcess,
    bench_main,
    call_api,
    cpu_seconds,
    last_token,
    launch_parlor,
    median,
    tokens_script,
    workdir,
)

SMALL, LARGE = 10, 1_000
TOKENS = 5
BLOCK = 10  # messages between two readings of the CPU (its clock ticks every 10 ms)
ROUNDS = 6
LIMIT = 1.5
KINDS = ((False, "continuing the newest conversation"), (True, "starting a new conversation"))


async def person(driver: ChatDriver, base: str, conversations: int) -> httpx.AsyncClient:
    """A new person (their own cookie) with `conversations` empty conversations."""
    client = driver.client()
    await driver.warm(client)
    limit = asyncio.Semaphore(8)

    async def one() -> None:
        async with limit:
            s = await call_api(client, base, "new_conversation", [""])
            if not s.ok:
                raise RuntimeError(f"new_conversation failed: {s.error}")

    await asyncio.gather(*(one() for _ in range(conversations)))
    return client


async def pages(driver: ChatDriver, client: httpx.AsyncClient, new: bool) -> list[str | None]:
    """The pages BLOCK messages are sent from: each a page just loaded (`new`), or one page
    whose conversation has begun, so that each message continues it."""
    if new:
        return [await driver.warm(client) for _ in range(BLOCK)]
    page = await driver.warm(client)
    await driver.chat(client, "Let us begin.", last=last_token(TOKENS), session=page)
    return [page] * BLOCK


async def block(driver: ChatDriver, client: httpx.AsyncClient, pid: int, new: bool) -> float:
    """Server CPU per message (ms) over BLOCK messages."""
    sessions = await pages(driver, client, new)
    await asyncio.sleep(0.1)
    before = cpu_seconds(pid)
    for n, session in enumerate(sessions):
        s = await driver.chat(client, f"Message {n}?", last=last_token(TOKENS), session=session)
        if not (s.ok and s.saw_last):
            raise RuntimeError(f"a chat failed: {s.error}")
    await asyncio.sleep(0.1)  # the events after the answer (sidebar, buttons)
    return (cpu_seconds(pid) - before) * 1000 / BLOCK


async def run(report: Report) -> None:
    with workdir() as tmp, ScriptedProcess(tokens_script(TOKENS, 0)) as srv:
        app = launch_parlor(tmp, srv.base_url)
        try:
            driver = ChatDriver.parlor(app.url, "browser")
            few = await person(driver, app.url, SMALL)
            many = await person(driver, app.url, LARGE)
            try:
                for new, kind in KINDS:
                    times: dict[int, list[float]] = {SMALL: [], LARGE: []}
                    for client in (few, many):  # warm-up: first-call costs
                        await block(driver, client, app.proc.pid, new)
                    for r in range(ROUNDS):
                        order = [(SMALL, few), (LARGE, many)]
                        for size, client in order if r % 2 == 0 else order[::-1]:
                            times[size].append(await block(driver, client, app.proc.pid, new))
                    value, base = median(times[LARGE]), median(times[SMALL])
                    report.add(
                        Figure(
                            f"server CPU per message, browser path, {kind}, "
                            f"person with {LARGE:,} conversations",
                            value,
                            "ms",
                            baseline=base,
                            baseline_name=f"person with {SMALL}",
                            target=f"ratio ≤ {LIMIT}",
                            met=value / base <= LIMIT,
                            note=f"median of {ROUNDS} blocks of {BLOCK} messages",
                        )
                    )
            finally:
                await few.aclose()
                await many.aclose()
        finally:
            app.stop()


def main() -> None:
    bench_main(__doc__, "sidebar", "a message with 1,000 conversations vs 10 (target 4)", run)


if __name__ == "__main__":
    main()
