"""End to end: every kind of stored file damaged, and a disk that fills during a write.

The store's layout is in `chat/history.py`'s docstring: `<data_dir>/owners/<hash>/` holds
`index.json`, `settings.json` and `conversations/<id>.json`; `<data_dir>/secret.key` signs
the session cookies when `PARLOR_SECRET` is not set. Whatever the damage, the app starts,
the person whose file it is gets a clear message instead of a 500, the damaged bytes stay
on disk as they were (or are kept aside), and everyone else goes on as if nothing happened.
"""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from gradio_client.exceptions import AppError
from scripted_server import ScriptedServer, echo_catalog

from chat.identity import COOKIE_NAME

LEAKS = ("Traceback", 'File "', "Exception", "Error:", "errno", "[Errno")


ENV = {"PARLOR_STREAM_FRAME_SECONDS": "0", "PARLOR_DATA_SHARING": "true"}


@pytest.fixture(scope="module")
def srv() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.script("echo")
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory, srv) -> Iterator[RunningApp]:
    root = tmp_path_factory.mktemp("damaged")
    running = RunningApp(root / "data", models=echo_catalog(root, srv), env=ENV).wait_ready()
    try:
        yield running
    finally:
        running.stop()


class Person:
    """Someone with their own session cookie: `/api/chat` over HTTP, the rest over
    gradio_client."""

    def __init__(self, app: RunningApp) -> None:
        self.app = app
        self.http = httpx.Client(base_url=app.url, timeout=60)
        self.http.get("healthz").raise_for_status()
        cookies = {COOKIE_NAME: self.http.cookies[COOKIE_NAME]}
        self.api = Client(app.url, verbose=False, httpx_kwargs={"cookies": cookies})

    def chat(self, message: str, conversation_id: str = "") -> tuple[str, str]:
        """Send over `/api/chat`: (conversation id, answer), or ("", the error message)."""
        body = {"message": message, "conversation_id": conversation_id}
        with self.http.stream("POST", "api/chat", json=body) as r:
            if r.status_code != 200:
                return "", r.read() and r.json()["error"]
            last: list = []
            for line in r.iter_lines():
                if line.startswith("event: "):
                    last = [line[7:]]
                elif line.startswith("data: "):
                    last.append(json.loads(line[6:]))
        kind, data = last
        return ("", data["error"]) if kind == "error" else tuple(data)

    def gradio_chat(self, message: str, conversation_id: str = "") -> tuple[str, str]:
        """Send over the Gradio `/chat`: (conversation id, answer), or ("", the error)."""
        try:
            return tuple(self.api.predict(message, conversation_id, "", api_name="/chat"))
        except AppError as e:
            return "", str(e)

    def ask(self, name: str, *args: object) -> tuple[object, str]:
        """(result, "") or (None, the error message) of a Gradio endpoint."""
        try:
            return self.api.predict(*args, api_name=f"/{name}"), ""
        except AppError as e:
            return None, str(e)

    def messages(self, conversation_id: str) -> list[tuple[str, str]]:
        shown = self.api.predict(conversation_id, api_name="/conversation")["messages"]
        return [(m["role"], m["content"]) for m in shown]

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def people(app) -> Iterator[Callable[[], Person]]:
    made: list[Person] = []
    seen = len(app.log())

    def new() -> Person:
        made.append(Person(app))
        return made[-1]

    yield new
    for p in made:
        p.close()
    log = app.log()[seen:]  # what this test caused
    assert "Traceback" not in log, log[log.index("Traceback") :][-3000:]


def assert_clear(message: str) -> None:
    assert message, "a message for the person"
    for leak in LEAKS:
        assert leak not in message, message


def conversation_file(app: RunningApp, cid: str) -> Path:
    (path,) = (app.data_dir / "owners").glob(f"*/conversations/{cid}.json")
    return path


def started(p: Person, text: str = "my first words") -> tuple[str, Path]:
    """A conversation of `p` with one exchange, and its file."""
    cid, answer = p.chat(text)
    assert (cid, answer) != ("", answer) and answer == text
    return cid, conversation_file(p.app, cid)


def others_are_fine(new: Callable[[], Person]) -> None:
    other = new()
    cid, answer = other.chat("someone else")
    assert answer == "someone else"
    assert other.gradio_chat("still me", cid) == (cid, "still me")
    assert other.messages(cid) == [
        ("user", "someone else"),
        ("assistant", "someone else"),
        ("user", "still me"),
        ("assistant", "still me"),
    ]


# -- damage, of every kind --------------------------------------------------------------


