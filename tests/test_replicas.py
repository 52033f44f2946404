"""Two Parlor replicas on one PostgreSQL and one Redis (real servers, tests/pg.py and
tests/redis_server.py): an answer written on one is followed live, and stopped, from the
other; a replica killed mid-answer leaves what it acknowledged, shown as interrupted by the
survivor; several replicas without Redis refuse to start."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from apprunner import RunningApp
from balancer import haproxy
from gradio_client import Client
from redis_server import redis_server  # noqa: F401 - fixture
from scripted_server import ScriptedServer, scripted_catalog
from test_http_api import events

from chat.history_pg import PgHistory
from chat.identity import COOKIE_NAME

TOKENS = [f" word{n}" for n in range(40)]
FULL = "".join(TOKENS)


@pytest.fixture
def replicas(tmp_path, pg_url, redis_server):  # noqa: F811 - the fixture
    with ScriptedServer() as srv:
        srv.script_model("slow", "slow", tokens=TOKENS, delay=0.25)
        models = scripted_catalog(tmp_path, srv, ["slow"])
        env = {
            "PARLOR_DATABASE_URL": pg_url,
            "PARLOR_REDIS_URL": redis_server.url,
            "PARLOR_REPLICAS": "2",
            "PARLOR_LIMIT_PER_MINUTE": "3",  # counted once for both replicas
        }
        apps = [RunningApp(tmp_path / f"data{n}", models=models, env=env) for n in range(2)]
        try:
            yield [app.wait_ready() for app in apps]
        finally:
            for app in apps:
                app.stop()


@pytest.fixture
def balancer(replicas) -> Iterator[str]:
    """HAProxy with sticky sessions in front of both replicas (deploy/haproxy.cfg); its URL."""
    with haproxy(replicas) as (url, _):
        yield url


def test_a_person_chats_through_the_balancer_and_every_replica_shows_it(replicas, balancer):
    with httpx.Client(timeout=60) as me:
        me.get(balancer).raise_for_status()  # the session cookie, and the balancer's
        assert {"PARLOR_REPLICA", COOKIE_NAME} <= set(me.cookies.keys())
        as_me = {"Cookie": f"{COOKIE_NAME}={me.cookies[COOKIE_NAME]}"}
        direct = [Client(app.url, verbose=False, headers=as_me) for app in replicas]
        with me.stream("POST", balancer + "api/chat", json={"message": "Hello there"}) as answer:
            frames = events(answer)
            cid = started(frames)
            assert [r.predict(cid, api_name="/conversation")["writing"] for r in direct] == [
                True,
                True,
            ]
            name, (_, text) = [(n, d) for n, d in frames][-1]
        assert name == "complete" and text == FULL
    for replica in direct:
        (listed,) = replica.predict(api_name="/conversations")
        assert listed["id"] == cid
        shown = replica.predict(cid, api_name="/conversation")
        assert not shown["writing"]
        assert [m["content"] for m in shown["messages"]] == ["Hello there", FULL]


def person(app: RunningApp) -> dict:
    """A visitor's session cookie: the same person on every replica (one PARLOR_SECRET)."""
    return {COOKIE_NAME: httpx.get(app.url, timeout=30).cookies[COOKIE_NAME]}


def started(stream: Iterator[tuple[str, object]]) -> str:
    """Read the answer until some of it is written; its conversation id."""
    for name, data in stream:
        assert name == "generating", data
        if data[1]:
            return data[0]
    raise AssertionError("the answer ended before it began")


