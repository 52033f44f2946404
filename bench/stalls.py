"""Issue 17's stalls: how long one person's answer stops while someone else does something heavy.

Person B streams a steady answer (the scripted model sends a token every 20 ms, over
`POST /api/chat`); while it streams, person A does one heavy thing. Two figures of B's
stream while A's action runs, each beside the same figure while nobody else does anything
(the baseline, measured on the same app just before):

- B's longest gap between two consecutive frames;
- B's worst delay: how far behind the model B's text fell (a frame's arrival minus when
  the model sent its last token; the earliest frame sets the clock). A loop stalled in many
  short pieces shows here more than in the gaps.

And how long A's action took. The actions:

- import: A imports an export of 1,000 conversations (`/import`, newest first, as `/export`
  writes them);
- a 46 MB import: A imports one conversation of 46 messages of 1 MB;
- a huge conversation: A then sends 3 messages, one after the other, in it (when the app
  refused the import, the conversation is written into A's store with the checkout's own
  `chat.history` instead, and the table says so);
- delete all: A deletes all of 2,000 conversations (`/delete_all_conversations`);
- junk tokens: with sign-in on (a local OpenID provider whose whoami takes 0.2 s, like a
  real Hub), A sends the page's chat event with a Hugging Face token the Hub refuses (the
  `x-hf-authorization` header), a new one 20 times a second for 5 s.
- sign-in: with sign-in on, A imports 1,000 conversations as an anonymous visitor, signs
  in, and sends a message from the page: the visitor's conversations move to the account.

Each is run twice (the machine may be shared with other work: a stall is seconds long, so
it stands out). `--app-dir DIR` runs the app of another checkout (its `app.py` and
`tests/apprunner.py`), so that the same bench measures the code before and after a change.

    python -m bench.stalls [--app-dir ../parlor-old]
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import (
    BENCH_MODEL,
    SERVED_NAME,
    ChatDriver,
    Figure,
    Report,
    ScriptedProcess,
    Stream,
    bench_main,
    call_api,
    call_http,
    call_queue,
    http_client,
    launch_parlor,
    session_hash,
    tokens_script,
    workdir,
)

RUNS = 2
TOKEN_DELAY = 0.02  # B's answer: a token every 20 ms...
B_TOKENS = 5_500  # ...for up to 110 s; B stops reading once A's action is over
SETTLE = 1.0  # seconds of B's stream before A acts
AFTER = 0.5  # and after: a frame held back until the action ended still counts
ACTION_LIMIT = 90.0  # no action is waited for longer
BASELINE_SECONDS = 5.0

QUICK_MODEL, QUICK = "quick", "quick-scripted"  # A's model: a three-token answer at once
SECRET = "bench-stalls-secret-0123456789abcdef"  # PARLOR_SECRET, to sign A's cookie when seeding
IMPORTED = 1_000
DELETED = 2_000
HUGE_MESSAGES, HUGE_CHARS = 46, 1_000_000  # 46 MB in one conversation
HUGE_SENDS = 3
JUNK_RATE, JUNK_SECONDS = 20, 5
WHOAMI_SECONDS = 0.2
_TOKEN = re.compile(r' w(\d+)"\]$')  # the last of tokens_script's tokens in a frame


@dataclass
class Sample:
    """One run of one stall: B's longest gap and worst delay (seconds) during A's action,
    the action's own time, and what it did."""

    gap: float
    delay: float
    seconds: float
    detail: str


# -- what A imports -----------------------------------------------------------------------


def export_document(
    count: int, *, newest_first: bool, messages: int = 2, chars: int = 200, model: str = ""
) -> tuple[str, list[str]]:
    """A Parlor export of `count` conversations (and their ids), each of `messages`
    messages of `chars` characters, a minute apart."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    words = ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars]
    conversations = []
    for i in range(count):
        stamp = (start + dt.timedelta(minutes=i)).isoformat()
        conversations.append(
            {
                "id": secrets.token_hex(16),
                "title": f"Imported conversation {i}",
                "model": model or BENCH_MODEL,
                "created_at": stamp,
                "updated_at": stamp,
                "messages": [
                    {
                        "role": ("user", "assistant")[j % 2],
                        "content": words,
                        "created_at": stamp,
                        "model": None if j % 2 == 0 else (model or BENCH_MODEL),
                        "incomplete": False,
                        "notice": "",
                    }
                    for j in range(messages)
                ],
            }
        )
    if newest_first:
        conversations.reverse()
    document = {"format": "parlor-export", "version": 1, "settings": {}}
    document["conversations"] = conversations
    return json.dumps(document), [c["id"] for c in conversations]


# The fallback when the app refuses to import the huge conversation: A's own store, written
# by the checkout's own code (run in that checkout), for the owner A's cookie names.
SEED = """
import json, sys
from pathlib import Path
from chat.history import History, new_id
from chat.identity import CookieSigner, anonymous_id
secret, data_dir, cookie = sys.argv[1:4]
owner = anonymous_id(CookieSigner(secret).unsign(cookie))
store = History(Path(data_dir))
for conv in json.load(sys.stdin)["conversations"]:
    messages = [{"id": new_id(), **m} for m in conv.pop("messages")]
    if hasattr(store, "add_conversations"):  # since issue 17's fixes
        store.add_conversations(owner, [(conv, messages)])
    else:
        store.add_conversation(owner, conv, messages)
