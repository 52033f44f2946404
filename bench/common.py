"""What the benchmarks share: launching Parlor and the bare baseline, raw SSE clients for the
Gradio queue, /proc readers, statistics, and the figures each benchmark reports.

Clients speak Gradio's own wire protocol over httpx (no gradio_client, whose overhead would
blur the figures):

- the API path: `POST /gradio_api/call/<api_name>` → event id, then
  `GET /gradio_api/call/<api_name>/<event_id>` streams `event: generating|complete|error`;
- the browser path: `POST /gradio_api/queue/join` with `fn_index`, `trigger_id` and a
  `session_hash`, then `GET /gradio_api/queue/data?session_hash=...` streams JSON messages
  (`process_generating` carries diffs of the outputs); events that are not queued go to
  `POST /gradio_api/run/predict` with their `fn_index`, as the browser does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import inspect
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "tests"))

from apprunner import RunningApp, children_of, free_port  # noqa: E402, F401 - children_of: for bench.startup
from scripted_server import ScriptedServer  # noqa: E402, F401 - re-exported for bench.scripted

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_MODEL = "bench"  # the model id of the scripted endpoint in Parlor's bench catalog
SERVED_NAME = "scripted"


# -- figures ------------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the results table: Parlor's figure, the baseline's, and the target."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None  # None: reported only
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def line(self) -> str:
        text = f"  {self.name}: {fmt(self.value)} {self.unit}"
        if self.baseline is not None:
            text += f" | baseline ({self.baseline_name}): {fmt(self.baseline)} {self.unit}"
            if self.ratio is not None:
                text += f" | ratio {self.ratio:.3f}"
        if self.target:
            verdict = "" if self.met is None else (" MET" if self.met else " MISSED")
            text += f" | target {self.target}{verdict}"
        if self.note:
            text += f" ({self.note})"
        return text


def fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


class Report:
    """Collects a benchmark's figures, prints each as it comes, saves them as JSON.

    It also says how busy the machine was with other work meanwhile (other people's test
    runs share these cores): first it waits, a bounded time, for the machine to be quiet.
    """

    def __init__(self, bench: str, title: str) -> None:
        self.bench = bench
        self.title = title
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        print(f"== {bench}: {title}", flush=True)
        waited, busy = wait_quiet()
        if waited:
            print(f"  · waited {waited:.0f} s for a quiet machine ({busy:.0%} busy)", flush=True)
        self.started = time.monotonic()
        self._machine = machine_busy()
        self._own = own_cpu()

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(figure.line(), flush=True)
        return figure

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  · {text}", flush=True)

    def save(self, path: Path | None) -> None:
        elapsed = time.monotonic() - self.started
        busy = machine_busy()[0] - self._machine[0]
        own = own_cpu() - self._own
        cores = os.cpu_count() or 1
        others = max(0.0, busy - own) / (elapsed * cores) if elapsed else 0.0
        self.note(
            f"other processes kept {others:.0%} of the machine's {cores} cores busy during "
            f"this benchmark (ours: {own / (elapsed * cores):.0%})"
        )
        print(f"== {self.bench} done in {elapsed:.1f} s", flush=True)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "bench": self.bench,
            "title": self.title,
            "seconds": elapsed,
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
            "notes": self.notes,
            "other_load": others,
        }
        path.write_text(json.dumps(data, indent=2))


def cli(
    description: str,
    *,
    app_dir: bool = False,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    if options:
        options(parser)
    if app_dir:
        parser.add_argument(
            "--app-dir",
            type=Path,
            default=ROOT,
            help="run the app of this checkout (its app.py and tests/apprunner.py)",
        )
    return parser.parse_args()


def bench_main(
    doc: str,
    name: str,
    title: str,
    run: Callable[..., Any],
    *,
    app_dir: bool = False,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line of one benchmark: run it (a coroutine is run to its end), print its
    figures as they come, and with `--json FILE` also save them. With `app_dir`, it also
    takes `--app-dir DIR` and `run` gets that checkout's root after the report; with
    `options` (which adds its own to the parser), `run` gets the parsed arguments."""
    args = cli(doc.splitlines()[0], app_dir=app_dir, options=options)
    report = Report(name, title)
    if app_dir:
        outcome = run(report, args.app_dir.resolve())
    else:
        outcome = run(report, args) if options else run(report)
    if inspect.isawaitable(outcome):
        asyncio.run(outcome)
    report.save(args.json)


# -- statistics ---------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (0..100), by linear interpolation."""
    ys = sorted(xs)
    if len(ys) == 1:
        return ys[0]
    k = (len(ys) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ys) - 1)
    return ys[lo] + (ys[hi] - ys[lo]) * (k - lo)


