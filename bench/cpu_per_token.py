"""Target 1: server CPU per streamed token, Parlor vs a bare gr.ChatInterface.

Both apps stream the same scripted answer (500 tokens, 2 ms apart) from one scripted
server. Each round runs STREAMS chats at once on one app and reads the app process's CPU
time (utime + stime from /proc) before and after; rounds alternate between the apps. Both
the browser path (the UI's chat event via queue/join) and the API path (/chat via
/gradio_api/call) are measured. Target: Parlor ≤ 1/3 of the bare app's CPU per token. Then
Parlor's plain HTTP door (/api/chat), beside the bare app's API path (reported).

A second, informational pass streams at a model's everyday pace (100 tokens, 20 ms apart),
where frames of 30 ms hold fewer tokens.

    python -m bench.cpu_per_token
"""

from __future__ import annotations

import asyncio
import time

from bench.common import (
    ChatDriver,
    Figure,
    Report,
    ScriptedProcess,
    bench_main,
    both_apps,
    cpu_seconds,
    last_token,
    median,
    tokens_script,
    workdir,
)

TOKENS = 500
DELAY = 0.002
STREAMS = 2  # chats at once in a round
ROUNDS = 5
SLOW_TOKENS = 100
SLOW_DELAY = 0.02
SLOW_ROUNDS = 2
BARE = "bare ChatInterface"


async def measure_round(driver: ChatDriver, pid: int, tokens: int) -> float:
    """Server CPU seconds per token over one round of STREAMS simultaneous chats."""
    clients = [driver.client() for _ in range(STREAMS)]
    try:
        pages = [await driver.warm(c) for c in clients]
        before = cpu_seconds(pid)
        streams = await asyncio.gather(
            *(
                driver.chat(c, "Tell me a long story.", last=last_token(tokens), session=page)
                for c, page in zip(clients, pages, strict=True)
            )
        )
        after = cpu_seconds(pid)
    finally:
        for c in clients:
            await c.aclose()
    bad = [s for s in streams if not (s.ok and s.saw_last)]
    if bad:
        raise RuntimeError(f"{driver.label}: {len(bad)} chats did not complete: {bad[0].error}")
    return (after - before) / (STREAMS * tokens)


async def idle_rate(pid: int, seconds: float = 2.0) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


async def compare(report: Report, parlor, bare, *, tokens: int, rounds: int, label: str, target):
    bare_api: list[float] = []
    for path in ("browser", "api", "http"):
        drivers = [(ChatDriver.parlor(parlor.url, path), parlor.proc.pid)]
        if path != "http":  # the bare app has no such door: its API path stands in
            drivers.append((ChatDriver.bare(bare.url, path), bare.pid))
        for driver, _pid in drivers:  # warm-up: first-call imports and caches
            async with driver.client() as c:
                await driver.chat(c, "warm up", session=await driver.warm(c))
        per_token: dict[str, list[float]] = {d.label: [] for d, _ in drivers}
        for number in range(rounds):
            for driver, pid in drivers if number % 2 == 0 else drivers[::-1]:
                started = time.perf_counter()
                value = await measure_round(driver, pid, tokens)
                per_token[driver.label].append(value)
                print(
                    f"    {label} {path} round {number + 1}: {driver.label} "
                    f"{value * 1e6:.1f} µs/token ({time.perf_counter() - started:.1f} s)",
                    flush=True,
                )
        if path == "api":
            bare_api = per_token[BARE]
        ours = median(per_token["Parlor"]) * 1e6
        theirs = median(per_token.get(BARE, bare_api)) * 1e6
        ratio = ours / theirs
        gradio_path = path != "http"  # target 1 is about Gradio's two paths
        report.add(
            Figure(
                f"CPU per token, {path} path, {label}"
                if gradio_path
                else f"CPU per token, plain HTTP (/api/chat), {label}",
                ours,
                "µs",
                baseline=theirs,
                baseline_name=BARE if gradio_path else f"{BARE}, API path",
                target="ratio ≤ 0.333" if target and gradio_path else "",
                met=(ratio <= 1 / 3) if target and gradio_path else None,
                note=f"median of {rounds} rounds × {STREAMS} chats × {tokens} tokens",
            )
        )


async def run(report: Report) -> None:
    with workdir() as tmp:
        with ScriptedProcess(tokens_script(TOKENS, DELAY)) as srv:
            with both_apps(tmp, srv.base_url) as (parlor, bare):
                report.note(
                    f"idle CPU: Parlor {await idle_rate(parlor.proc.pid) * 100:.2f}% of a core, "
                    f"bare {await idle_rate(bare.pid) * 100:.2f}% (included in the figures)"
                )
                await compare(
                    report,
                    parlor,
                    bare,
                    tokens=TOKENS,
                    rounds=ROUNDS,
                    label=f"{TOKENS} tokens {DELAY * 1000:g} ms apart",
                    target=True,
                )
        with ScriptedProcess(tokens_script(SLOW_TOKENS, SLOW_DELAY)) as srv:
            with both_apps(tmp, srv.base_url) as (parlor, bare):
                await compare(
                    report,
                    parlor,
                    bare,
                    tokens=SLOW_TOKENS,
                    rounds=SLOW_ROUNDS,
                    label=f"{SLOW_TOKENS} tokens {SLOW_DELAY * 1000:g} ms apart",
                    target=False,
                )


def main() -> None:
    bench_main(__doc__, "cpu_per_token", "server CPU per streamed token (target 1)", run)


if __name__ == "__main__":
    main()
