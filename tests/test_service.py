"""`chat.service.ChatService` on a real store and the scripted server: when a conversation
takes its next message."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict

import pytest
from scripted_server import ScriptedServer

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService


def _service(srv: ScriptedServer, tmp_path, history: History | None = None, **options):
    endpoint = {"type": "openai", "base_url": srv.base_url, "model": "m"}
    catalog = parse_catalog({"models": [{"id": "m", "name": "M", "endpoints": [endpoint]}]})
    return ChatService(
        catalog=catalog,
        history=history or History(tmp_path),
        endpoints=Endpoints(environ={}),
        max_message_chars=1000,
        **{"frame_seconds": 0, **options},
    )


def test_a_conversation_takes_its_next_message_as_soon_as_an_answer_ends(tmp_path):
    """A caller that stops reading at the answer's last frame (and never resumes the
    stream) can send the next message at once: it is not told an answer is still being
    written."""
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["One", " two"])
        service = _service(srv, tmp_path)
        me = Owner(id="anon:" + "1" * 40, kind="anonymous")

        async def two_messages() -> list[str]:
            answers = []
            conversation_id = ""
            for text in ("first", "second"):
                async for update in service.send(me, text, conversation_id):
                    if update.done:
                        break  # the stream is left as it is, not resumed nor closed
                assert not update.failed, update.notice
                conversation_id = update.conversation_id
                answers.append(update.text)
            return answers

        assert asyncio.run(two_messages()) == ["One two", "One two"]


TOKENS = [f" w{i}" for i in range(20)]  # 20 tokens 50 ms apart: a one-second answer


def test_many_answers_at_once_share_the_frames_and_still_stream(tmp_path):
    """One answer alone comes a token at a time. Ten at once under a budget of 50 frames a
    second come a few words at a time, each still in several frames and whole at the end,
    so that no one's answer falls behind the model while the server sends them all."""
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=TOKENS, delay=0.05)
        service = _service(srv, tmp_path, frame_budget=50)

        async def answer(n: int) -> tuple[list[str], str]:
            owner = Owner(id="anon:" + f"{n:040d}", kind="anonymous")
            frames = []
            async for update in service.send(owner, "hello"):
                if update.done:
                    return frames, update.text
                frames.append(update.text)
            raise AssertionError("the answer never ended")

        async def at_once(n: int) -> tuple[list[tuple[list[str], str]], float]:
            start = time.monotonic()
            answers = await asyncio.gather(*(answer(i) for i in range(n)))
            return answers, time.monotonic() - start

        [(alone, text)], _ = asyncio.run(at_once(1))
        assert text == "".join(TOKENS)
        assert len(alone) >= 15, alone  # a frame per token, near enough

        answers, seconds = asyncio.run(at_once(10))
        for frames, text in answers:
            assert text == "".join(TOKENS)
            words = [f.count(" w") for f in frames]
            assert words == sorted(words) and len(set(words)) >= 3, frames  # it streamed
        sent = sum(len(frames) for frames, _ in answers)
        # Each answer's first frame (before any token) is sent at once, then 50 a second.
        assert sent <= 10 + 50 * seconds + 10, (sent, seconds)


# -- files stay off the event loop -----------------------------------------------------------

ME = Owner(id="anon:" + "7" * 40, kind="anonymous")


class WatchedHistory(History):
    """Records the thread of each read and write of a conversation. While one is read, it
    waits (up to 10 s) for the event loop to run: a read on the loop itself never sees it."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.threads: dict[str, list[threading.Thread]] = defaultdict(list)
        self.reading, self.loop_ran = threading.Event(), threading.Event()

    def get_conversation(self, owner, conversation_id):
        self.threads["read"].append(threading.current_thread())
        self.loop_ran.clear()
        self.reading.set()
        self.threads["loop ran during the read"].append(self.loop_ran.wait(10))
        self.reading.clear()
        return super().get_conversation(owner, conversation_id)

    def add_messages(self, owner, conversation_id, messages, **fields):
        self.threads["store"].append(threading.current_thread())
        return super().add_messages(owner, conversation_id, messages, **fields)

    def update_message(self, owner, conversation_id, message_id, **fields):
        self.threads["save"].append(threading.current_thread())
        return super().update_message(owner, conversation_id, message_id, **fields)


async def _heartbeat(history: WatchedHistory) -> None:
    """The event loop's pulse: it tells a read in progress that the loop still runs."""
    while True:
        if history.reading.is_set():
            history.loop_ran.set()
        await asyncio.sleep(0.001)