"""


def seed_store(app_dir: Path, data_dir: Path, cookie: str, document: str) -> None:
    subprocess.run(
        [sys.executable, "-c", SEED, SECRET, str(data_dir), cookie],
        cwd=app_dir,
        input=document,
        text=True,
        check=True,
        timeout=300,
    )


# -- people -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def person(base: str, **kwargs) -> AsyncIterator[httpx.AsyncClient]:
    """Someone with their own connections and session cookie."""
    async with http_client(**kwargs) as client:
        await client.get(base + "bench-warm-up")  # sets the session cookie
        yield client


class Frames:
    """When each of B's frames came, and the index of the last token it held."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []

    def __call__(self, line: str) -> None:
        found = _TOKEN.search(line)
        if found or "Zq0" in line:
            self.times.append(time.perf_counter())
            self.tokens.append(int(found.group(1)) if found else 0)

    def gap(self, start: float, end: float, now: float) -> float:
        """The longest time between two consecutive frames that overlaps [start, end] (a
        gap still open `now` lasted at least until now)."""
        pairs = itertools.pairwise([*self.times, now])
        return max((b - a for a, b in pairs if b >= start and a <= end), default=now - start)

    def delay(self, start: float, now: float) -> float:
        """How far behind the model B's text fell at worst, from `start` to `now`: at each
        frame (and now), the time since the model sent the last token B has."""
        # A frame's lag is its arrival minus when its last token left the model, whose
        # tokens leave on a clock (start + n × delay): the earliest frame sets it.
        due = [t - k * TOKEN_DELAY for t, k in zip(self.times, self.tokens, strict=True)]
        origin = min(due)
        late = [d - origin for t, d in zip(self.times, due, strict=True) if start <= t <= now]
        return max([*late, now - (origin + self.tokens[-1] * TOKEN_DELAY)])


@contextlib.asynccontextmanager
async def b_streaming(base: str) -> AsyncIterator[tuple[Frames, asyncio.Task]]:
    """B's answer, streaming from its first frames until the block ends."""
    async with person(base) as b:
        frames = Frames()
        body = {"message": "Tell me a long story.", "conversation_id": "", "model_id": ""}
        task = asyncio.create_task(call_http(b, base, body, on_frame=frames))
        try:
            while len(frames.times) < 3:
                if task.done():
                    raise RuntimeError(f"B's answer did not stream: {task.result().error}")
                await asyncio.sleep(0.01)
            yield frames, task
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def measure(base: str, action: Callable[[], Awaitable[str]]) -> Sample:
    """B's longest gap and worst delay while `action` runs (it says what it did), and the
    action's time."""
    async with b_streaming(base) as (frames, b):
        await asyncio.sleep(SETTLE)
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(action(), ACTION_LIMIT)
        except TimeoutError:
            detail = f"did not end within {ACTION_LIMIT:.0f} s"
        ended = time.perf_counter()
        await asyncio.sleep(AFTER)
        now = time.perf_counter()
        if b.done():
            detail += "; B's answer ended before the action did"
        gap, delay = frames.gap(started, ended, now), frames.delay(started, now)
    return Sample(gap, delay, ended - started, detail)


def said(s: Stream) -> str:
    """What an API call answered, in a few words."""
    return json.dumps(s.final)[:80] if s.ok else f"failed: {s.error[:120]}"


# -- the stalls ---------------------------------------------------------------------------


async def baseline(base: str) -> list[Sample]:
    async def nothing() -> str:
        await asyncio.sleep(BASELINE_SECONDS)
        return "nobody else acting"

    return [await measure(base, nothing) for _ in range(RUNS)]


async def importing(base: str, a: httpx.AsyncClient, document: str) -> Sample:
    """B while A imports `document`."""

    async def act() -> str:
        return said(await call_api(a, base, "import", [document]))

    return await measure(base, act)


async def stall_import(base: str) -> list[Sample]:
    document, _ = export_document(IMPORTED, newest_first=True)
    samples = []
    for _ in range(RUNS):
        async with person(base) as a:
            samples.append(await importing(base, a, document))
    return samples


