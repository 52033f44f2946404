"""End to end through gradio_client: answers that live on the server, and conversation trees.

An answer is the server's task: a client leaving mid-answer stops nothing, another client of
the same person follows it live, and stop from anyone ends it for everyone (and the request
to the model). Edit and retry add branches that /conversation shows and /switch_branch
browses; /continue writes on in the same message. One app serves the module, its models
served by the scripted server, with one answer at a time per person.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from apprunner import RunningApp
from gradio_client import Client
from scripted_server import ScriptedServer, scripted_catalog

from chat.identity import COOKIE_NAME

MARK = "heron-lantern-317"  # in messages sent: the log must never show it
WORDS = [f" w{i}" for i in range(40)]  # 40 words 0.1 s apart: an answer still being written


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[ScriptedServer, RunningApp]]:
    root = tmp_path_factory.mktemp("api-tree")
    with ScriptedServer() as srv:
        catalog = scripted_catalog(root, srv, ["story", "slow"])
        env = {"PARLOR_STREAM_FRAME_SECONDS": "0", "PARLOR_MAX_ANSWERS_PER_PERSON": "1"}
        app = RunningApp(root / "data", models=catalog, env=env).wait_ready()
        try:
            yield srv, app
        finally:
            app.stop()
    assert MARK not in app.log(), "message text never goes to the log"


def person(app: RunningApp) -> Client:
    """Someone new (the client keeps the session cookie the app gives it)."""
    return Client(app.url, verbose=False)


def same_person(app: RunningApp, c: Client) -> Client:
    """Another client of the person `c` is (another device, another script)."""
    cookies = {COOKIE_NAME: c.cookies[COOKIE_NAME]}
    return Client(app.url, verbose=False, httpx_kwargs={"cookies": cookies})


def frames(job: Any) -> list[tuple[str, str]]:
    """Every [conversation_id, answer_so_far] a streaming job sent, to its end."""
    seen = [tuple(frame) for frame in job]
    job.result()  # raises the app's error, if any
    return seen


def chat(c: Client, message: str, conversation_id: str = "", model: str = "story") -> str:
    """Send a message, read the answer to its end; the conversation's id."""
    return frames(c.submit(message, conversation_id, model, api_name="/chat"))[-1][0]


def begun(c: Client, message: str) -> tuple[Any, str, str]:
    """Send `message` to the slow model and read until its answer has begun: the job still
    streaming, the conversation's id and the answer so far."""
    job = c.submit(message, "", "slow", api_name="/chat")
    for conversation_id, text in job:
        if text:
            return job, conversation_id, text
    raise AssertionError("the answer never began")


def until(check: Callable[[], Any], what: str) -> Any:
    """`check()` once it is true (asked again and again for up to 30 s)."""
    deadline = time.monotonic() + 30
    while not (result := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)
    return result


def written(c: Client, conversation_id: str) -> dict:
    """The conversation once no answer is being written in it."""
    return until(
        lambda: (
            (conv := c.predict(conversation_id, api_name="/conversation"))
            and not conv.get("writing")
            and conv
        ),
        "the answer ended",
    )


def request_for(srv: ScriptedServer, text: str) -> dict:
    """The request the model received whose last message says `text`."""
    (request,) = [
        r
        for r in srv.requests
        if isinstance(r["body"], dict) and r["body"]["messages"][-1]["content"] == text
    ]
    return request


def test_an_answer_left_mid_way_is_finished_and_kept(served):
    srv, app = served
    srv.script_model("slow", "tokens", tokens=WORDS, delay=0.05)
    c = person(app)
    job, cid, seen = begun(c, f"{MARK} a long story")
    job.cancel()  # the client goes away: the server is told, and the job ends
    assert len(seen) < len("".join(WORDS))
    answer = written(c, cid)["messages"][-1]
    assert answer["content"] == "".join(WORDS), "the answer went on to its end"
    assert answer["incomplete"] is False and answer["notice"] == ""
    assert answer["finish_reason"] == "stop"


def test_another_client_follows_the_answer_live_to_its_end(served):
    srv, app = served
    srv.script_model("slow", "tokens", tokens=WORDS, delay=0.1)
    first = person(app)
    job, cid, seen = begun(first, f"{MARK} tell me everything")
    second = same_person(app, first)
    assert second.predict(cid, api_name="/conversation")["writing"] is True
    followed = frames(second.submit(cid, api_name="/follow"))
    whole = "".join(WORDS)
    assert followed[-1] == (cid, whole), "followed to the end"
    assert followed[0][1].startswith(seen), "from where the answer was"
    assert len({text for _, text in followed}) > 1, "live, word by word"
    assert frames(job)[-1] == (cid, whole), "the first client got the same answer"
    # Once it is written, /follow gives the answer as stored, in one update.
    assert frames(second.submit(cid, api_name="/follow")) == [(cid, whole)]


