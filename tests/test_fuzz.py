"""Property-based fuzzing of the client API and `POST /api/chat`, on the real app.

Whatever arrives (any Unicode, NUL, lone surrogates, 1 MB strings, wrong types and
arities, ids of every shape, hostile `/import` documents, odd settings), the app answers
with a clear message or does what was asked: never a 500 or a generic error with a trace in
its log, nothing stored on a refusal, and what it accepted reads back byte for byte from
`/conversation` and `/export`. The model is the scripted server's `echo` scenario, so
answers are instant.

The suite runs a fixed, derandomized profile (under a minute). A long local run:

    PARLOR_FUZZ_EXAMPLES=2000 python -m pytest -q tests/test_fuzz.py

Lone surrogates cannot be encoded as UTF-8, so no JSON client sends them as characters; they
go over raw HTTP as `\\ud800` escapes, which any JSON parser may meet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from gradio_client.exceptions import AppError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scripted_server import ScriptedServer, echo_catalog

from chat.identity import COOKIE_NAME

EXAMPLES = int(os.environ.get("PARLOR_FUZZ_EXAMPLES", "8"))
settings.register_profile(
    "parlor-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
fuzz = settings.get_profile("parlor-fuzz")

LIMIT = 16_000  # the app's default PARLOR_MAX_MESSAGE_CHARS
LEAKS = ("Traceback", 'File "', "Exception", "object has no attribute")
ARITY = {  # each endpoint and how many arguments it takes
    "models": 0,
    "new_conversation": 1,
    "chat": 3,
    "retry": 2,
    "edit": 3,
    "continue": 2,
    "follow": 1,
    "stop": 1,
    "conversations": 1,
    "search": 1,  # and an optional limit
    "conversation": 1,
    "switch_branch": 2,
    "rename_conversation": 2,
    "delete_conversation": 1,
    "delete_all_conversations": 0,
    "export": 0,
    "import": 1,
    "settings": 0,
    "update_settings": 1,
}

# -- strategies ---------------------------------------------------------------------------

any_char = st.characters(exclude_categories=())  # surrogates and controls included
SPECIAL_TEXTS = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d",  # half an emoji
    "😀\u200d👩\u2028\u2029\x85",
    "\u202eevil\u202c",
    " \t\n ",
    "x" * (LIMIT + 1),
    "x" * 1_000_000,
    "\U0010ffff" * 100,
    '"}]}\\',
    "<script>alert(1)</script>",
]
texts = st.one_of(st.text(any_char, max_size=60), st.sampled_from(SPECIAL_TEXTS))


def with_special_texts(test):
    """Every special text once, whatever the random draw (hypothesis `example`s)."""
    for text in SPECIAL_TEXTS:
        test = example(text)(test)
    return test


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)
hex_ids = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
odd_ids = st.one_of(
    texts,
    st.from_regex(r"[0-9a-fA-F]{0,40}", fullmatch=True),
    st.sampled_from(
        [
            "",
            "../../../../etc/passwd",
            "..%2F..%2Fsecret.key",
            "/" + "0" * 31,
            "0" * 32 + "/../index",
            "0" * 32 + "\x00",
            "0" * 32 + "\n",
            "index",
            "../index",
            "." * 32,
        ]
    ),
)


# -- the app and its callers --------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    root = tmp_path_factory.mktemp("fuzz")
    with ScriptedServer() as srv:
        srv.script("echo")
        catalog = echo_catalog(root, srv)
        env = {"PARLOR_STREAM_FRAME_SECONDS": "0", "PARLOR_DATA_SHARING": "true"}
        running = RunningApp(root / "data", models=catalog, env=env).wait_ready()
        try:
            yield running
        finally:
            running.stop()


class Person:
    """Someone with their own session cookie, over raw HTTP and over gradio_client."""

    def __init__(self, app: RunningApp, http: httpx.Client) -> None:
        assert COOKIE_NAME in http.cookies
        self.app, self.http = app, http
        self.api = Client(app.url, verbose=False, httpx_kwargs={"cookies": dict(http.cookies)})
        self.seen = len(app.log())  # how much of the app's log was checked already

    def assert_no_trace(self) -> None:
        """No traceback in the app's log since the last check."""
        log = self.app.log()
        new, self.seen = log[self.seen :], len(log)
        assert "Traceback" not in new, new[new.index("Traceback") :][-3000:]

    def __repr__(self) -> str:  # hypothesis prints it with each failing example
        return "Person()"


@pytest.fixture
def person(app) -> Iterator[Person]:
    with httpx.Client(base_url=app.url, timeout=60) as http:
        http.get("healthz").raise_for_status()  # the session cookie
        yield Person(app, http)