async def stall_huge(base: str, app_dir: Path, data_dir: Path) -> tuple[list[Sample], ...]:
    """B while A imports a conversation of 46 MB (twice, as two people), then while the
    second one sends messages in it."""
    document, (cid,) = export_document(
        1, newest_first=False, messages=HUGE_MESSAGES, chars=HUGE_CHARS, model=QUICK_MODEL
    )
    imports = []
    for _ in range(RUNS):
        async with person(base) as a:
            imports.append(await importing(base, a, document))
            cookies = a.cookies
    async with http_client(cookies=cookies) as a:
        how = "imported"
        if not imports[-1].detail.startswith("[{"):
            cookie = next(c.value for c in a.cookies.jar if "parlor-session" in c.name)
            await asyncio.to_thread(seed_store, app_dir, data_dir, cookie, document)
            how = "written into the store (the app refused to import it)"

        async def act() -> str:
            body = {"message": "And then?", "conversation_id": cid, "model_id": ""}
            sent = [await call_http(a, base, body, marker="") for _ in range(HUGE_SENDS)]
            took = ", ".join(f"{s.duration:.2f}" for s in sent if s.duration is not None)
            answered = sum(s.ok for s in sent)
            return f"{answered}/{HUGE_SENDS} answered ({took} s); the conversation {how}"

        return imports, [await measure(base, act) for _ in range(RUNS)]


async def junk_send(base: str, event, data: list) -> bool:
    """The page's chat event with a token the Hub refuses; whether it was refused."""
    token = f"hf_junk{secrets.token_hex(12)}"
    async with http_client(headers={"x-hf-authorization": f"Bearer {token}"}) as junk:
        s = await call_queue(
            junk, base, event.fn_index, data, session_hash(), trigger=event.trigger
        )
    return not s.ok and "refused" in s.error


async def stall_tokens(base: str) -> list[Sample]:
    page = ChatDriver.parlor(base, "browser")
    assert page.main is not None
    data = ChatDriver._data(page.main, "Hello!")

    async def act() -> str:
        sends = []
        for _ in range(JUNK_RATE * JUNK_SECONDS):
            sends.append(asyncio.create_task(junk_send(base, page.main, data)))
            await asyncio.sleep(1 / JUNK_RATE)
        refused = sum(await asyncio.gather(*sends))
        return f"{refused}/{len(sends)} refused"

    return [await measure(base, act) for _ in range(RUNS)]


class LoopbackSecureCookies(httpx.AsyncHTTPTransport):
    """Keeps Gradio's `Secure` sign-in cookie over http://127.0.0.1, as browsers do (httpx
    would never send it back, and sign-in would loop)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        raw = [
            (k, re.sub(rb";\s*secure\b", b"", v, flags=re.I) if k.lower() == b"set-cookie" else v)
            for k, v in response.headers.raw
        ]
        response.headers = httpx.Headers(raw)
        return response


async def stall_sign_in(base: str, op) -> list[Sample]:
    """B while A, who has IMPORTED conversations as an anonymous visitor, signs in and sends
    a message from the page: the visitor's conversations move to the account."""
    page = ChatDriver.parlor(base, "browser")
    assert page.main is not None
    # A's message: the quick model's answer, so that the action is the move, not an answer.
    data = [QUICK_MODEL if v == BENCH_MODEL else v for v in ChatDriver._data(page.main, "Hi")]
    document, _ = export_document(IMPORTED, newest_first=False)
    samples = []
    for run in range(RUNS):
        async with person(base, transport=LoopbackSecureCookies()) as a:
            ready = await call_api(a, base, "import", [document])
            if not ready.ok:
                raise RuntimeError(f"could not import {IMPORTED} conversations: {said(ready)}")
            op.login_as(sub=f"u-bench-{run}-{secrets.token_hex(4)}", preferred_username="a")
            signed_in = await a.get(base + "login/huggingface?_target_url=/", follow_redirects=True)
            signed_in.raise_for_status()

            async def act(a: httpx.AsyncClient = a) -> str:
                s = await call_queue(
                    a, base, page.main.fn_index, data, session_hash(), trigger=page.main.trigger
                )
                listed = await call_api(a, base, "conversations", [0])
                count = len(listed.final[0]) if listed.ok else said(listed)
                return f"{'sent' if s.ok else 'failed'}; the account lists {count}"

            samples.append(await measure(base, act))
    return samples


async def stall_delete_all(base: str) -> list[Sample]:
    # Oldest first: each import is the newest yet, which keeps setting up the load cheap.
    document, _ = export_document(DELETED, newest_first=False)
    samples = []
    for _ in range(RUNS):
        async with person(base) as a:
            started = time.perf_counter()
            ready = await call_api(a, base, "import", [document])
            if not ready.ok:
                raise RuntimeError(f"could not import {DELETED} conversations: {said(ready)}")
            print(f"    set up: {DELETED:,} imported in {time.perf_counter() - started:.1f} s")

            async def act(a: httpx.AsyncClient = a) -> str:
                return said(await call_api(a, base, "delete_all_conversations", []))

            samples.append(await measure(base, act))
    return samples