def test_an_answer_is_followed_and_stopped_from_the_other_replica(replicas):
    a, b = replicas
    me = person(a)
    with httpx.Client(cookies=me, timeout=60) as on_a, httpx.Client(cookies=me, timeout=60) as on_b:
        with on_a.stream("POST", a.url + "api/chat", json={"message": "Go on"}) as writing:
            frames = events(writing)
            cid = started(frames)
            assert Client(
                b.url, verbose=False, headers={"Cookie": f"{COOKIE_NAME}={me[COOKIE_NAME]}"}
            ).predict(cid, api_name="/conversation")["writing"]
            seen = []
            with on_b.stream("POST", b.url + "api/follow", json={"conversation_id": cid}) as follow:
                followed = events(follow)
                for name, data in followed:
                    assert name == "generating"
                    seen.append(data[1])
                    if len(seen) == 3:
                        break
                assert seen[0] and seen[2].startswith(seen[0]) and len(seen[2]) > len(seen[0])
                stopper = Client(
                    b.url, verbose=False, headers={"Cookie": f"{COOKIE_NAME}={me[COOKIE_NAME]}"}
                )
                assert stopper.predict(cid, api_name="/stop") == {"stopped": True}
                end_b = [(n, d) for n, d in followed][-1]
            end_a = [(n, d) for n, d in frames][-1]
    assert end_a[0] == end_b[0] == "complete"
    assert end_a[1][1] == end_b[1][1] and len(end_a[1][1]) < len(FULL)
    shown = stopper.predict(cid, api_name="/conversation")
    assert not shown["writing"]
    assert shown["messages"][-1]["content"] == end_a[1][1]
    assert shown["messages"][-1]["notice"] == "Stopped."


def test_usage_limits_count_the_messages_sent_to_every_replica(replicas):
    a, b = replicas
    me = person(a)
    sent = []
    for app in (a, b, a, b):
        reply = httpx.post(app.url + "api/chat", json={"message": "Hi"}, cookies=me, timeout=60)
        sent.append(reply.status_code)
    assert sent == [200, 200, 200, 429]
    assert "Message limit reached: 3 messages per minute for you" in reply.json()["error"]


def test_a_replica_killed_mid_answer_leaves_what_it_acknowledged(replicas, pg_url):
    a, b = replicas
    me = person(a)
    as_me = {"Cookie": f"{COOKIE_NAME}={me[COOKIE_NAME]}"}
    store = PgHistory(pg_url, pool_size=1)
    with httpx.Client(cookies=me, timeout=60) as on_a:
        with on_a.stream("POST", a.url + "api/chat", json={"message": "Keep it"}) as writing:
            cid = started(events(writing))
            saved = ""
            while not saved:  # the answer's first periodic save has landed
                time.sleep(0.1)
                for owner in store.owners():
                    (conv,) = store.conversations_by_key(owner)
                    saved = conv["messages"][-1]["content"]
            survivor = Client(b.url, verbose=False, headers=as_me)
            assert survivor.predict(cid, api_name="/conversation")["writing"]
            a.proc.kill()
    shown = survivor.predict(cid, api_name="/conversation")
    while shown["writing"]:  # until the dead writer's sign of life expires
        time.sleep(0.5)
        shown = survivor.predict(cid, api_name="/conversation")
    question, answer = shown["messages"]
    assert question["content"] == "Keep it"
    assert answer["content"].startswith(saved) and FULL.startswith(answer["content"])
    assert answer["notice"].startswith("Interrupted")
    body = {"conversation_id": cid, "retry_of": answer["id"]}
    again = httpx.post(b.url + "api/chat", json=body, cookies=me, timeout=60)
    assert list(events(again))[-1] == ("complete", [cid, FULL])  # retried there
    store.close()


def test_several_replicas_without_redis_refuse_to_start(tmp_path, pg_url):
    app = RunningApp(tmp_path / "data", env={"PARLOR_DATABASE_URL": pg_url, "PARLOR_REPLICAS": "2"})
    with pytest.raises(RuntimeError, match="app exited early") as stopped:
        app.wait_ready()
    app.stop()
    assert "Parlor cannot start: PARLOR_REPLICAS=2 needs PARLOR_REDIS_URL" in str(stopped.value)
    assert "Traceback" not in app.log()
