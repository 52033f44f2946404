"""Issue 22: 400 simultaneous chats on one replica vs two replicas behind HAProxy.

Both on PostgreSQL and Redis as the shared engines (real servers, started as the tests start
theirs: tests/pg.py, durable as in bench.store_pg, and tests/redis_server.py), the two
replicas with PARLOR_REPLICAS=2 behind HAProxy with sticky sessions (deploy/haproxy.cfg, on
loopback ports). Each person has their own connections and cookies (the balancer's pins them
to one replica) and sends one message at the same instant over `/api/chat`, the cheapest
door; every answer streams one token each 100 ms (300 tokens: 29.9 s). Figures: chats
complete, slowest chat / ideal, and Parlor's CPU per message summed over the replicas (with
HAProxy's and Redis's CPU beside it); the ratios are two replicas over one. The same load on
one replica with TinyDB files (no Redis) shows what the shared engines cost. Printed, never
asserted. The machine's cores are shared by every process here (replicas, HAProxy,
PostgreSQL, Redis, the scripted server and the clients).

    python -m bench.replicas               # 400 chats
    python -m bench.replicas --quick       # 40 chats of 30 tokens: a trial
    python -m bench.replicas --chats 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import redis

from bench.common import (
    ROOT,
    ChatDriver,
    Figure,
    Report,
    ScriptedProcess,
    bench_main,
    cpu_seconds,
    launch_parlor,
    median,
    tokens_script,
    workdir,
)
from bench.concurrency import DELAY, deadline, ideal, load

sys.path.insert(0, str(ROOT / "tests"))
from apprunner import RunningApp
from balancer import haproxy
from pg import Postgres
from redis_server import RedisServer

CHATS = 400
TOKENS = 300  # a typical chat's answer, as bench.concurrency's target load
Load = tuple[int, int]  # chats, tokens in each answer
QUICK: Load = (40, 30)  # --quick


def redis_cpu(url: str) -> float:
    """Redis's own CPU seconds so far (its INFO): it runs under runuser as root."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextlib.contextmanager
def replicas(
    tmp: Path, base_url: str, count: int, env: dict[str, str]
) -> Iterator[list[RunningApp]]:
    apps: list[RunningApp] = []
    try:
        for _ in range(count):
            apps.append(launch_parlor(tmp, base_url, env=env))
        yield apps
    finally:
        for app in apps:
            app.stop()


async def measure(
    report: Report, what: str, base: str, pids: list[int], chats: int, tokens: int
) -> dict[str, float]:
    """One load of `chats` chats through `base`; its figures printed, and returned."""
    driver = ChatDriver.parlor(base, "http")
    async with driver.client() as c:  # warm-up: first-call imports, on one replica
        await driver.chat(c, "warm up", session=await driver.warm(c))
    streams, cpu = await load(driver, pids, tokens, chats=chats)
    good = [s for s in streams if s is not None and s.ok and s.saw_last]
    span = ideal(tokens)
    ratios = [s.duration / span for s in good]
    # A chat that did not finish within the deadline counts as the deadline.
    slowest = max(ratios) if len(good) == chats else deadline(tokens) / span
    result = {
        "complete": len(good),
        "slowest": slowest,
        "median": median(ratios) if ratios else float("nan"),
        "cpu_ms": cpu / max(len(good), 1) * 1000,
    }
    print(
        f"    {what}: {len(good)}/{chats} complete; time/ideal median {result['median']:.3f}, "
        f"slowest {slowest:.3f}; Parlor CPU {cpu:.2f} s, {result['cpu_ms']:.1f} ms per message",
        flush=True,
    )
    await asyncio.sleep(1)  # let connections close before the next load
    return result