# -- the report ---------------------------------------------------------------------------

Row = tuple[str, list[Sample], list[Sample]]  # the stall, its samples, the app's baseline


def add_figures(report: Report, rows: list[Row]) -> None:
    """Per stall, the worse of its runs (each run's figure in the note)."""
    for stall, samples, base in rows:
        if samples is base:
            continue
        took = ", ".join(f"{s.seconds:.2f}" for s in samples)
        for what, of in (("longest gap between frames", "gap"), ("worst delay", "delay")):
            runs = [getattr(s, of) * 1000 for s in samples]
            report.add(
                Figure(
                    f"{stall}: B's {what}",
                    max(runs),
                    "ms",
                    baseline=max(getattr(s, of) for s in base) * 1000,
                    baseline_name="nobody else acting",
                    note=f"runs: {', '.join(f'{r:,.0f}' for r in runs)} ms; "
                    f"the action took {took} s: {samples[-1].detail}",
                )
            )


def table(rows: list[Row]) -> None:
    print(
        "\n| stall | run | B's longest gap (ms) | baseline | ratio | B's worst delay (ms) "
        "| baseline | ratio | action (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for stall, samples, base in rows:
        quiet_gap = max(s.gap for s in base)
        quiet_delay = max(s.delay for s in base)
        for i, s in enumerate(samples, 1):
            print(
                f"| {stall} | {i} | {s.gap * 1000:,.0f} | {quiet_gap * 1000:,.0f} "
                f"| {s.gap / quiet_gap:.1f} | {s.delay * 1000:,.0f} | {quiet_delay * 1000:,.0f} "
                f"| {s.delay / quiet_delay:.1f} | {s.seconds:.2f} |"
            )
    for stall, samples, _ in rows:
        for i, s in enumerate(samples, 1):
            print(f"  {stall}, run {i}: {s.detail}")
    print(flush=True)


async def run(report: Report, app_dir: Path) -> None:
    report.note(f"the app of {app_dir}; B: a token every {TOKEN_DELAY * 1000:.0f} ms")
    served = {BENCH_MODEL: SERVED_NAME, QUICK_MODEL: QUICK}
    rows: list[Row] = []
    env = {"PARLOR_SECRET": SECRET}
    with (
        workdir() as tmp,
        ScriptedProcess(
            tokens_script(B_TOKENS, TOKEN_DELAY), **{QUICK: tokens_script(3, 0)}
        ) as srv,
    ):
        app = launch_parlor(tmp, srv.base_url, env=env, served=served, app_dir=app_dir)
        try:
            quiet = await baseline(app.url)
            rows.append(("nobody else acting (baseline)", quiet, quiet))
            rows.append((f"import {IMPORTED:,} conversations", await stall_import(app.url), quiet))
            imports, sends = await stall_huge(app.url, app_dir, app.data_dir)
            rows.append((f"import one {HUGE_MESSAGES} MB conversation", imports, quiet))
            rows.append((f"{HUGE_SENDS} messages in that conversation", sends, quiet))
            rows.append((f"delete all {DELETED:,}", await stall_delete_all(app.url), quiet))
        finally:
            app.stop()
        from oidc_provider import OIDCProvider  # in tests/, on the path once bench.common is

        with OIDCProvider() as op:
            op.whoami_seconds = WHOAMI_SECONDS
            login = {
                **env,
                "SYSTEM": "spaces",
                "SPACE_ID": "bench/parlor",
                "SPACE_HOST": "",
                "OAUTH_CLIENT_ID": op.client_id,
                "OAUTH_CLIENT_SECRET": op.client_secret,
                "OAUTH_SCOPES": "openid profile",
                "OPENID_PROVIDER_URL": op.url,
            }
            app = launch_parlor(tmp, srv.base_url, env=login, served=served, app_dir=app_dir)
            try:
                quiet = await baseline(app.url)
                rows.append(("sign-in on: nobody else acting (baseline)", quiet, quiet))
                junk = f"sign-in on: junk tokens, {JUNK_RATE}/s for {JUNK_SECONDS} s"
                rows.append((junk, await stall_tokens(app.url), quiet))
                moving = f"sign-in on: signing in with {IMPORTED:,} conversations, then a message"
                rows.append((moving, await stall_sign_in(app.url, op), quiet))
            finally:
                app.stop()
    add_figures(report, rows)
    table(rows)


def main() -> None:
    title = "another person's stream while one does something heavy (issue 17)"
    bench_main(__doc__, "stalls", title, run, app_dir=True)


if __name__ == "__main__":
    main()