# -- /proc --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def own_cpu() -> float:
    """CPU seconds of this process and of every child it has waited for (recursively)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wait_quiet(
    limit: float = 0.25, seconds: int = 3, max_wait: float = 30.0
) -> tuple[float, float]:
    """Wait until the machine has been under `limit` busy for `seconds` in a row, or for
    `max_wait` at most. (Seconds waited, how busy it was over the last second.)"""
    started = time.monotonic()
    quiet = 0
    busy = 0.0
    while time.monotonic() - started < max_wait:
        b0, t0 = machine_busy()
        time.sleep(1)
        b1, t1 = machine_busy()
        busy = (b1 - b0) / max(t1 - t0, 1e-9)
        quiet = quiet + 1 if busy < limit else 0
        if quiet >= seconds:
            break
    waited = time.monotonic() - started - seconds
    return max(0.0, waited), busy


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    import gradio
    import huggingface_hub

    try:
        import llama_cpp

        llama = llama_cpp.__version__
    except Exception:  # pragma: no cover - reported as missing
        llama = "not installed"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "gradio": gradio.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "llama_cpp_python": llama,
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- processes under test -----------------------------------------------------------------


class ScriptedProcess:
    """The scripted OpenAI server in its own process (see bench/scripted.py)."""

    def __init__(self, default: tuple[str, dict[str, Any]], **models: Any) -> None:
        config = {"default": list(default), "models": {k: list(v) for k, v in models.items()}}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.scripted", json.dumps(config)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError("the scripted server did not start")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ScriptedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tokens_script(n: int, delay: float) -> tuple[str, dict[str, Any]]:
    """n tokens, `delay` seconds apart; the first one ("Zq0") marks the first token."""
    tokens = ["Zq0"] + [f" w{i}" for i in range(1, n)]
    return ("tokens", {"tokens": tokens, "delay": delay})


FIRST_TOKEN = "Zq0"


def last_token(n: int) -> str:
    """How the last of `tokens_script(n, ...)`'s tokens shows in a JSON message."""
    return f' w{n - 1}"'