def add(
    report: Report, what: str, ours: dict[str, float], base: dict[str, float], name: str
) -> None:
    report.add(
        Figure(
            f"{what}: slowest chat / ideal",
            ours["slowest"],
            "×",
            baseline=base["slowest"],
            baseline_name=name,
            note=f"{ours['complete']:.0f} vs {base['complete']:.0f} complete; median "
            f"{ours['median']:.3f} vs {base['median']:.3f}",
        )
    )
    report.add(
        Figure(
            f"{what}: Parlor CPU per message (summed over the replicas)",
            ours["cpu_ms"],
            "ms",
            baseline=base["cpu_ms"],
            baseline_name=name,
        )
    )


async def one_replica(
    report: Report, tmp: Path, srv: ScriptedProcess, env: dict[str, str], what: str, load: Load
) -> dict[str, float]:
    with replicas(tmp, srv.base_url, 1, env) as (app,):
        return await measure(report, what, app.url, [app.proc.pid], *load)


async def two_replicas(
    report: Report,
    tmp: Path,
    srv: ScriptedProcess,
    env: dict[str, str],
    rds: RedisServer,
    load: Load,
) -> dict[str, float]:
    """Two replicas behind HAProxy; HAProxy's and Redis's CPU, and each replica's share of
    Parlor's (both must have served), in a note."""
    env = {**env, "PARLOR_REPLICAS": "2"}
    with replicas(tmp, srv.base_url, 2, env) as apps, haproxy(apps) as (url, proxy):
        pids = [a.proc.pid for a in apps]
        before = [redis_cpu(rds.url), cpu_seconds(proxy.pid), *map(cpu_seconds, pids)]
        result = await measure(report, "two replicas behind HAProxy", url, pids, *load)
        after = [redis_cpu(rds.url), cpu_seconds(proxy.pid), *map(cpu_seconds, pids)]
    used = [b - a for a, b in zip(before, after, strict=True)]
    report.note(
        f"two replicas: Redis CPU {used[0]:.2f} s, HAProxy CPU {used[1]:.2f} s (not in "
        f"Parlor's figure); Parlor CPU per replica (with the warm-up) "
        + ", ".join(f"{u:.2f} s" for u in used[2:])
    )
    return result


async def run(report: Report, args: argparse.Namespace) -> None:
    load = QUICK if args.quick else (args.chats, TOKENS)
    what = f"{load[0]} chats × {load[1]} tokens, /api/chat"
    report.note(
        f"{what} at {1 / DELAY:g} tokens/s (ideal {ideal(load[1]):.1f} s) on {os.cpu_count()} "
        "cores shared by the replicas, HAProxy, PostgreSQL, Redis, the scripted server and "
        "the clients"
    )
    pg, rds = Postgres(durable=True), RedisServer()
    try:
        with workdir() as tmp, ScriptedProcess(tokens_script(load[1], DELAY)) as srv:
            tiny = await one_replica(report, tmp, srv, {}, "one replica, TinyDB", load)
            shared = {
                "PARLOR_DATABASE_URL": pg.url(pg.create_database()),
                "PARLOR_REDIS_URL": rds.url,
            }
            before = redis_cpu(rds.url)
            one = await one_replica(
                report, tmp, srv, shared, "one replica, PostgreSQL + Redis", load
            )
            report.note(f"one replica: Redis CPU {redis_cpu(rds.url) - before:.2f} s")
            two = await two_replicas(report, tmp, srv, shared, rds, load)
    finally:
        rds.stop()
        pg.stop()
    add(report, f"{what}, two replicas behind HAProxy vs one", two, one, "one replica")
    add(report, f"{what}, one replica on PostgreSQL + Redis vs TinyDB", one, tiny, "TinyDB")


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chats", type=int, default=CHATS, help="simultaneous chats")
    parser.add_argument("--quick", action="store_true", help=f"a trial: {QUICK[0]} short chats")


def main() -> None:
    bench_main(
        __doc__,
        "replicas",
        "simultaneous chats on one replica vs two behind HAProxy",
        run,
        options=options,
    )


if __name__ == "__main__":
    main()
