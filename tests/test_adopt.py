"""`ChatService.adopt`: at sign-in, a visitor's conversations move to their account. Every
event of a signed-in person asks for it, so it must cost nothing when there is nothing to
move, and a move must hold up no one but the visitor being moved."""

from __future__ import annotations

import threading
from pathlib import Path

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService

FAILSAFE = 60  # seconds: only so that a test that fails does not hang the suite


class SlowMoves(History):
    """The real store, whose move of a gated visitor waits until the test opens the gate
    (a slow disk, or a visitor with thousands of conversations)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gates: dict[str, threading.Event] = {}
        self.moving = threading.Event()  # a gated move has begun

    def move_owner(self, source: str, target: str) -> int:
        gate = self.gates.get(source)
        if gate is not None:
            self.moving.set()
            gate.wait(FAILSAFE)
        return super().move_owner(source, target)


def service_on(history: History, *, data_sharing: bool = False) -> ChatService:
    endpoint = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    catalog = parse_catalog({"models": [{"id": "m", "name": "M", "endpoints": [endpoint]}]})
    return ChatService(
        catalog=catalog,
        history=history,
        endpoints=Endpoints(environ={}),
        max_message_chars=1000,
        frame_seconds=0,
        data_sharing=data_sharing,
    )


def visitor(n: int) -> Owner:
    return Owner(id="anon:" + str(n) * 40, kind="anonymous")


def account(name: str) -> Owner:
    return Owner(id=f"hf:u-{name}", kind="hf", name=name)


def in_thread(fn, *args) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn(*args)), daemon=True)
    thread.start()
    return thread, result


def test_a_sign_in_being_moved_holds_up_no_one_else(tmp_path):
    history = SlowMoves(tmp_path)
    service = service_on(history)
    slow, empty, other = visitor(1), visitor(2), visitor(3)
    for owner in (slow, other):
        history.create_conversation(owner.id, model="m", first_message="hello")
    history.gates[slow.id] = gate = threading.Event()

    moving, moved = in_thread(service.adopt, account("slow"), slow)
    assert history.moving.wait(FAILSAFE)
    # Meanwhile: a signed-in person whose visitor has nothing (every later event of theirs),
    # and another person signing in.
    calls = [
        in_thread(service.adopt, account("b"), empty),
        in_thread(service.adopt, account("c"), other),
    ]
    for thread, _ in calls:
        thread.join(FAILSAFE)
    assert not gate.is_set() and moving.is_alive(), "the first move is still under way"
    assert [result for _, result in calls] == [[0], [1]], "neither waited for it"

    gate.set()
    moving.join(FAILSAFE)
    assert moved == [1]
    assert [c["title"] for c in history.list_conversations("hf:u-slow")] == ["hello"]


def test_a_visitor_signing_in_twice_at_once_is_moved_once(tmp_path):
    history = SlowMoves(tmp_path)
    service = service_on(history)
    me = visitor(4)
    history.create_conversation(me.id, model="m", first_message="only once")
    history.gates[me.id] = gate = threading.Event()
    calls = [in_thread(service.adopt, account("d"), me) for _ in range(2)]
    assert history.moving.wait(FAILSAFE)
    gate.set()
    for thread, _ in calls:
        thread.join(FAILSAFE)
    assert sorted(result[0] for _, result in calls) == [0, 1]
    assert [c["title"] for c in history.list_conversations("hf:u-d")] == ["only once"]
    assert history.is_retired(me.id)
