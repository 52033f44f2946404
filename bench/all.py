"""Run every benchmark, one process each, and write bench/RESULTS.md.

python -m bench.all            # all of them (about 40 minutes, the watermark's 15 to 25)
python -m bench.all store ttft # some of them, in that order
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import OUT, ROOT, Figure, fmt, machine

BENCHES = [
    "store",
    "store_pg",
    "search",
    "sidebar",
    "startup",
    "local_model",
    "cpu_per_token",
    "ttft",
    "concurrency",
    "stalls",
    "sealed_session",
    "watermark",
    "limits",
    "replicas",
]
SLOW = {"watermark": 2400}  # seconds a benchmark may take, when more than 900
RESULTS = ROOT / "bench" / "RESULTS.md"


def git_state() -> str:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "chat", "app.py")
    return f"{commit}{' + uncommitted changes in chat/' if dirty else ''}"


def table(results: list[dict]) -> list[str]:
    lines = [
        "| benchmark | figure | Parlor | baseline | ratio | target | met? |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for f in result["figures"]:
            fig = Figure(**{k: v for k, v in f.items() if k != "ratio"})
            base = (
                f"{fmt(fig.baseline)} {fig.unit} ({fig.baseline_name})"
                if fig.baseline is not None
                else "—"
            )
            ratio = f"{fig.ratio:.3f}" if fig.ratio is not None else "—"
            met = {True: "yes", False: "**no**", None: "—"}[fig.met]
            lines.append(
                f"| {result['bench']} | {fig.name} | {fmt(fig.value)} {fig.unit} | {base} "
                f"| {ratio} | {fig.target or '—'} | {met} |"
            )
    return lines


def write(results: list[dict], failed: list[str], seconds: float) -> None:
    info = machine()
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m bench.all` (each benchmark is also `python -m bench.<name>`).",
        "Every ratio is Parlor's figure over a baseline measured side by side in the same run.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory']}",
        f"- Python {info['python']}, Gradio {info['gradio']}, huggingface_hub "
        f"{info['huggingface_hub']}, llama-cpp-python {info['llama_cpp_python']}; "
        f"Linux {info['kernel']}",
        f"- Date: {info['date']}; code: {git_state()}; this run {seconds / 60:.1f} min",
        "",
        "## Figures",
        "",
        *table(results),
        "",
        "## Notes",
        "",
    ]
    for result in results:
        for note in result["notes"]:
            lines.append(f"- {result['bench']}: {note}")
    for name in failed:
        lines.append(f"- {name}: **did not finish** (see its output)")
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}", flush=True)


def main() -> None:
    names = sys.argv[1:] or BENCHES
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {BENCHES}")
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results, failed = [], []
    for name in names:
        path = OUT / f"{name}.json"
        path.unlink(missing_ok=True)
        code = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", "--json", str(path)],
            cwd=ROOT,
            timeout=SLOW.get(name, 900),
        ).returncode
        if code == 0 and path.exists():
            results.append(json.loads(path.read_text()))
        else:
            failed.append(name)
    ran = {r["bench"] for r in results}
    for name in BENCHES:  # the figures of benchmarks not run this time, from their last run
        path = OUT / f"{name}.json"
        if name not in ran and name not in failed and path.exists():
            results.append(json.loads(path.read_text()))
    results.sort(key=lambda r: BENCHES.index(r["bench"]))
    write(results, failed, time.monotonic() - started)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
