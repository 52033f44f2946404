"""Target 6 (reported): start-up time and resident memory at rest.

Start-up: wall time from launching `python app.py` to the first 200 from /healthz (which
waits for the embedded model to be loaded and warm), with the shipped models.yaml. Memory:
VmRSS of the app process plus its children (the embedded model's process), read from /proc
after a few seconds at rest. Beside it: Parlor without the embedded model (a catalog with
one `openai` endpoint), and the bare gr.ChatInterface (ready when /config answers).
Memory held per Gradio session: the growth of the app's RSS over SESSIONS calls of /chat
through /gradio_api/call (each call is a new Gradio session that the app keeps), answered by
the scripted server, divided by SESSIONS.

    python -m bench.startup
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.common import (
    ROOT,
    BareApp,
    ChatDriver,
    Figure,
    Report,
    RunningApp,
    ScriptedProcess,
    bench_main,
    bench_models_yaml,
    both_apps,
    call_api,
    children_of,
    gather_bounded,
    http_client,
    median,
    rss_bytes,
    tokens_script,
    wait_http,
    workdir,
)

LAUNCHES = 3
REST = 3.0  # seconds at rest before reading memory
MIB = 1024 * 1024
SESSIONS = 2000
AT_ONCE = 20


def footprint(pid: int) -> tuple[float, float]:
    """(RSS of the process, RSS of its children) in MiB."""
    return rss_bytes(pid) / MIB, sum(rss_bytes(c) for c in children_of(pid)) / MIB


def parlor(tmp: Path, number: int, models: Path) -> tuple[float, float, float]:
    started = time.perf_counter()
    app = RunningApp(tmp / f"data-{models.stem}-{number}", models=models)
    try:
        seconds = wait_http(app.url + "healthz", app.proc, started)
        time.sleep(REST)
        own, kids = footprint(app.proc.pid)
    finally:
        app.stop()
    return seconds, own, kids


def bare(tmp: Path) -> tuple[float, float, float]:
    app = BareApp("http://127.0.0.1:9/v1", log_dir=tmp)  # never called here
    try:
        app.wait_ready()
        time.sleep(REST)
        own, kids = footprint(app.pid)
    finally:
        app.stop()
    return app.ready_seconds, own, kids


async def session_growth(driver: ChatDriver, pid: int) -> float:
    """KiB of RSS the app keeps per call of its chat endpoint, each call a new Gradio session."""
    base, name, data = driver.base, driver.api_name, driver.api_data("Hello!")
    async with http_client() as client:
        await call_api(client, base, name, data)  # first-call imports, not sessions
        before = rss_bytes(pid)
        calls = [call_api(client, base, name, data) for _ in range(SESSIONS)]
        streams = await gather_bounded(calls, AT_ONCE)
        failed = sum(not s.ok for s in streams)
        if failed:
            raise RuntimeError(f"{failed} of {SESSIONS} calls failed: {streams[0].error}")
        await asyncio.sleep(REST)
        return (rss_bytes(pid) - before) / 1024 / SESSIONS


def memory_per_session(report: Report) -> None:
    with workdir() as tmp, ScriptedProcess(tokens_script(5, 0.0)) as srv:
        with both_apps(tmp, srv.base_url) as (ours, theirs):
            kib = asyncio.run(session_growth(ChatDriver.parlor(ours.url, "api"), ours.proc.pid))
            bare = ChatDriver.bare(theirs.url, "api")
            bare_kib = asyncio.run(session_growth(bare, theirs.pid))
    print(f"    per session: Parlor {kib:.1f} KiB, bare {bare_kib:.1f} KiB", flush=True)
    report.add(
        Figure(
            f"memory kept per Gradio session ({SESSIONS} /chat API calls)",
            kib,
            "KiB",
            baseline=bare_kib,
            baseline_name="bare ChatInterface",
            target="reported",
            note="Gradio keeps up to 10,000 sessions (gradio/state_holder.py StateHolder)",
        )
    )


def run(report: Report) -> None:
    shipped = ROOT / "models.yaml"
    results: dict[str, list[tuple[float, float, float]]] = {}
    with workdir() as tmp:
        no_local = bench_models_yaml(tmp / "models-openai.yaml", "http://127.0.0.1:9/v1")
        for number in range(LAUNCHES):
            for label, launch in (
                ("Parlor", lambda n=number: parlor(tmp, n, shipped)),
                ("Parlor without the embedded model", lambda n=number: parlor(tmp, n, no_local)),
                ("bare ChatInterface", lambda: bare(tmp)),
            ):
                seconds, own, kids = launch()
                results.setdefault(label, []).append((seconds, own, kids))
                print(
                    f"    {label}: ready in {seconds:.2f} s; RSS {own:.0f} MiB"
                    + (f" + {kids:.0f} MiB (embedded model)" if kids else ""),
                    flush=True,
                )

    def med(label: str, i: int) -> float:
        return median([r[i] for r in results[label]])

    base = "bare ChatInterface"
    report.add(
        Figure(
            "start-up to a ready /healthz (embedded model loaded)",
            med("Parlor", 0),
            "s",
            baseline=med(base, 0),
            baseline_name=base,
            target="reported",
            note=f"median of {LAUNCHES}; without the embedded model: "
            f"{med('Parlor without the embedded model', 0):.2f} s",
        )
    )
    total = med("Parlor", 1) + med("Parlor", 2)
    report.add(
        Figure(
            "resident memory at rest (app + embedded model process)",
            total,
            "MiB",
            baseline=med(base, 1) + med(base, 2),
            baseline_name=base,
            target="reported",
            note=f"app {med('Parlor', 1):.0f} MiB + model process {med('Parlor', 2):.0f} MiB; "
            f"without the embedded model: {med('Parlor without the embedded model', 1):.0f} MiB",
        )
    )
    memory_per_session(report)


def main() -> None:
    bench_main(__doc__, "startup", "start-up time and memory at rest (target 6)", run)


if __name__ == "__main__":
    main()