def test_following_an_answer_that_failed_says_why(served):
    srv, app = served
    srv.script_model("story", "status", status=400, body="no such thing")
    c = person(app)
    with pytest.raises(Exception) as failed:
        frames(c.submit("Ask the broken one.", "", "story", api_name="/chat"))
    (cid,) = [x["id"] for x in c.predict(api_name="/conversations")]
    notice = c.predict(cid, api_name="/conversation")["messages"][-1]["notice"]
    assert notice and str(failed.value) == notice
    with pytest.raises(Exception) as followed:
        c.predict(cid, api_name="/follow")
    assert str(followed.value) == notice


def test_stop_from_another_client_ends_every_stream_and_the_request_to_the_model(served):
    srv, app = served
    srv.script_model("slow", "tokens", tokens=WORDS * 3, delay=0.1)
    first = person(app)
    question = f"{MARK} never stop"
    job, cid, _ = begun(first, question)
    second = same_person(app, first)
    follower = second.submit(cid, api_name="/follow")
    next(follower)  # following it
    assert second.predict(cid, api_name="/stop") == {"stopped": True}
    kept = written(second, cid)["messages"][-1]
    assert kept["notice"] == "Stopped." and kept["incomplete"] is True
    assert kept["content"] and len(kept["content"]) < len("".join(WORDS * 3))
    assert kept["continuable"] is True
    assert frames(job)[-1] == (cid, kept["content"]), "the first client's stream ended"
    assert frames(follower)[-1] == (cid, kept["content"]), "so did the follower's"
    request = request_for(srv, question)
    until(lambda: request.get("hung_up"), "the request to the model was cancelled")

    srv.script_model("slow", "tokens", tokens=[" The end."])
    ended = frames(first.submit(cid, kept["id"], api_name="/continue"))
    assert ended[-1] == (cid, kept["content"] + " The end."), "a stopped answer goes on"
    whole = first.predict(cid, api_name="/conversation")["messages"]
    assert [m["id"] for m in whole] == [m["id"] for m in written(first, cid)["messages"]]
    assert whole[-1]["id"] == kept["id"] and whole[-1]["notice"] == ""


def test_edit_and_retry_add_branches_and_switch_branch_shows_each(served):
    srv, app = served
    c = person(app)
    srv.script_model("story", "echo")
    cid = chat(c, "Tell me about cats.")
    first_q, first_a = c.predict(cid, api_name="/conversation")["messages"]
    assert first_q["parent_id"] is None and first_a["parent_id"] == first_q["id"]
    assert first_a["content"] == "Tell me about cats."

    edited = frames(c.submit(cid, first_q["id"], "Tell me about dogs.", api_name="/edit"))
    assert edited[-1] == (cid, "Tell me about dogs.")
    conv = c.predict(cid, api_name="/conversation")
    dog_q, dog_a = conv["messages"]
    assert dog_q["content"] == "Tell me about dogs." and dog_q["parent_id"] is None
    assert dog_q["siblings"] == [first_q["id"], dog_q["id"]], "the first question stays"
    assert conv["path"] == [dog_q["id"], dog_a["id"]]

    srv.script_model("story", "tokens", tokens=["Dogs", " bark."])
    assert frames(c.submit(cid, "", api_name="/retry"))[-1] == (cid, "Dogs bark.")
    srv.script_model("story", "tokens", tokens=["Dogs", " wag."])
    assert frames(c.submit(cid, dog_a["id"], api_name="/retry"))[-1] == (cid, "Dogs wag.")
    conv = c.predict(cid, api_name="/conversation")
    shown = conv["messages"][-1]
    assert shown["content"] == "Dogs wag." and shown["parent_id"] == dog_q["id"]
    answers = {m["id"]: m["content"] for m in conv["all_messages"]}
    assert [answers[i] for i in shown["siblings"]] == [
        "Tell me about dogs.",
        "Dogs bark.",
        "Dogs wag.",
    ], "every answer is kept, oldest first"
    assert len(conv["all_messages"]) == 6

    back = c.predict(cid, first_q["id"], api_name="/switch_branch")
    assert [m["content"] for m in back["messages"]] == ["Tell me about cats."] * 2
    assert c.predict(cid, api_name="/conversation")["path"] == [first_q["id"], first_a["id"]]
    bark = shown["siblings"][1]
    there = c.predict(cid, bark, api_name="/switch_branch")
    assert [m["content"] for m in there["messages"]] == ["Tell me about dogs.", "Dogs bark."]

    srv.script_model("story", "echo")
    chat(c, "And wolves?", cid)
    sent = request_for(srv, "And wolves?")["body"]["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "Tell me about dogs.",
        "Dogs bark.",
        "And wolves?",
    ], "the model reads the branch shown, nothing of the others"