def encodable(value: object) -> bool:
    """Whether a JSON client can send `value` (lone surrogates are not UTF-8)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Outcome:
    """How a call ended: its result, or the error message a person would read."""

    ok: bool
    value: object = None
    error: str = ""


def call(p: Person, name: str, data: list) -> Outcome:
    """A Gradio endpoint over its raw HTTP API (`/gradio_api/call/<name>`), with any JSON
    body: what a client that sends wrong types, arities or lone surrogates would do."""
    body = json.dumps({"data": data})  # ensure_ascii: a lone surrogate goes as "\\ud800"
    r = p.http.post(
        f"gradio_api/call/{name}", content=body, headers={"content-type": "application/json"}
    )
    p.assert_no_trace()
    assert r.status_code < 500, (name, r.status_code, r.text[:500])
    if r.status_code != 200:
        return Outcome(False, error=clear_error(r.json().get("detail") or r.text))
    event_id = r.json()["event_id"]
    kind, payload = "", None
    with p.http.stream("GET", f"gradio_api/call/{name}/{event_id}") as s:
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                payload = json.loads(line[6:])
    p.assert_no_trace()
    if kind == "error":  # Gradio sends a gr.Error as {"error": message, "title": ...}
        message = payload.get("error") if isinstance(payload, dict) else payload
        return Outcome(False, error=clear_error(message))
    assert kind == "complete", (name, kind, payload)
    return Outcome(True, value=payload[0] if len(payload) == 1 else payload)


def clear_error(message: object) -> str:
    """A message written for a person: there is one, and it shows no internals."""
    assert isinstance(message, str) and message.strip(), f"no message, just {message!r}"
    assert message.lower() != "error", "a generic error"
    for leak in LEAKS:
        assert leak not in message, message[:500]
    return message


def listing(p: Person) -> list[dict]:
    return p.api.predict(api_name="/conversations")


def exported(p: Person, cid: str) -> dict:
    document = p.api.predict(api_name="/export")
    (conv,) = [c for c in document["conversations"] if c["id"] == cid]
    return conv


def assert_reads_back(p: Person, cid: str, sent: list[tuple[str, str]]) -> None:
    """The conversation holds exactly these (role, content) messages, identical in
    `/conversation` and in `/export`."""
    shown = [
        (m["role"], m["content"]) for m in p.api.predict(cid, api_name="/conversation")["messages"]
    ]
    assert shown == sent
    assert [(m["role"], m["content"]) for m in exported(p, cid)["messages"]] == sent


def api_chat(p: Person, body: object) -> tuple[int, object]:
    """`POST /api/chat` with any JSON body: (status, last event or error JSON)."""
    raw = json.dumps(body)  # ensure_ascii: lone surrogates as escapes
    with p.http.stream(
        "POST", "api/chat", content=raw, headers={"content-type": "application/json"}
    ) as r:
        if r.status_code != 200:
            p.assert_no_trace()
            return r.status_code, json.loads(r.read())
        last = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                last = [line[7:]]
            elif line.startswith("data: "):
                last.append(json.loads(line[6:]))
    p.assert_no_trace()
    return 200, last


# -- sending any text -----------------------------------------------------------------------


def check_sent(p: Person, message: str, outcome: Outcome, before: int) -> None:
    """A message was sent: either refused clearly with nothing stored, or stored exactly as
    sent (less the surrounding blanks the chat always trims), with the answer as streamed."""
    p.assert_no_trace()
    if not outcome.ok:
        clear_error(outcome.error)
        assert len(listing(p)) == before, "a refused message stored nothing"
        return
    cid, answer = outcome.value
    text = message.strip()
    assert text and len(text) <= LIMIT, "only a message the chat takes is accepted"
    assert answer, "the echo answers"
    assert_reads_back(p, cid, [("user", text), ("assistant", answer)])


@fuzz
@given(message=texts)
@with_special_texts
def test_api_chat_takes_any_text(person, message):
    before = len(listing(person))
    status, result = api_chat(person, {"message": message, "conversation_id": "", "model_id": ""})
    assert status in (200, 400, 413, 422), (status, result)
    if status != 200:
        check_sent(person, message, Outcome(False, error=result["error"]), before)
        return
    kind, data = result
    assert kind == "complete", result
    check_sent(person, message, Outcome(True, value=data), before)


@fuzz
@given(message=texts)
@with_special_texts
def test_gradio_chat_takes_any_text(person, message):
    before = len(listing(person))
    if encodable(message):  # the client API as a Python caller uses it
        try:
            outcome = Outcome(True, value=person.api.predict(message, "", "", api_name="/chat"))
        except AppError as e:  # the app's message
            outcome = Outcome(False, error=str(e))
    else:
        outcome = call(person, "chat", [message, "", ""])
    check_sent(person, message, outcome, before)


# -- wrong types and arities ------------------------------------------------------------------


@fuzz
@given(data=st.data())
def test_every_endpoint_takes_any_arguments(person, data):
    """Values of any type, as many as the endpoint takes or more."""
    name = data.draw(st.sampled_from(sorted(ARITY)))
    args = data.draw(st.lists(json_values, min_size=ARITY[name], max_size=ARITY[name] + 2))
    before = listing(person)
    outcome = call(person, name, args)
    if not outcome.ok:
        assert listing(person) == before, f"a refused /{name} changed what is stored"


def test_too_few_arguments_are_explained(person):
    before = listing(person)
    for name in [name for name, arity in ARITY.items() if arity]:
        assert not call(person, name, []).ok, name
    assert listing(person) == before


# -- ids of every shape -------------------------------------------------------------------


@pytest.fixture
def victim(app) -> Iterator[tuple[Person, str]]:
    """Someone else, with one conversation: no id shape may reach or change it."""
    with httpx.Client(base_url=app.url, timeout=60) as http:
        http.get("healthz").raise_for_status()
        p = Person(app, http)
        cid, _ = p.api.predict("the victim's words", "", "", api_name="/chat")
        yield p, cid
        words = "the victim's words"
        assert_reads_back(p, cid, [("user", words), ("assistant", words)])


@fuzz
@given(data=st.data())
def test_conversation_ids_of_every_shape_reach_nothing(person, victim, data):
    theirs = victim[1]
    cid = data.draw(st.one_of(odd_ids, hex_ids, st.just(theirs), st.just(theirs.upper())))
    before = listing(person)
    for name, args in [
        ("conversation", [cid]),
        ("rename_conversation", [cid, "renamed"]),
        ("retry", [cid, ""]),
        ("edit", [cid, "", "hello"]),
        ("continue", [cid, ""]),
        ("follow", [cid]),
        ("switch_branch", [cid, ""]),
        ("chat", ["hello", cid, ""]),
    ]:
        outcome = call(person, name, args)
        if cid:  # an empty id starts a new conversation
            assert not outcome.ok and outcome.error == "conversation not found", (name, outcome)
    assert call(person, "delete_conversation", [cid]).value == {"deleted": False}
    assert call(person, "stop", [cid]).value == {"stopped": False}
    status, result = api_chat(person, {"message": "hello", "conversation_id": cid})
    if cid and encodable(cid) and len(cid) < LIMIT:
        assert (status, result) == (404, {"error": "conversation not found"})
    elif cid:  # too large or not valid Unicode: the whole body is refused, clearly
        assert status in (413, 422) and clear_error(result["error"])
    if cid:
        assert listing(person) == before


# -- /import --------------------------------------------------------------------------------

messages = st.fixed_dictionaries(
    {
        "role": st.one_of(st.sampled_from(["user", "assistant"]), json_values),
        "content": st.one_of(texts, json_values),
    },
    optional={
        "created_at": st.one_of(texts, json_values),
        "model": st.one_of(st.none(), texts, json_values),
        "incomplete": st.one_of(st.booleans(), json_values),
        "notice": st.one_of(texts, json_values),
    },
)
conversations = st.fixed_dictionaries(
    {
        "id": st.one_of(hex_ids, odd_ids, json_values),
        "model": st.one_of(st.just("echo"), texts, json_values),
        "created_at": st.one_of(st.just("2026-01-01T00:00:00+00:00"), texts, json_values),
        "updated_at": st.one_of(st.just("2026-01-02T00:00:00+00:00"), texts, json_values),
        "messages": st.one_of(st.lists(messages, max_size=4), json_values),
    },
    optional={"title": st.one_of(texts, json_values)},
)


@st.composite
def documents(draw) -> object:
    """Export documents, from well-formed to hostile: wrong types in any field, the same
    id twice, ids of other shapes, path-traversal-looking ids."""
    convs = draw(st.lists(conversations, max_size=4))
    if convs and draw(st.booleans()):
        convs.append(dict(convs[0], title="the same id again"))
    document = {
        "format": draw(st.one_of(st.just("parlor-export"), json_values)),
        "version": draw(st.one_of(st.just(1), json_values)),
        "settings": draw(st.one_of(st.just({}), json_values)),
        "conversations": convs,
    }
    return draw(st.one_of(st.just(document), json_values))


def as_stored(message: dict) -> tuple:
    return (message["role"], message["content"])


def exported_document(*conversations: dict) -> dict:
    return {"format": "parlor-export", "version": 1, "conversations": list(conversations)}


def imported(cid: object, content: object = "hi", title: object = "t") -> dict:
    """A conversation of an export document, with these fields."""
    return {
        "id": cid,
        "title": title,
        "model": "echo",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "messages": [{"role": "user", "content": content}],
    }


@fuzz
@given(document=documents())
@example(exported_document(imported("a" * 32, content="lone \ud800 surrogate")))
@example(exported_document(imported("b" * 32, title="\udfff")))
@example(exported_document(imported("c" * 32, content="a\x00b"), imported("c" * 32, "again")))
@example(exported_document(imported("../../../secret.key"), imported("0" * 31 + "/")))
@example(exported_document(imported(["d" * 32]), imported({"id": "e" * 32})))
def test_import_takes_any_document(person, document):
    before = {c["id"] for c in listing(person)}
    outcome = call(person, "import", [json.dumps(document)])
    after = {c["id"] for c in listing(person)}
    if not outcome.ok:
        assert after == before, "a refused import stored nothing"
        return
    new = after - before
    assert outcome.value == {"imported": len(new)}
    for cid in new:
        first = next(c for c in document["conversations"] if c.get("id") == cid)
        shown = person.api.predict(cid, api_name="/conversation")
        assert shown["title"] == first.get("title", "New chat")
        sent = [as_stored(m) for m in first["messages"]]
        assert_reads_back(person, cid, sent)
        fields = ("created_at", "model", "incomplete", "notice")
        for stored, original in zip(shown["messages"], first["messages"], strict=True):
            assert {k: stored[k] for k in fields if k in original} == {
                k: original[k] for k in fields if k in original
            }


DEEP = 10_000


@pytest.mark.parametrize(
    "document",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        json.dumps({"format": "parlor-export", "version": 1, "settings": {}})[:-1]
        + ', "conversations": '
        + "[" * DEEP
        + "]" * DEEP
        + "}",
        '{"format": "parlor-export", "version": 1, "settings": '
        + '{"a":' * DEEP
        + "1"
        + "}" * DEEP
        + "}",
    ],
    ids=["list", "object", "conversations", "settings"],
)
def test_a_deeply_nested_import_is_refused_clearly(person, document):
    outcome = call(person, "import", [document])
    assert not outcome.ok
    assert listing(person) == []


def test_a_huge_import_is_stored_whole_or_refused_clearly(person):
    big = "ü" * 1_000_000
    cid = "f" * 32
    document = {
        "format": "parlor-export",
        "version": 1,
        "conversations": [
            {
                "id": cid,
                "title": big[:300],
                "model": "echo",
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
                "messages": [{"role": "user", "content": big}],
            }
        ],
    }
    outcome = call(person, "import", [json.dumps(document, ensure_ascii=False)])
    if outcome.ok:
        assert outcome.value == {"imported": 1}
        assert_reads_back(person, cid, [("user", big)])
    else:
        assert listing(person) == []


# -- /update_settings -----------------------------------------------------------------------

SHARE = "share_with_model_authors"
SETTINGS = [SHARE, "default_model", "system_prompts", "theme", "welcome_dismissed"]


@fuzz
@given(
    changes=st.one_of(
        json_values,
        st.dictionaries(st.one_of(texts, st.sampled_from(SETTINGS)), json_values, max_size=3),
        st.fixed_dictionaries({SHARE: json_values}),
        st.dictionaries(st.sampled_from(SETTINGS[1:]), json_values, min_size=1, max_size=1),
    )
)
def test_update_settings_takes_any_value(person, changes):
    before = call(person, "settings", []).value
    outcome = call(person, "update_settings", [changes])
    after = call(person, "settings", []).value
    if not outcome.ok:
        assert after == before, "a refused change changed nothing"
        return
    assert isinstance(changes, dict) and set(changes) <= set(SETTINGS)
    assert after == outcome.value and set(after) == set(SETTINGS)
    plain = {k: v for k, v in changes.items() if k != "system_prompts"}  # merged per model
    assert after == {**before, **plain, "system_prompts": after["system_prompts"]}


def test_whats_accepted_survives_every_odd_character(person):
    """One conversation gathering the odd characters the chat takes: each message and its
    echo read back identical, in order (`strip` aside), from the conversation and export."""
    odd = ["a\x00b", "😀\u200d👩\u2028\u2029\x85", "\u202eevil\u202c", "é" * LIMIT, '"}]}\\']
    cid = ""
    sent = []
    for text in odd:
        cid, answer = person.api.predict(text, cid, "", api_name="/chat")
        sent += [("user", text.strip()), ("assistant", answer)]
    assert_reads_back(person, cid, sent)