def _rows(raw: bytes, table: str, change: Callable[[dict], dict]) -> bytes:
    data = json.loads(raw)
    data[table] = {k: change(v) for k, v in data[table].items()}
    return json.dumps(data).encode()


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda b: b[: len(b) // 2],
    "empty": lambda b: b"",
    "not JSON": lambda b: b"this is not JSON \x00",
    "not UTF-8": lambda b: b"\xff\xfe" + b[2:],
    "a JSON list": lambda b: b"[1, 2, 3]",
    "a JSON string": lambda b: b'"conversation"',
    "wrong tables": lambda b: b'{"conversation": [1, 2], "messages": "none"}',
    "rows of the wrong type": lambda b: b'{"conversation": {"1": "x"}, "messages": {"1": 5}}',
}
CONVERSATION_DAMAGE = {
    **DAMAGE,
    "a message row missing fields": lambda b: _rows(
        b, "messages", lambda m: {"id": m["id"], "created_at": m["created_at"]}
    ),
    "a conversation row missing fields": lambda b: _rows(b, "conversation", lambda r: {"x": 1}),
    "fields of the wrong type": lambda b: _rows(
        b, "messages", lambda m: {**m, "role": 7, "content": {"a": [1]}}
    ),
}


@pytest.mark.parametrize("damage", CONVERSATION_DAMAGE, ids=list(CONVERSATION_DAMAGE))
def test_a_damaged_conversation_is_explained_and_left_alone(app, people, damage):
    me = people()
    cid, path = started(me)
    path.write_bytes(CONVERSATION_DAMAGE[damage](path.read_bytes()))
    damaged = path.read_bytes()

    shown, error = me.ask("conversation", cid)
    assert shown is None and "damaged" in error, "the person is told, when opening it"
    assert_clear(error)
    for answer in (me.chat("more", cid), me.gradio_chat("more", cid)):
        assert answer[0] == "" and "damaged" in answer[1]
        assert_clear(answer[1])
    assert me.ask("rename_conversation", cid, "new name")[0] is None
    assert me.ask("conversations")[1] == "", "the listing still works"
    exported, error = me.ask("export")
    assert exported is not None or "damaged" in error
    assert path.read_bytes() == damaged, "the damaged file is left as it was"

    again, answer = me.chat("a new conversation")
    assert answer == "a new conversation", "the person can go on chatting"
    assert me.messages(again) == [
        ("user", "a new conversation"),
        ("assistant", "a new conversation"),
    ]
    others_are_fine(people)


def index_of(p: Person, cid: str) -> Path:
    """The owner's index.json, written now (a rename writes it)."""
    assert p.ask("rename_conversation", cid, "named")[1] == ""
    path = conversation_file(p.app, cid).parent.parent / "index.json"
    assert path.exists()
    return path


INDEX_DAMAGE = {
    **DAMAGE,
    "a row missing its id": lambda b: b'{"conversations": {"1": {"title": "x"}}}',
    "a row with a path for an id": lambda b: _rows(
        b, "conversations", lambda r: {**r, "id": "../../../../etc/passwd"}
    ),
}


@pytest.mark.parametrize("damage", INDEX_DAMAGE, ids=list(INDEX_DAMAGE))
def test_a_damaged_index_is_rebuilt_and_kept_aside(app, people, damage):
    me = people()
    cid, _ = started(me)
    path = index_of(me, cid)
    path.write_bytes(INDEX_DAMAGE[damage](path.read_bytes()))
    damaged = path.read_bytes()

    listed, error = me.ask("conversations")
    assert error == "" and [c["id"] for c in listed] == [cid], "rebuilt from the files"
    assert me.messages(cid) == [("user", "my first words"), ("assistant", "my first words")]
    kept = [path, *path.parent.glob("index.json.damaged-*")]
    assert damaged in [p.read_bytes() for p in kept], "the damaged bytes are kept"
    assert me.chat("and more", cid) == (cid, "and more")
    others_are_fine(people)


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_settings_are_explained_and_left_alone(app, people, damage):
    me = people()
    cid, _ = started(me)
    assert me.ask("update_settings", {"share_with_model_authors": False})[1] == ""
    path = conversation_file(app, cid).parent.parent / "settings.json"
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    damaged = path.read_bytes()

    shown, error = me.ask("settings")
    assert shown is None and "damaged" in error, "the person is told, on the settings"
    assert_clear(error)
    changed, error = me.ask("update_settings", {"share_with_model_authors": True})
    assert changed is None and "damaged" in error
    assert path.read_bytes() == damaged, "the damaged file is left as it was"
    others_are_fine(people)


def test_chatting_goes_on_when_the_settings_are_damaged(app, people):
    """Damaged settings cannot say the person shares their conversations: they do not, and
    their chat works as before."""
    me = people()
    cid, _ = started(me)
    assert me.ask("update_settings", {"share_with_model_authors": True})[1] == ""
    path = conversation_file(app, cid).parent.parent / "settings.json"
    damaged = path.read_bytes()[:10]
    path.write_bytes(damaged)
    assert me.chat("go on", cid) == (cid, "go on")
    assert me.gradio_chat("and on", cid) == (cid, "and on")
    assert path.read_bytes() == damaged


SECRET_DAMAGE = {
    "empty": b"",
    "truncated": b"abc",
    "not UTF-8": b"\xff\xfe\x00" * 30,
    "blank": b"   \n",
}