def bench_models_yaml(
    path: Path, base_url: str, *, max_tokens: int = 1024, served: dict[str, str] | None = None
) -> Path:
    """A catalog of `openai` endpoints on the scripted server: `served` maps each model's id
    to the name it is served under (by default, one model, BENCH_MODEL; the first is the
    default model)."""
    lines = ["models:"]
    for model, name in (served or {BENCH_MODEL: SERVED_NAME}).items():
        lines += [
            f"  - id: {model}",
            f"    name: Bench model{'' if model == BENCH_MODEL else ' ' + model} (scripted)",
            "    system_prompt: You are a helpful assistant.",
            f"    parameters: {{max_tokens: {max_tokens}}}",
            "    endpoints:",
            f"      - {{type: openai, base_url: '{base_url}', model: {name}}}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


class BareApp:
    """bench/bare_chatinterface.py as a process; `url` once its page answers."""

    def __init__(self, base_url: str, *, max_threads: int = 1000, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_dir / f"bare-{self.port}.log"
        env = {
            **os.environ,
            "BENCH_BASE_URL": base_url,
            "BENCH_MAX_THREADS": str(max_threads),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
        env.pop("HF_TOKEN", None)
        self._log = open(self.log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_chatinterface.py")],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 120) -> BareApp:
        self.ready_seconds = wait_http(self.url + "config", self.proc, self.started, timeout)
        return self

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def wait_http(url: str, proc: subprocess.Popen, started: float, timeout: float = 120) -> float:
    """Poll `url` every 20 ms until it answers 200; the seconds since `started`."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited early with code {proc.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise TimeoutError(f"{url} not ready in {timeout}s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_runner(app_dir: Path = ROOT) -> type[RunningApp]:
    """The `RunningApp` of the checkout at `app_dir`: it launches that checkout's app.py, so
    that one benchmark measures an older (or newer) version of Parlor as well."""
    if app_dir.resolve() == ROOT:
        return RunningApp
    path = app_dir / "tests" / "apprunner.py"
    spec = importlib.util.spec_from_file_location(f"apprunner_{abs(hash(app_dir))}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{path}: no app runner there")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RunningApp


def launch_parlor(
    workdir: Path,
    base_url: str,
    *,
    env: dict[str, str] | None = None,
    max_tokens: int = 1024,
    served: dict[str, str] | None = None,
    app_dir: Path = ROOT,
) -> RunningApp:
    """Parlor (`python app.py` of the checkout at `app_dir`) with the bench catalog (see
    `bench_models_yaml`); returned once /healthz answers."""
    models = bench_models_yaml(
        workdir / f"models-bench-{secrets.token_hex(4)}.yaml",
        base_url,
        max_tokens=max_tokens,
        served=served,
    )
    data = workdir / f"data-{secrets.token_hex(4)}"
    return app_runner(app_dir)(data, models=models, env=env).wait_ready()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="parlor-bench-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def both_apps(
    tmp: Path, base_url: str, *, parlor_env: dict[str, str] | None = None
) -> Iterator[tuple[RunningApp, BareApp]]:
    """Parlor and the bare ChatInterface, launched side by side on one scripted server."""
    bare = BareApp(base_url, log_dir=tmp)
    try:
        parlor = launch_parlor(tmp, base_url, env=parlor_env)
        try:
            bare.wait_ready()
            yield parlor, bare
        finally:
            parlor.stop()
    finally:
        bare.stop()


# -- the SSE clients ----------------------------------------------------------------------


@dataclass
class Stream:
    """Timings of one streamed event, seconds on the perf_counter clock."""

    start: float
    first: float | None = None  # when a message holding the first token arrived
    end: float | None = None
    messages: int = 0  # generating messages received
    ok: bool = False
    saw_last: bool = False  # a message held the last token (the answer arrived whole)
    error: str = ""
    final: Any = None

    @property
    def ttft(self) -> float | None:
        return None if self.first is None else self.first - self.start

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


_TLS = None


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """A client of our own. They share one TLS context: each new one would otherwise load
    the CA certificates again (~50 ms of CPU; 10 s for 200 people)."""
    global _TLS
    if _TLS is None:
        _TLS = httpx.create_ssl_context()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(120, connect=30)
    return httpx.AsyncClient(timeout=timeout, limits=limits, verify=_TLS, **kwargs)


async def read_events(
    resp: httpx.Response,
    s: Stream,
    *,
    marker: str,
    last: str | None,
    on_frame: Callable[[str], None] | None = None,
) -> None:
    """Time a stream of `generating` events that ends in `complete` or `error` (the Gradio
    API path's, and `/api/chat`'s), into `s`; `on_frame` gets each `generating` data line."""
    event = ""
    async for line in resp.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            if last is not None and not s.saw_last and last in line:
                s.saw_last = True
            if s.first is None and marker in line:
                s.first = time.perf_counter()
            if event == "generating":
                s.messages += 1
                if on_frame is not None:
                    on_frame(line)
            elif event == "complete":
                s.end = time.perf_counter()
                s.ok = True
                s.final = json.loads(line[6:])
                return
            elif event == "error":
                s.end = time.perf_counter()
                s.error = line[6:][:300]
                return


async def call_api(
    client: httpx.AsyncClient,
    base: str,
    api_name: str,
    data: list[Any],
    *,
    marker: str = FIRST_TOKEN,
    last: str | None = None,
) -> Stream:
    """One call of a named endpoint over /gradio_api/call (what the Gradio API path costs)."""
    s = Stream(start=time.perf_counter())
    r = await client.post(f"{base}gradio_api/call/{api_name}", json={"data": data})
    if r.status_code != 200:
        s.error = f"HTTP {r.status_code}: {r.text[:200]}"
        return s
    event_id = r.json()["event_id"]
    async with client.stream("GET", f"{base}gradio_api/call/{api_name}/{event_id}") as resp:
        await read_events(resp, s, marker=marker, last=last)
    return s


def session_hash() -> str:
    return secrets.token_hex(6)


def event_body(fn_index: int, data: list[Any], session: str, trigger: int | None) -> dict:
    """What the browser posts to run one event (queued or not) of a page's session."""
    return {
        "data": data,
        "event_data": None,
        "fn_index": fn_index,
        "trigger_id": trigger,
        "session_hash": session,
    }


async def run_predict(
    client: httpx.AsyncClient, base: str, fn_index: int, data: list[Any], session: str, trigger
) -> Any:
    """An event that is not queued, as the browser calls it."""
    body = event_body(fn_index, data, session, trigger)
    r = await client.post(f"{base}gradio_api/run/predict", json=body)
    r.raise_for_status()
    return r.json()


async def call_queue(
    client: httpx.AsyncClient,
    base: str,
    fn_index: int,
    data: list[Any],
    session: str,
    *,
    trigger: int | None = None,
    marker: str = FIRST_TOKEN,
    last: str | None = None,
    start: float | None = None,
    on_state_change: Callable[[], None] | None = None,
) -> Stream:
    """One queued event as the browser runs it: queue/join, then the session's SSE stream.
    `on_state_change` is called (once) when a message says a gr.State output changed, where
    the browser runs that state's .change events."""
    s = Stream(start=time.perf_counter() if start is None else start)
    body = event_body(fn_index, data, session, trigger)
    r = await client.post(f"{base}gradio_api/queue/join", json=body)
    if r.status_code != 200:
        s.error = f"HTTP {r.status_code}: {r.text[:200]}"
        return s
    params = {"session_hash": session}
    async with client.stream("GET", f"{base}gradio_api/queue/data", params=params) as resp:
        async for line in resp.aiter_lines():
            if not line.startswith("data: "):
                continue
            if s.first is None and marker in line:
                s.first = time.perf_counter()
            if last is not None and not s.saw_last and last in line:
                s.saw_last = True
            kind = _msg_kind(line)
            if on_state_change is not None and '"changed_state_ids":[' in line:
                if '"changed_state_ids":[]' not in line:
                    on_state_change()
                    on_state_change = None
            if kind == "process_generating":
                s.messages += 1
            elif kind == "process_completed":
                s.end = time.perf_counter()
                msg = json.loads(line[6:])
                s.ok = bool(msg.get("success"))
                if not s.ok:
                    s.error = json.dumps(msg.get("output"))[:300]
                s.final = msg.get("output")
                break
            elif kind in ("unexpected_error", "close_stream"):
                s.end = time.perf_counter()
                s.error = s.error or line[6:][:300]
                break
    return s


def _msg_kind(line: str) -> str:
    """The "msg" of a queue/data message, without parsing all of it (orjson writes it first
    or near the start)."""
    i = line.find('"msg":"')
    if i < 0:
        return ""
    j = line.find('"', i + 7)
    return line[i + 7 : j]


# -- chat drivers: one message, one streamed answer, on one app and one path ----------------


def load_config(base: str) -> dict:
    r = httpx.get(base + "config", timeout=30)
    r.raise_for_status()
    return r.json()


def submit_chain(config: dict, find: Callable[[dict], bool]) -> list[dict]:
    """The dependencies the browser runs when the component matching `find` is submitted:
    the one it triggers, then each `.then()` after it, in order."""
    components = {c["id"]: c for c in config["components"]}
    target = next(cid for cid, c in components.items() if find(c))
    deps = config["dependencies"]
    first = next(d for d in deps if [target, "submit"] in [list(t) for t in d["targets"]])
    chain = [first]
    while True:
        nxt = [d for d in deps if d.get("trigger_after") == chain[-1]["id"]]
        if not nxt:
            return chain
        chain.append(nxt[0])


@dataclass
class _Event:
    fn_index: int
    trigger: int | None
    inputs: list[str]  # component types, in order


class ChatDriver:
    """Sends one chat message to an app the way a browser or an API client does.

    Browser path: the chain of events the page runs when the message box is submitted: the
    events before the first queued one, the queued one that streams the answer, the events
    chained after it (`.then`), and the `.change` events of the gr.State outputs it changes
    (started when the stream says so, as the browser does). A chat's time runs from the
    send to the answer's last message; the events after it count in the server's CPU.
    API path: the app's chat endpoint.
    """

    def __init__(self, label: str, base: str, *, path: str, api_name: str = "", api_data=None):
        self.label = label
        self.base = base
        self.path = path
        self.api_name = api_name
        self.api_data = api_data or (lambda text: [text])
        self.pre: list[_Event] = []
        self.main: _Event | None = None
        self.post: list[tuple[_Event, bool]] = []  # after the answer: (event, queued)
        self.on_change: list[tuple[_Event, bool]] = []  # .change of the states it sets
        self.loads: list[tuple[_Event, bool]] = []  # the page's load events, queued or not
        if path == "browser":
            config = load_config(base)
            types = {c["id"]: c["type"] for c in config["components"]}
            for dep in config["dependencies"]:
                if dep.get("backend_fn") and any(t[1] == "load" for t in dep["targets"]):
                    event = _Event(dep["id"], None, [types[i] for i in dep["inputs"]])
                    self.loads.append((event, bool(dep["queue"])))
            chain = submit_chain(config, self._is_message_box(config))
            for dep in chain:
                trigger = dep["targets"][0][0] if dep["targets"] else None
                event = _Event(dep["id"], trigger, [types[i] for i in dep["inputs"]])
                if self.main is not None:
                    self.post.append((event, dep["queue"] is not False))
                elif dep["queue"] is False:
                    self.pre.append(event)
                else:
                    self.main = event
                    main_outputs = set(dep["outputs"])
            assert self.main is not None, f"{label}: no queued event answers the message"
            for dep in config["dependencies"]:
                for target, name in dep["targets"]:
                    if name == "change" and target in main_outputs and types[target] == "state":
                        event = _Event(dep["id"], target, [types[i] for i in dep["inputs"]])
                        self.on_change.append((event, dep["queue"] is not False))

    @staticmethod
    def _is_message_box(config: dict) -> Callable[[dict], bool]:
        has_id = any(c.get("props", {}).get("elem_id") == "message" for c in config["components"])
        if has_id:  # Parlor's message box
            return lambda c: c.get("props", {}).get("elem_id") == "message"
        return lambda c: c["type"] in ("textbox", "multimodaltextbox")

    @staticmethod
    def _data(event: _Event, text: str) -> list[Any]:
        values = {"textbox": text, "dropdown": BENCH_MODEL, "chatbot": []}
        return [values.get(kind) for kind in event.inputs]

    @classmethod
    def parlor(cls, base: str, path: str) -> ChatDriver:
        return cls(
            "Parlor",
            base,
            path=path,
            api_name="chat",
            api_data=lambda text: [text, "", ""],
        )

    @classmethod
    def bare(cls, base: str, path: str) -> ChatDriver:
        # Gradio 6 names a ChatInterface's API endpoint after its function.
        return cls("bare ChatInterface", base, path=path, api_name="respond")

    @staticmethod
    def client() -> httpx.AsyncClient:
        """A new person: their own connections and cookies."""
        return http_client()

    async def warm(self, client: httpx.AsyncClient) -> str | None:
        """What a browser has done before anyone types: connected, got its cookie, and run
        the page's load events (which create Gradio's session state). The session hash."""
        await client.get(self.base + "bench-warm-up")
        if self.path != "browser":
            return None
        session = session_hash()
        for event, queued in self.loads:
            data = self._data(event, "")
            if queued:
                s = await call_queue(client, self.base, event.fn_index, data, session)
                if not s.ok:
                    raise RuntimeError(f"{self.label}: page load failed: {s.error}")
            else:
                await run_predict(client, self.base, event.fn_index, data, session, None)
        return session

    async def chat(
        self,
        client: httpx.AsyncClient,
        text: str,
        *,
        marker: str = FIRST_TOKEN,
        last: str | None = None,
        session: str | None = None,
    ) -> Stream:
        """Send `text` in a new chat; `session`: the page's (from `warm`), else a new one."""
        if self.path == "http":
            body = {"message": text, "conversation_id": "", "model_id": ""}
            return await call_http(client, self.base, body, marker=marker, last=last)
        if self.path == "api":
            data = self.api_data(text)
            return await call_api(client, self.base, self.api_name, data, marker=marker, last=last)
        start = time.perf_counter()
        session = session or session_hash()
        for event in self.pre:
            await run_predict(
                client, self.base, event.fn_index, self._data(event, text), session, event.trigger
            )
        assert self.main is not None
        side: list[asyncio.Task] = []

        def state_changed() -> None:
            for event, queued in self.on_change:
                side.append(asyncio.ensure_future(self._run(client, event, queued, text, session)))

        stream = await call_queue(
            client,
            self.base,
            self.main.fn_index,
            self._data(self.main, text),
            session,
            trigger=self.main.trigger,
            marker=marker,
            last=last,
            start=start,
            on_state_change=state_changed if self.on_change else None,
        )
        for event, queued in self.post:
            await self._run(client, event, queued, text, session)
        await asyncio.gather(*side)
        return stream

    async def _run(
        self, client: httpx.AsyncClient, event: _Event, queued: bool, text: str, session: str
    ) -> None:
        data = self._data(event, text)
        if queued:
            await call_queue(client, self.base, event.fn_index, data, session)
        else:
            await run_predict(client, self.base, event.fn_index, data, session, event.trigger)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


async def gather_bounded(coros: list, limit: int) -> list:
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def call_http(
    client: httpx.AsyncClient,
    base: str,
    body: dict,
    *,
    marker: str = FIRST_TOKEN,
    last: str | None = None,
    on_frame: Callable[[str], None] | None = None,
) -> Stream:
    """One chat over Parlor's plain HTTP door, `POST /api/chat` (Server-Sent Events);
    `on_frame` gets the data line of each frame as it comes."""
    s = Stream(start=time.perf_counter())
    async with client.stream("POST", f"{base}api/chat", json=body) as resp:
        if resp.status_code != 200:
            s.end = time.perf_counter()
            s.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
            return s
        await read_events(resp, s, marker=marker, last=last, on_frame=on_frame)
    return s
