"""End to end: the server is stopped (SIGTERM, as a host or a Space stops it) while answers
stream. Each answer is saved as far as it got, marked as cut short by the server, and the
process exits cleanly with one line in the log."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import yaml
from apprunner import RunningApp
from browser import Person
from gradio_client import Client
from scripted_server import ScriptedServer
from test_failures import ANSWER_MARK, MARK, _shown, scripted
from test_http_api import events, person

from chat.identity import COOKIE_NAME
from chat.service import SERVER_STOPPED

STORY = [ANSWER_MARK] + [f" w{i}" for i in range(1, 300)]  # 30 s at 10 tokens a second
QUESTION = f"{MARK} tell me a long story"


def launch(srv: ScriptedServer, root: Path) -> RunningApp:
    """The app (again, after a restart) with one model: the scripted server's long story."""
    srv.script("tokens", tokens=STORY, delay=0.1)
    catalog = root / "models.yaml"
    catalog.write_text(yaml.safe_dump({"models": [scripted("story", srv.base_url)]}))
    env = {"PARLOR_STREAM_FRAME_SECONDS": "0"}
    return RunningApp(root / "data", models=catalog, env=env).wait_ready()


def assert_stopped_cleanly(app: RunningApp, code: int, answers: int) -> None:
    log = app.log()
    assert code == 0, log
    assert "Traceback" not in log and "ERROR" not in log, log
    stopped = [line for line in log.splitlines() if "stopped" in line]
    assert len(stopped) == 1 and f"{answers} answer(s) in progress saved" in stopped[0], log
    assert MARK not in log and ANSWER_MARK not in log


def test_sigterm_mid_answer_saves_it_marked_and_exits_cleanly(tmp_path):
    with ScriptedServer() as srv:
        first = launch(srv, tmp_path)
        try:
            api = Client(first.url, verbose=False)
            job = api.submit(QUESTION, "", "", api_name="/chat")
            web = person(first)
            seen_on_web: list[list[str]] = []
            reader = threading.Thread(target=_read_api_chat, args=(web, seen_on_web))
            reader.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                len(_shown(job).split()) < 10 or len(seen_on_web) < 10
            ):
                time.sleep(0.05)
            assert len(_shown(job).split()) >= 10 and seen_on_web, "both answers stream"
            code = first.stop()  # SIGTERM
            reader.join(timeout=30)
        finally:
            first.stop()
        assert_stopped_cleanly(first, code, answers=2)

        second = launch(srv, tmp_path)
        try:
            for who, cid, shown in (
                (api.cookies[COOKIE_NAME], job.outputs()[-1][0], _shown(job)),
                (web.cookies[COOKIE_NAME], *seen_on_web[-1]),
            ):
                cookies = {"cookies": {COOKIE_NAME: who}}
                back = Client(second.url, verbose=False, httpx_kwargs=cookies)
                user, answer = back.predict(cid, api_name="/conversation")["messages"]
                assert user["content"] == QUESTION
                assert answer["content"] == shown, "saved as far as it got, as it was last shown"
                assert 10 <= len(shown.split()) < len(STORY)
                assert answer["incomplete"] is True and answer["notice"] == SERVER_STOPPED
        finally:
            second.stop()
            web.close()


def test_sigterm_with_a_page_open_mid_answer_exits_cleanly(browser, tmp_path):
    """An open page keeps a stream to the server (Gradio's heartbeat) besides its answer's."""
    with ScriptedServer() as srv:
        running = launch(srv, tmp_path)
        reader = Person(browser, running.url, name="reader")
        try:
            reader.open().type_and_send(QUESTION)
            assert reader.wait_first_words()
            code = running.stop()  # SIGTERM
        finally:
            running.stop()
            reader.context.close()
        assert_stopped_cleanly(running, code, answers=1)


def _read_api_chat(web, frames: list[list[str]]) -> None:
    """Stream an answer from `POST /api/chat`, keeping its frames until the stream ends."""
    body = {"message": QUESTION, "model_id": "story"}
    with web.stream("POST", "api/chat", json=body) as response:
        for kind, frame in events(response):
            if kind in ("generating", "complete"):
                frames.append(frame)