@pytest.mark.parametrize("damage", SECRET_DAMAGE, ids=list(SECRET_DAMAGE))
def test_a_damaged_secret_key_is_left_alone(tmp_path, srv, damage):
    """Without PARLOR_SECRET, the cookie secret is kept in secret.key. Damaged, it is never
    overwritten (every session cookie was signed with it) nor used as a weak key: the app
    starts with a clear warning, or stops with one clear line, never a traceback."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.key").write_bytes(SECRET_DAMAGE[damage])
    app = RunningApp(data, models=echo_catalog(tmp_path, srv), env={**ENV, "PARLOR_SECRET": ""})
    try:
        with contextlib.suppress(RuntimeError):  # "app exited early": judged by its log
            app.wait_ready()
    finally:
        code = app.stop()
    log = app.log()
    assert "Traceback" not in log, log
    assert "secret.key" in log, "the deployer is told which file"
    kept = [data / "secret.key", *data.glob("secret.key*")]
    assert SECRET_DAMAGE[damage] in [p.read_bytes() for p in kept if p.is_file()]
    assert code is not None


# -- the whole store of one person damaged, across a restart ----------------------------


def test_the_app_starts_on_a_damaged_store_and_the_person_is_told(tmp_path, srv):
    data = tmp_path / "data"
    first = RunningApp(data, models=echo_catalog(tmp_path, srv), env=ENV).wait_ready()
    try:
        me, other = Person(first), Person(first)
        cid, path = started(me)
        kept, _ = started(me, "the one that survives")
        me.ask("update_settings", {"share_with_model_authors": False})
        index = index_of(me, kept)
        theirs, _ = started(other, "theirs")
        cookies = (me.http.cookies[COOKIE_NAME], other.http.cookies[COOKIE_NAME])
    finally:
        first.stop()
    owner = path.parent.parent
    damaged = {
        path: b'{"conversation": {"1": {"id": "' + cid.encode(),
        index: b"\x00\x00\x00",
        owner / "settings.json": b"[]",
    }
    for file, raw in damaged.items():
        file.write_bytes(raw)

    second = RunningApp(data, models=echo_catalog(tmp_path, srv), env=ENV).wait_ready()
    try:
        me, other = Person(second), Person(second)
        me.http.cookies.set(COOKIE_NAME, cookies[0])
        other.http.cookies.set(COOKIE_NAME, cookies[1])
        me.api = Client(
            second.url, verbose=False, httpx_kwargs={"cookies": {COOKIE_NAME: cookies[0]}}
        )
        other.api = Client(
            second.url, verbose=False, httpx_kwargs={"cookies": {COOKIE_NAME: cookies[1]}}
        )
        listed, error = me.ask("conversations")
        assert error == "" and kept in [c["id"] for c in listed]
        assert "damaged" in me.ask("conversation", cid)[1]
        assert "damaged" in me.ask("settings")[1]
        assert other.messages(theirs) == [("user", "theirs"), ("assistant", "theirs")]
        assert other.chat("theirs again", theirs) == (theirs, "theirs again")
        assert path.read_bytes() == damaged[path]
        assert (owner / "settings.json").read_bytes() == b"[]"
        aside = [index, *index.parent.glob("index.json.damaged-*")]
        assert damaged[index] in [p.read_bytes() for p in aside]
        assert me.chat("still here", kept) == (kept, "still here")
    finally:
        second.stop()
    assert "Traceback" not in second.log(), second.log()


# -- a full disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str = "8m") -> Iterator[Path]:
    """A directory on a file system of `size` (a tmpfs: the suite runs as root here, and
    mount needs CAP_SYS_ADMIN; without it the test fails saying so rather than skip)."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"a size-limited tmpfs is needed: {done.stderr}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> list[Path]:
    """Fill the file system until even a few bytes no longer fit; the fillers' paths."""
    fillers = [disk / "filler", disk / "crumbs"]
    for path, size in zip(fillers, (65536, 64), strict=True):
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    return fillers


def test_a_full_disk_keeps_the_previous_version_and_says_so(tmp_path, srv):
    with small_disk(tmp_path / "disk") as disk:
        # The data directory is the small disk itself: the log goes beside it, off it.
        app = RunningApp(disk, models=echo_catalog(tmp_path, srv), env=ENV)
        try:
            app.wait_ready()
            me = Person(app)
            cid, path = started(me)
            before = path.read_bytes()
            listed = me.ask("conversations")[0]
            fillers = fill(disk)

            for send in (me.chat, me.gradio_chat):
                text = f"words that must not be lost via {send.__name__}"
                got, error = send(text, cid)
                assert got == "" and "could not be stored" in error, error
                assert_clear(error)
                assert path.read_bytes() == before, "the previous version is intact"
                got, error = send(text)
                assert got == "" and "could not be stored" in error, error
            assert me.ask("conversations")[0] == listed, "nothing half-stored is listed"
            temporary = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]

            for filler in fillers:
                filler.unlink()
            assert me.chat("now it fits", cid) == (cid, "now it fits")
            assert me.messages(cid) == [
                ("user", "my first words"),
                ("assistant", "my first words"),
                ("user", "now it fits"),
                ("assistant", "now it fits"),
            ]
            assert temporary == [], "no half-written temporary file held the space"
        finally:
            app.stop()
    log = app.log()
    assert "Traceback" not in log, log
    assert "words that must not be lost" not in log
