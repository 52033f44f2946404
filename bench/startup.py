"""Target 6 (reported): start-up time and resident memory at rest.

Start-up: wall time from launching `python app.py` to the first 200 from /healthz (which
waits for the embedded model to be loaded and warm), with the shipped models.yaml. Memory:
VmRSS of the app process plus its children (the embedded model's process), read from /proc
after a few seconds at rest. Beside it: Parlor without the embedded model (a catalog with
one `openai` endpoint), and the bare gr.ChatInterface (ready when /config answers).

    python -m bench.startup
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import (
    ROOT,
    BareApp,
    Figure,
    Report,
    RunningApp,
    bench_main,
    bench_models_yaml,
    children_of,
    median,
    rss_bytes,
    wait_http,
    workdir,
)

LAUNCHES = 3
REST = 3.0  # seconds at rest before reading memory
MIB = 1024 * 1024


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


def main() -> None:
    bench_main(__doc__, "startup", "start-up time and memory at rest (target 6)", run)


if __name__ == "__main__":
    main()
