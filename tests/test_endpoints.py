"""`chat.endpoints.Endpoints` against the scripted OpenAI/TGI server: streams, reasoning,
finish reasons, every failure, weights, failover and which token goes where."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import random
import re
import socket
from collections import Counter
from collections.abc import Iterator

import httpx2
import huggingface_hub
import pytest
from huggingface_hub.errors import (
    GenerationError,
    OfflineModeIsEnabled,
    OverloadedError,
    ValidationError,
)
from huggingface_hub.inference import _common
from scripted_server import ScriptedServer

from chat.catalog import HFEndpoint, Model, parse_catalog
from chat.endpoints import ChatError, Endpoints, Finish, LocalTarget, Thought, to_chat_error
from chat.hub_patches import HUB_READ_LINE, read_stream_line

MESSAGES = [
    {"role": "system", "content": "You are a test."},
    {"role": "user", "content": "Say something."},
]
# What a person must never see in an error message.
LEAKS = ("Traceback", "Error(", "HfHubHTTPError", "httpx", "JSONDecodeError", "127.0.0.1", "None")


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def srv(server: ScriptedServer) -> ScriptedServer:
    server.script("tokens")
    server.clear()
    return server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 but not listening: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def model(*endpoints: dict, **fields) -> Model:
    raw = {"id": "test-model", "name": "Test model", "endpoints": list(endpoints), **fields}
    return parse_catalog({"models": [raw]}).models[0]


def openai(srv: ScriptedServer, served: str | None = None, **fields) -> dict:
    endpoint = {"type": "openai", "base_url": srv.base_url, **fields}
    return {**endpoint, "model": served} if served else endpoint


Outcome = tuple[list[str], ChatError | None]


async def drain(endpoints: Endpoints, m: Model, messages: list[dict] = MESSAGES) -> Outcome:
    """The pieces streamed, and the ChatError that ended the stream (if any)."""
    pieces: list[str] = []
    try:
        async for piece in endpoints.stream(m, messages):
            pieces.append(piece)
    except ChatError as e:
        return pieces, e
    return pieces, None


def collect(endpoints: Endpoints, m: Model, messages: list[dict] = MESSAGES) -> Outcome:
    return asyncio.run(drain(endpoints, m, messages))


def kinds(pieces: list[str]) -> list[tuple[str, str]]:
    """Each piece as (what it is, its text): "thought", "answer" or "finish:<reason>"."""
    named = {Thought: "thought", str: "answer"}
    return [
        (f"finish:{p.reason}" if isinstance(p, Finish) else named[type(p)], str(p)) for p in pieces
    ]


def answer(*texts: str) -> list[tuple[str, str]]:
    return [("answer", text) for text in texts]


def many(endpoints: Endpoints, m: Model, count: int) -> list[Outcome]:
    """`count` requests, 40 at a time."""

    async def run() -> list[Outcome]:
        results: list[Outcome] = []
        for start in range(0, count, 40):
            batch = [drain(endpoints, m) for _ in range(min(40, count - start))]
            results += await asyncio.gather(*batch)
        return results

    return asyncio.run(run())


def assert_clear(error: ChatError | None) -> str:
    assert error is not None, "the request should have failed"
    message = str(error)
    assert message.endswith("."), message
    for leak in LEAKS:
        assert leak not in message, f"{leak!r} in {message!r}"
    assert not re.search(r"\w(Error|Exception)\b", message), f"a class name in {message!r}"
    return message


# -- streams --------------------------------------------------------------------------------


def test_openai_streams_exact_tokens_with_served_name_and_parameters(srv):
    srv.script_model("served-exact", "tokens", tokens=["Zig", " zag", ",", " done."])
    m = model(
        openai(srv, "served-exact"),
        parameters={"temperature": 0.25, "max_tokens": 33, "top_p": 0.5, "stop": ["###"]},
    )
    pieces, error = collect(Endpoints(environ={}), m)
    assert error is None
    assert kinds(pieces) == [*answer("Zig", " zag", ",", " done."), ("finish:stop", "")]
    [request] = srv.requests
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "served-exact"
    assert body["messages"] == MESSAGES
    assert body["stream"] is True
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.25, 33, 0.5)
    assert body["stop"] == ["###"]


def test_openai_without_served_name_sends_the_model_id(srv):
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None and "".join(pieces) == "Hello, world!"
    assert srv.requests[-1]["body"]["model"] == "test-model"


def test_tgi_messages_api_streams(srv):
    srv.script("tokens", tokens=["T", "G", "I"])
    pieces, error = collect(Endpoints(environ={}), model({"type": "tgi", "url": srv.tgi_url}))
    assert error is None and kinds(pieces) == [*answer("T", "G", "I"), ("finish:stop", "")]
    [request] = srv.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] != "dummy"
    assert "stop" not in request["body"], "an empty stop list is not sent"


def test_embedded_endpoint_gets_its_own_token(srv):
    local = LocalTarget(srv.base_url, "local-only-token")
    m = model({"type": "local"})
    pieces, error = collect(Endpoints(environ={}, local=lambda: local), m)
    assert error is None and "".join(pieces) == "Hello, world!"
    assert srv.requests[-1]["headers"]["authorization"] == "Bearer local-only-token"


def test_embedded_model_not_ready_is_unavailable(srv):
    m = model({"type": "local"})
    endpoints = Endpoints(environ={})
    assert not endpoints.available(m)
    pieces, error = collect(endpoints, m)
    assert pieces == [] and error.kind == "unavailable"
    assert "not available" in assert_clear(error)
    assert srv.requests == []


# -- reasoning and finish reasons ----------------------------------------------------------


@pytest.fixture(params=["hub reader", "parlor reader"])
def reader(request, monkeypatch) -> None:
    """Chunks read by huggingface_hub's own types, or by Parlor's lean reader (as the app
    runs when its patches apply, chat.hub_patches)."""
    read = HUB_READ_LINE if request.param == "hub reader" else read_stream_line
    monkeypatch.setattr(_common, "_format_chat_completion_stream_output", read)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_sent_in_its_own_field_comes_as_thoughts_before_the_answer(srv, reader, field):
    # vLLM and DeepSeek send `reasoning_content`; gpt-oss and the HF router `reasoning`.
    srv.script("tokens", reasoning=["Two", " and two."], reasoning_field=field, tokens=["4", "."])
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None
    assert kinds(pieces) == [
        ("thought", "Two"),
        ("thought", " and two."),
        ("answer", "4"),
        ("answer", "."),
        ("finish:stop", ""),
    ]


def test_reasoning_between_think_tags_comes_as_thoughts(srv, reader):
    srv.script("tokens", reasoning=["Two", " and two."], reasoning_form="think", tokens=["4."])
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None
    assert kinds(pieces) == [
        ("thought", "Two"),
        ("thought", " and two."),
        ("answer", "4."),
        ("finish:stop", ""),
    ]


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (  # both tags split across chunks, after whitespace
            [" \n<thi", "nk>Let", " me see.</th", "ink>", "\n\nIt", " is 4."],
            [("thought", "Let"), ("thought", " me see."), ("answer", "It"), ("answer", " is 4.")],
        ),
        (  # the end tag and the answer in one chunk
            ["<think>", "Hmm<", "/think>It is 4."],
            [("thought", "Hmm"), ("answer", "It is 4.")],
        ),
        (  # a "<" in the reasoning that is no tag
            ["<think>a </b> <", "c</think>Done"],
            [("thought", "a </b> "), ("thought", "<c"), ("answer", "Done")],
        ),
        (  # not at the start of the answer: text like any other
            ["Write ", "<think>", " tags"],
            [("answer", "Write "), ("answer", "<think>"), ("answer", " tags")],
        ),
        (  # something else than a tag at the start
            ["<thin", "king> is not a tag"],
            [("answer", "<thinking> is not a tag")],
        ),
    ],
)
def test_think_tags_split_across_chunks(srv, tokens, expected):
    srv.script("tokens", tokens=tokens)
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None
    assert kinds(pieces) == [*expected, ("finish:stop", "")]


FINISHES = [({}, "stop"), ({"finish": "length"}, "length"), ({"finish": None}, "stop")]


@pytest.mark.parametrize(("options", "reason"), FINISHES)
def test_the_stream_ends_with_the_servers_finish_reason(srv, reader, options, reason):
    srv.script("tokens", tokens=["Cut", " short"], **options)
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None
    assert kinds(pieces) == [("answer", "Cut"), ("answer", " short"), (f"finish:{reason}", "")]


def test_continuing_an_answer_sends_it_last_as_it_is(srv):
    """An answer cut by the token limit, then continued: the partial answer is the last
    message sent, and the continuation streams with its own finish reason."""
    srv.script("tokens", tokens=["Once", " upon"], finish="length")
    first, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None and first[-1].reason == "length"
    partial = {"role": "assistant", "content": "".join(first)}
    srv.script("tokens", tokens=[" a", " time."])
    more, error = collect(Endpoints(environ={}), model(openai(srv)), [*MESSAGES, partial])
    assert error is None
    assert kinds(more) == [("answer", " a"), ("answer", " time."), ("finish:stop", "")]
    assert srv.requests[-1]["body"]["messages"] == [*MESSAGES, partial]


@pytest.mark.parametrize("form", ["field", "think"])
def test_an_answer_of_reasoning_only_is_not_empty(srv, reader, form):
    srv.script("tokens", reasoning=["Thinking", " on"], reasoning_form=form, tokens=[])
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None
    assert kinds(pieces) == [("thought", "Thinking"), ("thought", " on"), ("finish:stop", "")]


def test_a_think_never_closed_runs_to_the_end(srv):
    srv.script("tokens", tokens=["<think>", "Still", " thinking </thi"], finish="length")
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert error is None
    expected = [("thought", "Still"), ("thought", " thinking "), ("thought", "</thi")]
    assert kinds(pieces) == [*expected, ("finish:length", "")]


def test_a_thought_counts_as_the_start_of_the_answer(srv):
    """No failover once reasoning has arrived: the answer is not restarted elsewhere."""
    srv.script_model("thinks", "cut", reasoning=["Half a thought"], tokens=["never"], after=0)
    srv.script_model("spare", "tokens")
    m = model(openai(srv, "thinks", weight=1000), openai(srv, "spare", weight=0.001))
    pieces, error = collect(Endpoints(environ={}), m)
    assert kinds(pieces) == [("thought", "Half a thought")]
    assert error.kind == "stream_cut" and "kept" in assert_clear(error)
    assert [r["body"]["model"] for r in srv.requests] == ["thinks"]


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "options", "kind", "says"),
    [
        ("status", {"status": 401}, "auth", "check the endpoint's token"),
        ("status", {"status": 403}, "auth", "check the endpoint's token"),
        ("status", {"status": 404}, "not_found", "choose another model"),
        ("status", {"status": 429, "headers": {"Retry-After": "30"}}, "rate_limited", "30 seconds"),
        ("status", {"status": 429}, "rate_limited", "Try again in a minute."),
        ("status", {"status": 503}, "unavailable", "overloaded or still loading"),
        ("status", {"status": 503, "headers": {"Retry-After": "20"}}, "unavailable", "20 seconds"),
        ("status", {"status": 500}, "server_error", "Try again in a moment."),
        ("status", {"status": 400}, "bad_request", "start a new conversation"),
        ("status", {"status": 422}, "bad_request", "Try a shorter message"),
        ("cut", {"after": 0}, "stream_cut", "connection to the model broke"),
        ("empty", {}, "empty", "empty answer"),
    ],
)
def test_failure_before_the_first_token(srv, scenario, options, kind, says):
    srv.script(scenario, **options)
    pieces, error = collect(Endpoints(environ={}), model(openai(srv, "failing")))
    assert pieces == []
    assert error.kind == kind
    assert says in assert_clear(error)


def test_retry_after_as_a_date(srv):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5, seconds=10)
    srv.script("status", status=429, headers={"Retry-After": email.utils.format_datetime(when)})
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert pieces == [] and error.kind == "rate_limited"
    assert "Try again in 5 minutes." in assert_clear(error)


def test_connection_refused(closed_port):
    m = model({"type": "openai", "base_url": f"http://127.0.0.1:{closed_port}/v1"})
    pieces, error = collect(Endpoints(environ={}), m)
    assert pieces == [] and error.kind == "unreachable"
    assert "Could not reach the model's server" in assert_clear(error)


def test_stream_cut_mid_answer_raises_after_the_partial_answer(srv):
    srv.script("cut", tokens=["Part", "ial", " answer", " lost"], after=2)
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert pieces == ["Part", "ial"]
    assert error.kind == "stream_cut"
    message = assert_clear(error)
    assert "in the middle of the answer" in message and "kept" in message


def test_malformed_chunk_raises_after_what_was_readable(srv):
    srv.script("malformed", tokens=["Readable", " then garbage"])
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert pieces == ["Readable"]
    assert error.kind == "malformed"
    assert "could not read" in assert_clear(error)


def test_timeout_before_the_response(srv):
    srv.script("tokens", first_delay=3)
    pieces, error = collect(Endpoints(environ={}, timeout=0.3), model(openai(srv)))
    assert pieces == [] and error.kind == "timeout"
    assert "took too long" in assert_clear(error)


def test_timeout_mid_stream_keeps_the_start(srv):
    srv.script("slow", tokens=["First", " never"], delay=3)
    pieces, error = collect(Endpoints(environ={}, timeout=0.3), model(openai(srv)))
    assert pieces == ["First"]
    assert error.kind == "timeout"
    message = assert_clear(error)
    assert "took too long" in message and "kept" in message


@pytest.mark.parametrize(
    ("error_type", "kind", "says"),
    [
        ("overloaded", "unavailable", "overloaded"),
        ("generation", "server_error", "stopped with an error"),
    ],
)
def test_an_error_event_inside_the_stream_keeps_the_start(srv, error_type, kind, says):
    # TGI reports some failures as {"error", "error_type"} events inside a 200 stream.
    srv.script(
        "error_event", tokens=["Kept", " too"], error="CUDA out of memory", error_type=error_type
    )
    pieces, error = collect(Endpoints(environ={}), model(openai(srv)))
    assert pieces == ["Kept", " too"]
    assert error.kind == kind and not error.failover
    message = assert_clear(error)
    assert says in message and "kept" in message and "CUDA" not in message


def test_errors_sent_inside_the_stream_and_configuration_errors():
    # The client raises these classes for the error events TGI sends; map each directly.
    overloaded = to_chat_error(OverloadedError("busy"), started=False)
    assert overloaded.kind == "unavailable" and overloaded.failover
    assert to_chat_error(ValidationError("too long"), started=False).kind == "bad_request"
    midway = to_chat_error(GenerationError("CUDA"), started=True)
    assert midway.kind == "server_error" and not midway.failover and "kept" in str(midway)
    # A ValueError before any response is about the endpoint's setup, not an unreadable reply.
    setup = to_chat_error(ValueError("no provider serves this"), started=False, responded=False)
    assert setup.kind == "config" and "not set up correctly" in str(setup)
    for error in (overloaded, midway, setup):
        assert_clear(error)


# -- weights and failover -------------------------------------------------------------------


def test_requests_spread_by_weight(srv):
    m = model(openai(srv, "w-heavy", weight=3), openai(srv, "w-light", weight=1))
    results = many(Endpoints(environ={}, rng=random.Random(1234)), m, 400)
    assert all(error is None and "".join(p) == "Hello, world!" for p, error in results)
    counts = Counter(r["body"]["model"] for r in srv.requests)
    assert counts["w-heavy"] + counts["w-light"] == 400
    assert 260 <= counts["w-heavy"] <= 340, counts  # 300 expected; 4.6 standard deviations


def test_failover_when_a_server_refuses_connections(srv, closed_port, caplog):
    down = {"type": "openai", "base_url": f"http://127.0.0.1:{closed_port}/v1", "model": "down"}
    m = model(down, openai(srv, "up"))
    with caplog.at_level(logging.WARNING, logger="parlor.endpoints"):
        results = many(Endpoints(environ={}, rng=random.Random(7)), m, 40)
    assert [("".join(p), e) for p, e in results] == [("Hello, world!", None)] * 40
    assert len(srv.requests) == 40
    failovers = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert 5 <= len(failovers) <= 35, "the refusing endpoint was tried first some of the time"


def test_failover_on_503_before_the_first_token(srv):
    srv.script_model("busy", "status", status=503)
    srv.script_model("free", "tokens", tokens=["Fine"])
    m = model(openai(srv, "busy"), openai(srv, "free"))
    results = many(Endpoints(environ={}, rng=random.Random(3)), m, 40)
    assert [("".join(p), e) for p, e in results] == [("Fine", None)] * 40
    counts = Counter(r["body"]["model"] for r in srv.requests)
    assert counts["free"] == 40 and 5 <= counts["busy"] <= 35


def test_failover_on_timeout_before_the_first_token(srv):
    srv.script_model("stuck", "tokens", first_delay=3)
    srv.script_model("quick", "tokens", tokens=["Quick"])
    m = model(openai(srv, "stuck", weight=1000), openai(srv, "quick", weight=0.001))
    pieces, error = collect(Endpoints(environ={}, timeout=0.3), m)
    assert (kinds(pieces), error) == ([("answer", "Quick"), ("finish:stop", "")], None)
    assert [r["body"]["model"] for r in srv.requests] == ["stuck", "quick"]


def test_no_failover_after_the_first_token(srv):
    srv.script_model("cuts", "cut", tokens=["Half", " an", " answer"], after=2)
    srv.script_model("spare", "tokens")
    m = model(openai(srv, "cuts", weight=1000), openai(srv, "spare", weight=0.001))
    pieces, error = collect(Endpoints(environ={}), m)
    assert pieces == ["Half", " an"], "what arrived is handed over before the error"
    assert error.kind == "stream_cut"
    assert [r["body"]["model"] for r in srv.requests] == ["cuts"], "the answer is not restarted"


def test_every_endpoint_failing_reports_the_last_failure(srv, closed_port):
    srv.script_model("limited", "status", status=429, headers={"Retry-After": "9"})
    down = {"type": "openai", "base_url": f"http://127.0.0.1:{closed_port}/v1"}
    m = model(openai(srv, "limited", weight=1000), down | {"weight": 0.001})
    pieces, error = collect(Endpoints(environ={}), m)
    assert pieces == [] and error.kind == "unreachable"


# -- tokens ---------------------------------------------------------------------------------

ENVIRON = {"HF_TOKEN": "hf_server_secret", "TEAM_KEY": "team-secret"}


def test_each_endpoint_gets_its_own_token_and_never_the_servers(srv, monkeypatch):
    # The machine's HF token is also where huggingface_hub would look for it by itself.
    monkeypatch.setenv("HF_TOKEN", "hf_server_secret")
    endpoints = Endpoints(environ=ENVIRON)
    cases = {
        "team": openai(srv, "team", token_env="TEAM_KEY"),
        "open": openai(srv, "open"),
        "tgi": {"type": "tgi", "url": srv.tgi_url},
        "tgi-team": {"type": "tgi", "url": srv.tgi_url, "token_env": "TEAM_KEY"},
    }
    seen = {}
    for name, endpoint in cases.items():
        srv.clear()
        pieces, error = collect(endpoints, model(endpoint))
        assert error is None and "".join(pieces) == "Hello, world!", name
        [request] = srv.requests
        seen[name] = request
        assert not any("hf_server_secret" in v for v in request["headers"].values()), name
    assert seen["team"]["headers"]["authorization"] == "Bearer team-secret"
    assert seen["tgi-team"]["headers"]["authorization"] == "Bearer team-secret"
    assert "authorization" not in seen["open"]["headers"], "no token means no Authorization"
    assert "authorization" not in seen["tgi"]["headers"]
    assert seen["team"]["body"]["model"] == "team"
    assert seen["open"]["body"]["model"] == "open"
    assert seen["tgi"]["body"]["model"] != "dummy"


def test_endpoint_whose_token_is_missing_is_not_used(srv):
    m = model(openai(srv, "needs-key", token_env="MISSING_KEY"))
    endpoints = Endpoints(environ=ENVIRON)
    assert not endpoints.available(m)
    pieces, error = collect(endpoints, m)
    assert pieces == [] and error.kind == "unavailable"
    assert srv.requests == []


def test_the_servers_hf_token_goes_to_hugging_face_routes_only(srv, monkeypatch):
    """Past the catalog's check (a model built without it): a model given as a URL, or a key
    that is not an HF token (which huggingface_hub sends straight to the provider), is
    refused before anything is sent."""
    monkeypatch.setenv("HF_TOKEN", "hf_server_secret")
    hf = model({"type": "hf"})
    as_url = HFEndpoint.model_construct(type="hf", provider="auto", model=srv.base_url)
    for m in (
        hf.model_copy(update={"endpoints": [as_url]}),
        hf.model_copy(update={"id": srv.base_url}),
    ):
        pieces, error = collect(Endpoints(environ=ENVIRON), m)
        assert pieces == [] and error.kind == "config"
        assert "not a Hugging Face model id" in assert_clear(error)
    assert srv.requests == []
    endpoints = Endpoints(environ={"HF_TOKEN": "sk-a-provider-key"})
    assert not endpoints.available(hf)
    assert "not a Hugging Face token" in endpoints.why_unavailable(hf)


# -- offline mode (HF_HUB_OFFLINE) -----------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1, where huggingface_hub keeps it (read once, when it is imported)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_offline_mode_still_reaches_local_openai_and_tgi_servers(srv, offline):
    local = LocalTarget(srv.base_url, "local-only-token")
    endpoints = Endpoints(environ=ENVIRON, local=lambda: local)
    for endpoint in (
        openai(srv, "team", token_env="TEAM_KEY"),
        {"type": "tgi", "url": srv.tgi_url},
        {"type": "local"},
    ):
        srv.clear()
        pieces, error = collect(endpoints, model(endpoint))
        assert error is None and "".join(pieces) == "Hello, world!", (endpoint, error)
        assert len(srv.requests) == 1


def test_offline_mode_makes_hugging_face_endpoints_unavailable_and_says_why(srv, offline):
    endpoints = Endpoints(environ=ENVIRON)  # with the server's HF token
    routed = {"type": "openai", "base_url": "https://router.huggingface.co/v1"}
    for m in (model({"type": "hf"}), model(routed | {"token_env": "TEAM_KEY"})):
        assert not endpoints.available(m)
        assert "HF_HUB_OFFLINE" in endpoints.why_unavailable(m)
        pieces, error = collect(endpoints, m)
        assert pieces == [] and error.kind == "offline"
        assert "offline mode is on (HF_HUB_OFFLINE)" in assert_clear(error)
    # A model with another endpoint answers from it.
    pieces, error = collect(endpoints, model({"type": "hf", "weight": 1000}, openai(srv)))
    assert error is None and "".join(pieces) == "Hello, world!"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OfflineModeIsEnabled("Cannot reach http://127.0.0.1/: offline mode."), "offline"),
        (httpx2.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."), "config"),
        (ConnectionError("not a connection that broke"), "unknown"),
        (ConnectionResetError(104, "Connection reset by peer"), "stream_cut"),
        (httpx2.ReadError("peer closed"), "stream_cut"),
        (httpx2.RemoteProtocolError("incomplete chunked read"), "stream_cut"),
    ],
)
def test_only_a_broken_connection_is_reported_as_one(error, kind):
    for started in (False, True):
        chat_error = to_chat_error(error, started=started)
        assert chat_error.kind == kind
        assert ("connection" in assert_clear(chat_error)) == (kind == "stream_cut")
