"""End to end: what a person sees when a model fails, driven through the real app.

One app process serves the whole module. Its catalog has the embedded model first, then one
`openai` model per failure, each served by the scripted server under its own name, so that a
test steers its model with `srv.script_model` without disturbing the others.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml
from apprunner import RunningApp
from gradio_client import Client
from gradio_client.exceptions import AppError
from scripted_server import ScriptedServer

from chat.identity import COOKIE_NAME
from chat.service import SERVER_STOPPED

SYSTEM_PROMPT = "You are Parlor's test assistant; keep answers short."
MARK = "zebra-quartz-417"  # in every message sent: the log must never show it
ANSWER_MARK = "quokka-partial"  # in every scripted answer: nor this
# What a person must never see in an error message.
LEAKS = ("Traceback", 'File "', "HfHubHTTPError", "httpx", "JSONDecodeError", "Exception")


class PortComesBack:
    """A port on 127.0.0.1 that refuses connections until `come_back()`, which from then on
    relays every connection to the scripted server (the model's server restarted)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        self.port = self.sock.getsockname()[1]

    def come_back(self) -> None:
        self.sock.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@dataclass
class Stack:
    srv: ScriptedServer
    app: RunningApp
    down: PortComesBack

    def client(self) -> Client:
        return Client(self.app.url, verbose=False)


def scripted(model_id: str, base_url: str, **fields) -> dict:
    return {
        "id": model_id,
        "name": f"Scripted {model_id}",
        "system_prompt": SYSTEM_PROMPT,
        "parameters": {"max_tokens": 64},
        "endpoints": [{"type": "openai", "base_url": base_url, "model": model_id}],
        **fields,
    }


FAILING = ["auth", "forbidden", "not-found", "rate-limited", "overloaded", "cut", "malformed"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("failures")
    with ScriptedServer() as srv:
        down = PortComesBack(srv.port)
        models = [
            {
                "id": "smollm2-135m",
                "name": "SmolLM2 135M",
                "parameters": {"max_tokens": 16},
                "endpoints": [{"type": "local"}],
            },
            *(scripted(name, srv.base_url) for name in FAILING),
            scripted("refused", f"http://127.0.0.1:{down.port}/v1"),
            scripted("small", srv.base_url, context_window=512),
            scripted("slow", srv.base_url),
            scripted(
                "slow-start",
                srv.base_url,
                endpoints=[
                    {
                        "type": "openai",
                        "base_url": srv.base_url,
                        "model": "slow-start",
                        "timeout": 1,
                    }
                ],
            ),
        ]
        catalog = root / "models.yaml"
        catalog.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
        env = {"HF_TOKEN": "hf_server_secret", "PARLOR_STREAM_FRAME_SECONDS": "0"}
        app = RunningApp(root / "data", models=catalog, env=env).wait_ready()
        try:
            yield Stack(srv, app, down)
        finally:
            app.stop()
            down.close()


def chat(c: Client, message: str, conversation_id: str = "", model_id: str = "") -> tuple:
    """Send and wait: (conversation id, every update's text, the error message or None)."""
    job = c.submit(message, conversation_id, model_id, api_name="/chat")
    texts = [text for _, text in job]
    try:
        job.result()
        error = None
    except AppError as e:  # the app's gr.Error, as the person would read it
        error = str(e)
    return job.outputs()[0][0], texts, error


def assert_clear(message: str | None) -> None:
    assert message, "the chat should have failed with a message"
    for leak in LEAKS:
        assert leak not in message, f"{leak!r} in {message!r}"
    assert not re.search(r"\w(Error|Exception)\b", message), f"a class name in {message!r}"


# -- each failure: a clear message, nothing lost, retry works, logged without text -------------


@pytest.mark.parametrize(
    ("model", "scenario", "options", "kind", "says", "partial"),
    [
        ("slow-start", "tokens", {"first_delay": 3}, "timeout", "took too long", ""),
        ("auth", "status", {"status": 401}, "auth", "check the endpoint's token", ""),
        ("forbidden", "status", {"status": 403}, "auth", "refused our credentials", ""),
        ("not-found", "status", {"status": 404}, "not_found", "does not know this model", ""),
        (
            "rate-limited",
            "status",
            {"status": 429, "headers": {"Retry-After": "30"}},
            "rate_limited",
            "Try again in 30 seconds.",
            "",
        ),
        (
            "overloaded",
            "status",
            {"status": 503, "body": {"error": "Model is loading"}},
            "unavailable",
            "overloaded or still loading",
            "",
        ),
        (
            "cut",
            "cut",
            {"tokens": [ANSWER_MARK, " one", " two", " three"], "after": 3},
            "stream_cut",
            "broke in the middle of the answer",
            f"{ANSWER_MARK} one two",
        ),
        (
            "malformed",
            "malformed",
            {"tokens": [ANSWER_MARK, " never"]},
            "malformed",
            "could not read",
            ANSWER_MARK,
        ),
    ],
)
def test_failure_is_explained_kept_and_retried(
    stack, model, scenario, options, kind, says, partial
):
    stack.srv.script_model(model, scenario, **options)
    c = stack.client()
    text = f"{MARK} {model} question"
    cid, texts, error = chat(c, text, "", model)
    assert_clear(error)
    assert says in error
    if partial:
        assert texts[-1] == partial, "the partial answer was shown while it streamed"

    user, answer = c.predict(cid, api_name="/conversation")["messages"]
    assert (user["role"], user["content"]) == ("user", text)
    assert answer["role"] == "assistant"
    assert answer["incomplete"] is True
    assert answer["content"] == partial
    assert answer["notice"] == error

    stack.srv.script_model(model, "tokens", tokens=[ANSWER_MARK, " all", " good"])
    again, texts, error = chat(c, f"{MARK} {model} once more", cid)
    assert (again, error) == (cid, None)
    assert texts[-1] == f"{ANSWER_MARK} all good"
    messages = c.predict(cid, api_name="/conversation")["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == text, "the failed turn is still there"
    assert messages[3]["content"] == f"{ANSWER_MARK} all good"
    assert not messages[3]["incomplete"] and not messages[3]["notice"]

    log = stack.app.log()
    assert re.search(rf"model {model} endpoint #0 \(openai.*\) failed.*: {kind} ", log), log
    assert MARK not in log and ANSWER_MARK not in log


def test_refused_connection_then_the_server_comes_back(stack):
    c = stack.client()
    text = f"{MARK} anyone there?"
    cid, texts, error = chat(c, text, "", "refused")
    assert_clear(error)
    assert "Could not reach the model's server" in error
    user, answer = c.predict(cid, api_name="/conversation")["messages"]
    assert user["content"] == text
    assert (answer["content"], answer["incomplete"], answer["notice"]) == ("", True, error)

    stack.srv.script_model("refused", "tokens", tokens=[ANSWER_MARK, " back"])
    stack.down.come_back()
    again, texts, error = chat(c, f"{MARK} and now?", cid)
    assert (again, error, texts[-1]) == (cid, None, f"{ANSWER_MARK} back")

    log = stack.app.log()
    assert re.search(r"model refused endpoint #0 \(openai.*\) failed.*: unreachable ", log)
    assert MARK not in log and ANSWER_MARK not in log


def test_the_servers_hf_token_never_reaches_other_endpoints(stack):
    stack.srv.script_model("auth", "tokens")
    _, _, error = chat(stack.client(), f"{MARK} token check", "", "auth")
    assert error is None
    assert stack.srv.requests, "the scripted server was called"
    for request in stack.srv.requests:
        assert not any("hf_server_secret" in v for v in request["headers"].values())
        assert "authorization" not in request["headers"], "no token_env: no Authorization"


# -- trimming -------------------------------------------------------------------------------


def test_long_conversation_is_trimmed_to_the_context_window(stack):
    stack.srv.script_model("small", "echo")
    c = stack.client()
    cid, sent = "", []
    for turn in range(6):
        text = f"{MARK} turn {turn}: " + "the quick brown fox jumps over the lazy dog " * 5
        cid, texts, error = chat(c, text, cid, "small")
        assert error is None and texts[-1] == text.strip(), "every turn gets its answer"
        sent.append(text.strip())

    messages = stack.srv.requests[-1]["body"]["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert messages[-1] == {"role": "user", "content": sent[-1]}
    stored = c.predict(cid, api_name="/conversation")["messages"]
    assert len(stored) == 12
    before = [{"role": m["role"], "content": m["content"]} for m in stored[:-1]]  # last answer
    kept = messages[1:]
    assert 1 < len(kept) < len(before), "older turns were left out, recent ones kept"
    assert kept == before[-len(kept) :], "the newest turns are the ones kept, in order"

    # A single message longer than the whole window still gets an answer (its end is kept).
    huge = f"{MARK} " + " ".join(f"word{i}" for i in range(1200))
    _, texts, error = chat(c, huge, cid)
    assert error is None and texts[-1] and huge.endswith(texts[-1])
    messages = stack.srv.requests[-1]["body"]["messages"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert len(messages[-1]["content"]) < len(huge)
    assert MARK not in stack.app.log()


# -- stop -----------------------------------------------------------------------------------


def test_a_slow_answer_can_be_stopped_and_is_kept(stack):
    words = [f" {ANSWER_MARK}{i}" for i in range(200)]
    stack.srv.script_model("slow", "slow", tokens=words, delay=0.1)
    c = stack.client()
    job = c.submit(f"{MARK} tell me a long story", "", "slow", api_name="/chat")
    for update in job:  # wait for the first words of the answer
        cid, seen = update
        if seen:
            break
    assert seen, "part of the answer arrived"
    assert c.predict(cid, api_name="/stop") == {"stopped": True}
    job.result()  # the chat ends without an error
    final = job.outputs()[-1][1]
    assert final.startswith(seen) and final != "".join(words)

    answer = c.predict(cid, api_name="/conversation")["messages"][1]
    assert answer["content"] == final
    assert answer["incomplete"] is True and answer["notice"] == "Stopped."
    assert c.predict(cid, api_name="/stop") == {"stopped": False}, "nothing left to stop"


def test_an_answer_cut_by_a_server_crash_is_kept_and_says_so(tmp_path):
    """The answer is saved every few seconds as it streams: when the server dies mid-answer
    (kill -9), what was saved is there after a restart, marked as cut short."""
    story = [ANSWER_MARK] + [f" w{i}" for i in range(1, 80)]
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=story, delay=0.1)  # 8 s in all
        catalog = tmp_path / "models.yaml"
        catalog.write_text(yaml.safe_dump({"models": [scripted("story", srv.base_url)]}))
        data = tmp_path / "data"
        env = {"PARLOR_STREAM_FRAME_SECONDS": "0"}
        first = RunningApp(data, models=catalog, env=env).wait_ready()
        try:
            c = Client(first.url, verbose=False)
            job = c.submit(f"{MARK} tell me a long story", "", "", api_name="/chat")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(_shown(job).split()) < 35:
                time.sleep(0.05)  # 3.5 s of answer: past its first save (SAVE_EVERY, 2 s)
            first.proc.kill()
            first.proc.wait()
            shown = _shown(job)
            cid = job.outputs()[-1][0]
        finally:
            first.stop()
        assert len(shown.split()) >= 35, "the answer should have been streaming"
        cookie = c.cookies[COOKIE_NAME]
        second = RunningApp(data, models=catalog, env=env).wait_ready()
        try:
            cookies = {"cookies": {COOKIE_NAME: cookie}}
            back = Client(second.url, verbose=False, httpx_kwargs=cookies)
            user, answer = back.predict(cid, api_name="/conversation")["messages"]
            assert user["content"] == f"{MARK} tell me a long story"
            assert answer["content"].startswith(ANSWER_MARK) and shown.startswith(answer["content"])
            assert len(answer["content"].split()) >= 15, "saved as it streamed, not at the end"
            assert answer["incomplete"] is True
            assert answer["notice"] == SERVER_STOPPED
            assert MARK not in second.log() and ANSWER_MARK not in first.log()
        finally:
            second.stop()


def _shown(job) -> str:
    """The answer's text as the caller last saw it."""
    outputs = job.outputs()
    return outputs[-1][1] if outputs else ""
