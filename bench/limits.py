"""The cost of usage limits (chat/limits.py) per message, with 200 simultaneous chats.

Parlor twice on one scripted server, without limits and with all four set (per person and
per address, per minute and per day, high enough that none refuses): each time, ROUNDS
bursts of 200 people (each their own cookie) sending a message at the same instant over
`/api/chat`, one-token answers, so that what is measured is the admission of messages
rather than streaming; each app is run twice (off, on, on, off) and the two averaged.
Figures: the server's CPU per message and each burst's time, with limits beside without;
then `Limits.admit` alone, in process, per message.

    python -m bench.limits
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.common import (
    Figure,
    Report,
    ScriptedProcess,
    bench_main,
    cpu_seconds,
    http_client,
    launch_parlor,
    median,
    tokens_script,
    workdir,
)
from chat.limits import Limits, address_key

CHATS = 200
ROUNDS = 3
HIGH = "1000000"  # never reached: every message is counted, none refused
LIMITS = {
    "PARLOR_LIMIT_PER_MINUTE": HIGH,
    "PARLOR_LIMIT_PER_DAY": HIGH,
    "PARLOR_LIMIT_PER_ADDRESS_PER_MINUTE": HIGH,
    "PARLOR_LIMIT_PER_ADDRESS_PER_DAY": HIGH,
}


async def burst(url: str) -> tuple[float, int]:
    """CHATS people send at once; seconds until every answer has ended, and how many ok."""
    clients = [http_client(base_url=url) for _ in range(CHATS)]
    try:
        await asyncio.gather(*(c.get("session/check") for c in clients))  # their cookies
        start = time.perf_counter()

        async def one(c: httpx.AsyncClient) -> bool:
            async with c.stream("POST", "api/chat", json={"message": "Hello!"}) as r:
                body = b"".join([chunk async for chunk in r.aiter_bytes()])
            return r.status_code == 200 and b"event: complete" in body

        ok = await asyncio.gather(*(one(c) for c in clients))
        return time.perf_counter() - start, sum(ok)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def measure(url: str, pid: int) -> tuple[float, float]:
    """Server CPU (ms) per message and the median burst time (s), over ROUNDS bursts."""
    await burst(url)  # warm-up
    cpu, times = cpu_seconds(pid), []
    for _ in range(ROUNDS):
        seconds, ok = await burst(url)
        if ok != CHATS:
            raise RuntimeError(f"{CHATS - ok} of {CHATS} chats failed")
        times.append(seconds)
    return (cpu_seconds(pid) - cpu) * 1000 / (CHATS * ROUNDS), median(times)


def admit_cost(n: int = 200_000) -> tuple[float, float]:
    """Microseconds per `Limits.admit`, all four limits on, 200 people on 200 addresses;
    and the same call with no limit set."""
    people = [(f"anon:{i:040d}", address_key(f"10.0.{i // 256}.{i % 256}")) for i in range(CHATS)]
    costs = []
    for limits in (
        Limits(per_minute=10**9, per_day=10**9, per_address_minute=10**9, per_address_day=10**9),
        Limits(),
    ):
        start = time.perf_counter()
        for i in range(n):
            limits.admit(*people[i % CHATS])
        costs.append((time.perf_counter() - start) * 1e6 / n)
    return costs[0], costs[1]


async def run(report: Report) -> None:
    with workdir() as tmp, ScriptedProcess(tokens_script(1, 0)) as model:
        results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        # Each twice, in the order off, on, on, off: what drifts over the run (the other
        # work on the machine) weighs on both alike.
        for name in ("off", "on", "on", "off"):
            app = launch_parlor(tmp, model.base_url, env=LIMITS if name == "on" else {})
            try:
                results[name].append(await measure(app.url, app.proc.pid))
            finally:
                app.stop()
    cpu_on, time_on = (sum(x) / 2 for x in zip(*results["on"], strict=True))
    cpu_off, time_off = (sum(x) / 2 for x in zip(*results["off"], strict=True))
    what = f"{CHATS} simultaneous chats over /api/chat"
    report.add(Figure(f"server CPU per message, {what}", cpu_on, "ms", cpu_off, "no limits"))
    report.add(Figure(f"time for {CHATS} chats at once", time_on, "s", time_off, "no limits"))
    on, off = admit_cost()
    report.add(Figure("Limits.admit per message (in process)", on, "µs", off, "no limit set"))


if __name__ == "__main__":
    bench_main(__doc__, "limits", "usage limits with 200 simultaneous chats", run)
