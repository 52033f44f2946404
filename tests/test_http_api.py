"""End to end: `POST /api/chat`, the plain HTTP streaming door, on the real app.

It must behave like the Gradio `/chat` endpoint: the same person (session cookie), the same
store, the same clear errors, and what was written kept when the answer breaks or the caller
goes away. One app serves the module, its models served by the scripted server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from scripted_server import ScriptedServer, scripted_catalog

from chat.identity import COOKIE_NAME

MARK = "pelican-marble-902"  # in every message sent: the log must never show it
WORDS = ["Once", " upon", " a", " time", "."]
LONG = [f" w{i}" for i in range(40)]  # 0.1 s apart: an answer being written for a while


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[ScriptedServer, RunningApp]]:
    root = tmp_path_factory.mktemp("http-api")
    with ScriptedServer() as srv:
        catalog = scripted_catalog(root, srv, ["story", "cut", "slow"])
        env = {"PARLOR_STREAM_FRAME_SECONDS": "0", "PARLOR_MAX_ANSWERS_PER_PERSON": "2"}
        app = RunningApp(root / "data", models=catalog, env=env).wait_ready()
        try:
            yield srv, app
        finally:
            app.stop()


def person(app: RunningApp) -> httpx.Client:
    """Someone new: their own cookie jar, which keeps the session cookie the app sets."""
    return httpx.Client(base_url=app.url, timeout=30)


def events(response: httpx.Response) -> Iterator[tuple[str, object]]:
    """The (event, data) pairs of a Server-Sent Events stream."""
    name = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def post(c: httpx.Client, path: str, body: dict) -> list[tuple[str, object]]:
    """The events of a request that must start streaming."""
    with c.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(events(r))


def send(c: httpx.Client, message: str, conversation_id: str = "", model_id: str = "story"):
    body = {"message": message, "conversation_id": conversation_id, "model_id": model_id}
    return post(c, "api/chat", body)


def gradio(app: RunningApp, c: httpx.Client) -> Client:
    """The Gradio client API, as the same person (their session cookie)."""
    cookies = {COOKIE_NAME: c.cookies[COOKIE_NAME]}
    return Client(app.url, verbose=False, httpx_kwargs={"cookies": cookies})


def test_the_answer_streams_and_is_kept_like_the_gradio_chat(served):
    srv, app = served
    srv.script_model("story", "tokens", tokens=WORDS, delay=0.05)
    with person(app) as c:
        stream = send(c, f"{MARK} tell me a story")
        assert c.cookies.get(COOKIE_NAME), "a new caller gets a session cookie"
        kinds = [kind for kind, _ in stream]
        assert kinds[-1] == "complete" and set(kinds[:-1]) == {"generating"}
        cid, answer = stream[-1][1]
        assert answer == "".join(WORDS)
        texts = [text for _, (_, text) in stream]
        assert len({t for t in texts if t}) >= len(WORDS), "it streams word by word"
        assert all(answer.startswith(t) for t in texts), "each frame extends the last"
        assert {frame_cid for _, (frame_cid, _) in stream} == {cid}

        again = send(c, "and another", cid)
        assert again[-1] == ("complete", [cid, answer])

        conversation = gradio(app, c).predict(cid, api_name="/conversation")
        assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
            ("user", f"{MARK} tell me a story"),
            ("assistant", answer),
            ("user", "and another"),
            ("assistant", answer),
        ]


def test_line_separators_in_an_answer_arrive_whole(served):
    srv, app = served
    odd = ["One\u2028line", " and\u2029one", " more\x85é"]
    srv.script_model("story", "tokens", tokens=odd)
    with person(app) as c:
        assert send(c, "odd characters")[-1][1][1] == "".join(odd)


def test_someone_elses_conversation_looks_missing(served):
    _, app = served
    with person(app) as owner, person(app) as other:
        cid = send(owner, f"{MARK} my secret")[-1][1][0]
        theirs = other.post("api/chat", json={"message": "let me in", "conversation_id": cid})
        made_up = other.post(
            "api/chat", json={"message": "let me in", "conversation_id": "0" * len(cid)}
        )
        assert (theirs.status_code, theirs.json()) == (made_up.status_code, made_up.json())
        assert theirs.status_code == 404 and "not found" in theirs.json()["error"]
        messages = gradio(app, owner).predict(cid, api_name="/conversation")["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == [f"{MARK} my secret"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"message": "   "}, 400, "Type a message first"),
        ({"message": MARK + "x" * 20_000}, 400, "the limit is 16,000"),
        ({"message": "hi", "model_id": "no-such-model"}, 400, "unknown model"),
        ({"message": MARK * 100_000}, 413, "up to 16,000 characters"),
        ({"text": "hi"}, 422, '{"message": "Hello!"'),
        ({"message": "hi", "edit_off": "x"}, 422, "edit_of, retry_of"),
        ({"message": "hi", "edit_of": "x", "retry_of": "y"}, 400, "not both"),
        ({"message": "hi", "retry_of": "x"}, 400, "without a message"),
        ("not json at all", 422, '{"message": "Hello!"'),
    ],
)
def test_a_bad_request_is_explained_and_stores_nothing(served, body, status, says):
    _, app = served
    with person(app) as c:
        if isinstance(body, str):
            r = c.post("api/chat", content=body, headers={"content-type": "application/json"})
        else:
            r = c.post("api/chat", json=body)
        assert r.status_code == status
        assert says in r.json()["error"]
        assert gradio(app, c).predict(api_name="/conversations") == []


def test_a_post_from_another_site_is_refused(served):
    _, app = served
    with person(app) as c:
        c.get("healthz")  # the visitor has a session cookie, which the browser sends along
        r = c.post(
            "api/chat", json={"message": "hi"}, headers={"origin": "https://elsewhere.example"}
        )
        assert r.status_code == 403
        assert gradio(app, c).predict(api_name="/conversations") == []


def test_a_broken_answer_is_explained_and_what_came_is_kept(served):
    srv, app = served
    srv.script_model("cut", "cut", tokens=WORDS, after=3)
    with person(app) as c:
        stream = send(c, f"{MARK} go on", model_id="cut")
        kind, data = stream[-1]
        assert kind == "error"
        assert "broke in the middle of the answer" in data["error"]
        cid = stream[0][1][0]
        answer = gradio(app, c).predict(cid, api_name="/conversation")["messages"][1]
        assert answer["content"] == "".join(WORDS[:3])
        assert answer["incomplete"] is True and answer["notice"] == data["error"]


def test_hanging_up_stops_nothing_the_answer_is_finished_and_kept(served):
    srv, app = served
    srv.script_model("slow", "slow", tokens=LONG, delay=0.05)
    with person(app) as c:
        body = {"message": f"{MARK} a long one", "model_id": "slow"}
        with c.stream("POST", "api/chat", json=body) as r:
            for _, frame in events(r):
                cid, seen = frame
                if len(seen) >= 3 * len(" w0"):
                    break  # leaves the block: the connection closes mid-answer
        api = gradio(app, c)
        deadline = time.monotonic() + 30
        while (conversation := api.predict(cid, api_name="/conversation")).get("writing"):
            assert time.monotonic() < deadline, "the answer never ended"
            time.sleep(0.1)
        answer = conversation["messages"][1]
        assert answer["content"] == "".join(LONG), "the answer went on to its end"
        assert answer["incomplete"] is False and answer["notice"] == ""
        srv.script_model("slow", "tokens", tokens=["Back."])
        after = send(c, "still there?", cid)
        assert after[-1] == ("complete", [cid, "Back."]), "the conversation goes on"
    assert MARK not in app.log(), "message text never goes to the log"


def test_edit_of_and_retry_of_add_branches(served):
    srv, app = served
    srv.script_model("story", "echo")
    with person(app) as c:
        cid = send(c, "Tell me about cats.")[-1][1][0]
        api = gradio(app, c)
        question, first = api.predict(cid, api_name="/conversation")["messages"]
        edit = {"conversation_id": cid, "edit_of": question["id"], "message": "And dogs?"}
        assert post(c, "api/chat", edit)[-1] == ("complete", [cid, "And dogs?"])
        srv.script_model("story", "tokens", tokens=WORDS)
        dogs = api.predict(cid, api_name="/conversation")["messages"][-1]
        retry = {"conversation_id": cid, "retry_of": dogs["id"]}
        assert post(c, "api/chat", retry)[-1] == ("complete", [cid, "".join(WORDS)])
        conversation = api.predict(cid, api_name="/conversation")
        asked, answered = conversation["messages"]
        assert asked["content"] == "And dogs?"
        assert asked["siblings"] == [question["id"], asked["id"]], "the first question stays"
        assert answered["siblings"] == [dogs["id"], answered["id"]], "so does the first answer"
        kept = {m["id"]: m["content"] for m in conversation["all_messages"]}
        assert len(kept) == 5 and kept[first["id"]] == "Tell me about cats."


def test_follow_streams_the_answer_being_written_to_its_end(served):
    srv, app = served
    srv.script_model("slow", "tokens", tokens=LONG, delay=0.1)
    with person(app) as c:
        body = {"message": f"{MARK} a long one", "model_id": "slow"}
        with c.stream("POST", "api/chat", json=body) as r:
            started = events(r)
            _, (cid, seen) = next(started)
            with person(app) as other:  # the same person, in another program
                other.cookies.set(COOKIE_NAME, c.cookies[COOKIE_NAME])
                followed = post(other, "api/follow", {"conversation_id": cid})
            kinds = [kind for kind, _ in followed]
            assert kinds[-1] == "complete" and set(kinds[:-1]) == {"generating"}
            assert followed[-1][1] == [cid, "".join(LONG)]
            assert followed[0][1][1].startswith(seen), "from where the answer was"
            assert len({text for _, (_, text) in followed}) > 1, "live, word by word"
            assert list(started)[-1] == ("complete", [cid, "".join(LONG)])
        assert post(c, "api/follow", {"conversation_id": cid}) == [
            ("complete", [cid, "".join(LONG)])
        ], "once it is written, the answer as stored"


def test_ids_of_someone_else_look_exactly_like_missing_ones(served):
    srv, app = served
    srv.script_model("story", "tokens", tokens=WORDS)
    with person(app) as owner, person(app) as other:
        cid = send(owner, f"{MARK} mine")[-1][1][0]
        theirs = send(other, "theirs")[-1][1][0]
        question = gradio(app, owner).predict(cid, api_name="/conversation")["messages"][0]
        foreign = gradio(app, other).predict(theirs, api_name="/conversation")["messages"][0]

        def refused(path: str, body: dict, who: httpx.Client) -> tuple[int, dict]:
            r = who.post(path, json=body)
            return r.status_code, r.json()

        made_up = {"conversation_id": "0" * len(cid)}
        for path, extra in (
            ("api/follow", {}),
            ("api/chat", {"message": "x", "edit_of": question["id"]}),
            ("api/chat", {"retry_of": question["id"]}),
        ):
            missing = refused(path, {**made_up, **extra}, other)
            assert missing == (404, {"error": "conversation not found"})
            assert refused(path, {"conversation_id": cid, **extra}, other) == missing
        for field, extra in (("edit_of", {"message": "x"}), ("retry_of", {})):
            missing = refused("api/chat", {"conversation_id": cid, field: "0" * 32, **extra}, owner)
            assert missing == (404, {"error": "message not found"})
            body = {"conversation_id": cid, field: foreign["id"], **extra}
            assert refused("api/chat", body, owner) == missing
        assert len(gradio(app, owner).predict(cid, api_name="/conversation")["all_messages"]) == 2


def test_a_second_message_while_the_answer_is_written_is_refused(served):
    srv, app = served
    with person(app) as c:
        srv.script_model("slow", "tokens", tokens=["Quick."])
        cid = send(c, "first", model_id="slow")[-1][1][0]
        srv.script_model("slow", "slow", tokens=[f" w{i}" for i in range(40)], delay=0.1)
        body = {"message": f"{MARK} second", "conversation_id": cid}
        with c.stream("POST", "api/chat", json=body) as r:
            second = events(r)  # kept: dropping it would close the connection, and end it
            next(second)  # the answer has begun
            third = c.post("api/chat", json={"message": "third", "conversation_id": cid})
        assert third.status_code == 409
        assert "still being written" in third.json()["error"]


def test_past_the_answers_a_person_may_have_at_once_a_429_says_to_wait(served):
    srv, app = served
    srv.script_model("slow", "tokens", tokens=LONG, delay=0.1)
    with person(app) as c, ExitStack() as answering:
        for n in range(2):  # PARLOR_MAX_ANSWERS_PER_PERSON
            body = {"message": f"story {n}", "model_id": "slow"}
            next(events(answering.enter_context(c.stream("POST", "api/chat", json=body))))
        third = c.post("api/chat", json={"message": f"{MARK} a third", "model_id": "story"})
        assert third.status_code == 429
        assert "Wait until one ends" in third.json()["error"]
        # Both answers' conversations are stored: the question is written beside the request
        # to the model, so the first event may come a moment before it is on disk.
        client = gradio(app, c)
        deadline = time.monotonic() + 30
        while len(client.predict(api_name="/conversations")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(client.predict(api_name="/conversations")) == 2, "nothing stored"