async def _with_heartbeat(history: WatchedHistory, work):
    beat = asyncio.ensure_future(_heartbeat(history))
    try:
        return await work
    finally:
        beat.cancel()


def _a_long_conversation(history: History) -> str:
    """A conversation of 4 MB, as an import can make one."""
    conv = history.create_conversation(ME.id, model="m", first_message="Hello")
    for n in range(40):
        history.append_message(ME.id, conv["id"], role="assistant", content=f"{n} " + "w" * 100_000)
    return conv["id"]


def _off_the_loop(threads: list[threading.Thread]) -> bool:
    return bool(threads) and threading.main_thread() not in threads


def test_sending_into_a_long_conversation_reads_it_off_the_event_loop(tmp_path):
    """Every other answer streams on the same loop: reading and parsing a conversation of
    megabytes there froze them all for as long."""
    history = WatchedHistory(tmp_path)
    cid = _a_long_conversation(history)
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["Fine", "."])
        service = _service(srv, tmp_path, history)

        async def send() -> str:
            return [u async for u in service.send(ME, "And then?", cid)][-1].text

        assert asyncio.run(_with_heartbeat(history, send())) == "Fine."
    assert _off_the_loop(history.threads["read"]), history.threads
    assert history.threads["loop ran during the read"] == [True]


def test_retrying_reads_and_stores_off_the_event_loop_and_keeps_the_first_answer(tmp_path):
    history = WatchedHistory(tmp_path)
    cid = _a_long_conversation(history)
    first = history.get_conversation(ME.id, cid)["messages"][-1]
    history.threads.clear()
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["Again", "."])
        service = _service(srv, tmp_path, history)

        async def retry() -> str:
            return [u async for u in service.retry(ME, cid)][-1].text

        assert asyncio.run(_with_heartbeat(history, retry())) == "Again."
    assert _off_the_loop(history.threads["read"]) and _off_the_loop(history.threads["store"])
    assert history.threads["loop ran during the read"] == [True]
    conv = service.conversation(ME, cid)
    assert conv["messages"][-1]["content"] == "Again."
    assert conv["messages"][-1]["siblings"] == [first["id"], conv["messages"][-1]["id"]]


def test_an_answer_goes_on_to_its_end_when_its_page_closes(tmp_path):
    """The answer is the server's: the page that asked leaving does not cut it short."""
    history = WatchedHistory(tmp_path)
    tokens = [f" w{i}" for i in range(40)]
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=tokens, delay=0.02)
        service = _service(srv, tmp_path, history)

        async def leave_mid_answer() -> str:
            updates = service.send(ME, "Tell me a long story")
            async for update in updates:
                if update.stored and update.text:
                    break
            await updates.aclose()  # what Gradio does when the page goes away
            cid = update.conversation_id
            assert service.writing(ME, cid)
            frames = [u async for u in service.follow(ME, cid)]  # coming back: still going
            assert frames[-1].done and frames[-1].text == "".join(tokens)
            return cid

        cid = asyncio.run(leave_mid_answer())
    assert _off_the_loop(history.threads["save"]), history.threads["save"]
    answer = history.get_conversation(ME.id, cid)["messages"][-1]
    assert (answer["content"], answer["notice"], answer["incomplete"]) == (
        "".join(tokens),
        "",
        False,
    )


# -- deleting stops the answer ------------------------------------------------------------


@pytest.mark.parametrize("delete", ["one", "all"])
def test_deleting_a_conversation_stops_its_answer_and_nothing_comes_back(tmp_path, delete):
    """Delete wins: the answer being written stops at once and is never saved."""
    history = History(tmp_path)
    tokens = [f" w{i}" for i in range(200)]
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=tokens, delay=0.02)
        service = _service(srv, tmp_path, history)

        async def delete_mid_answer():
            deleted = []
            async for update in service.send(ME, "Tell me a long story"):
                if update.stored and update.text and not deleted:
                    if delete == "one":
                        deleted.append(service.delete_conversation(ME, update.conversation_id))
                    else:
                        deleted.append(service.delete_all_conversations(ME))
            assert deleted == [True] if delete == "one" else [1]
            return update

        last = asyncio.run(delete_mid_answer())
    assert last.done and last.notice == "Stopped." and last.text != "".join(tokens)
    assert history.get_conversation(ME.id, last.conversation_id) is None
    assert history.list_conversations(ME.id) == []
    on_disk = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "long story" not in on_disk and " w1" not in on_disk