def test_continue_writes_on_in_the_same_message(served):
    srv, app = served
    srv.script_model("story", "tokens", tokens=["Once", " upon"], finish="length")
    c = person(app)
    cid = chat(c, "Tell me a story.")
    question, cut = c.predict(cid, api_name="/conversation")["messages"]
    assert cut["content"] == "Once upon" and cut["finish_reason"] == "length"
    assert cut["continuable"] is True

    srv.script_model("story", "tokens", tokens=[" a", " time."])
    assert frames(c.submit(cid, "", api_name="/continue"))[-1] == (cid, "Once upon a time.")
    conv = c.predict(cid, api_name="/conversation")
    assert conv["path"] == [question["id"], cut["id"]], "the same message, no new one"
    whole = conv["messages"][-1]
    assert whole["content"] == "Once upon a time." and whole["finish_reason"] == "stop"
    assert whole["continuable"] is False and whole["incomplete"] is False
    sent = srv.requests[-1]["body"]["messages"]
    assert (sent[-1]["role"], sent[-1]["content"]) == ("assistant", "Once upon")

    with pytest.raises(Exception, match="can be continued"):
        c.predict(cid, cut["id"], api_name="/continue")
    assert c.predict(cid, api_name="/conversation")["messages"][-1] == whole


def test_a_second_answer_at_once_is_refused_past_the_limit_per_person(served):
    srv, app = served
    srv.script_model("slow", "tokens", tokens=WORDS, delay=0.1)
    srv.script_model("story", "tokens", tokens=["Fine."])
    c = person(app)
    job, cid, _ = begun(c, "the first one")
    with pytest.raises(Exception, match="Wait until one ends"):
        c.predict(f"{MARK} another", "", "story", api_name="/chat")
    assert [x["id"] for x in c.predict(api_name="/conversations")] == [cid], "nothing stored"
    assert chat(person(app), "someone else") != cid, "another person is not held up"
    assert c.predict(cid, api_name="/stop") == {"stopped": True}
    frames(job)
    assert chat(c, f"{MARK} another") != cid, "once it ended, the next one is answered"


Call = Callable[[Client, str, str], Any]
CALLS: dict[str, Call] = {
    "/edit": lambda c, cid, mid: c.predict(cid, mid, "changed", api_name="/edit"),
    "/retry": lambda c, cid, mid: c.predict(cid, mid, api_name="/retry"),
    "/continue": lambda c, cid, mid: c.predict(cid, mid, api_name="/continue"),
    "/switch_branch": lambda c, cid, mid: c.predict(cid, mid, api_name="/switch_branch"),
    "/follow": lambda c, cid, mid: c.predict(cid, api_name="/follow"),
}


def refusal(call: Call, c: Client, conversation_id: str, message_id: str) -> str:
    with pytest.raises(Exception) as refused:
        call(c, conversation_id, message_id)
    return str(refused.value)


@pytest.mark.parametrize("endpoint", sorted(CALLS))
def test_someone_elses_ids_look_exactly_like_missing_ones(served, endpoint):
    srv, app = served
    srv.script_model("story", "tokens", tokens=["Noted."])
    call = CALLS[endpoint]
    owner, stranger = person(app), person(app)
    cid = chat(owner, f"{MARK} my secret")
    other_cid = chat(owner, "my other conversation")
    before = owner.predict(cid, api_name="/conversation")
    question = before["messages"][0]["id"]
    theirs = chat(stranger, "the stranger's own")
    foreign_message = stranger.predict(theirs, api_name="/conversation")["messages"][1]["id"]
    elsewhere = owner.predict(other_cid, api_name="/conversation")["messages"][1]["id"]

    made_up = refusal(call, stranger, "0" * len(cid), question)
    assert "conversation not found" in made_up
    assert refusal(call, stranger, cid, question) == made_up
    if endpoint != "/follow":
        missing = refusal(call, owner, cid, "0" * len(question))
        assert "message not found" in missing
        assert refusal(call, owner, cid, foreign_message) == missing
        assert refusal(call, owner, cid, elsewhere) == missing
    assert owner.predict(cid, api_name="/conversation") == before, "nothing changed"
