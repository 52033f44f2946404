"""Imports within limits (size, conversations, messages, lengths) and at a cost linear in
their size: in the service, and through the launched app's `/import` and upload."""

from __future__ import annotations

import json

import httpx
import pytest
from apprunner import RunningApp
from gradio_client import Client
from store_seams import CountingHistory, count_writes

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService, ServiceError
from chat.settings import ImportLimits

LIMITS = ImportLimits(
    max_bytes=20_000, conversations=3, messages=4, message_chars=100, answer_chars=200
)
# The same limits as the app's settings (0.02 MB: 20,971 bytes).
LIMITS_ENV = {
    "PARLOR_MAX_IMPORT_MB": "0.02",
    "PARLOR_MAX_IMPORT_CONVERSATIONS": "3",
    "PARLOR_MAX_IMPORT_MESSAGES": "4",
    "PARLOR_MAX_MESSAGE_CHARS": "100",
    "PARLOR_MAX_ANSWER_CHARS": "200",
}
ME = Owner(id="anon:" + "5" * 40, kind="anonymous")


def document(
    conversations: int = 1,
    messages: int = 2,
    question: str = "Hello?",
    answer: str = "Hi.",
    title: str = "A title",
    **extra: str,
) -> str:
    """An export of `conversations` conversations of `messages` messages each."""
    return json.dumps(
        {
            "format": "parlor-export",
            "version": 1,
            **extra,  # fields a later version may add: ignored, but they count in the size
            "conversations": [
                {
                    "id": f"{n + 1:032x}",
                    "title": title,
                    "model": "m",
                    "created_at": "2026-01-01T00:00:00+00:00",
                    "updated_at": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
                    "messages": [
                        {"role": "user", "content": question}
                        if i % 2 == 0
                        else {"role": "assistant", "content": answer}
                        for i in range(messages)
                    ],
                }
                for n in range(conversations)
            ],
        }
    )


TOO_MUCH = [
    pytest.param(document(padding="x" * 30_000), "too large to import", id="size"),
    pytest.param(
        document(conversations=4), "holds 4 conversations; an import may hold up to 3", id="count"
    ),
    pytest.param(
        document(messages=5), "holds 5 messages; the limit is 4 a conversation", id="messages"
    ),
    pytest.param(
        document(question="q" * 101), "a message of 101 characters; the limit is 100", id="message"
    ),
    pytest.param(
        document(answer="a" * 201), "an answer of 201 characters; the limit is 200", id="answer"
    ),
    pytest.param(
        document(title="t" * 201), "a title of 201 characters; the limit is 200", id="title"
    ),
]
WITHIN = document(
    conversations=3, messages=4, question="q" * 100, answer="a" * 200, title="t" * 200
)


def service(history: History, limits: ImportLimits | None = None) -> ChatService:
    endpoint = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    catalog = parse_catalog({"models": [{"id": "m", "name": "M", "endpoints": [endpoint]}]})
    options = {"import_limits": limits} if limits else {}
    return ChatService(
        catalog=catalog,
        history=history,
        endpoints=Endpoints(environ={}),
        max_message_chars=LIMITS.message_chars,
        frame_seconds=0,
        **options,
    )


@pytest.mark.parametrize(("data", "reason"), TOO_MUCH)
def test_a_document_past_a_limit_is_refused_saying_which(tmp_path, data, reason):
    chat = service(History(tmp_path), LIMITS)
    with pytest.raises(ServiceError, match=reason):
        chat.import_data(ME, data)
    assert chat.conversations(ME) == [], "nothing of it is stored"


def test_a_document_at_the_limits_is_imported_whole(tmp_path):
    chat = service(History(tmp_path), LIMITS)
    assert chat.import_data(ME, WITHIN) == 3
    conv = chat.conversation(ME, f"{1:032x}")
    assert conv["title"] == "t" * 200
    assert [m["content"] for m in conv["messages"]] == ["q" * 100, "a" * 200] * 2


@pytest.mark.parametrize("count", [10, 300])
def test_an_import_writes_the_index_once_whatever_its_size(tmp_path, monkeypatch, count):
    """Importing N conversations cost ~N²: each older one made the owner's listing be read
    again, and the index was rewritten every 32 (1,000 took 5.7 s)."""
    history = CountingHistory(tmp_path)
    chat = service(history)
    chat.conversations(ME)  # the page lists them first
    writes = count_writes(monkeypatch)
    reads = history.listing_reads
    assert chat.import_data(ME, document(conversations=count)) == count
    assert writes["index.json"] == 1
    assert history.listing_reads - reads <= 1
    listed = chat.conversations(ME)
    assert len(listed) == count and listed[0]["id"] == f"{count:032x}", "newest first"
    assert history.listing_reads - reads <= 1, "listed from memory once read again"


# -- through the launched app ------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """The app with small import limits (and a model it never needs to reach)."""
    root = tmp_path_factory.mktemp("limited")
    models = root / "models.yaml"
    models.write_text(
        "models:\n  - id: m\n    name: M\n"
        "    endpoints: [{type: openai, base_url: 'http://127.0.0.1:9/v1', model: m}]\n"
    )
    env = {**LIMITS_ENV, "GRADIO_TEMP_DIR": str(root / "gradio")}
    running = RunningApp(root / "data", models=models, env=env).wait_ready()
    yield running
    running.stop()


@pytest.mark.parametrize(("data", "reason"), TOO_MUCH)
def test_the_api_refuses_a_document_past_a_limit_saying_which(limited, data, reason):
    c = Client(limited.url, verbose=False)
    with pytest.raises(Exception, match=reason):
        c.predict(data, api_name="/import")
    assert c.predict(api_name="/conversations") == []


def test_the_api_imports_a_document_at_the_limits(limited):
    c = Client(limited.url, verbose=False)
    assert c.predict(WITHIN, api_name="/import") == {"imported": 3}


def test_an_upload_past_the_size_limit_is_refused_before_it_is_stored(limited):
    """The page's import is an upload: Gradio refuses one past the limit (413) before it
    writes it to its cache, rather than after."""
    upload = f"{limited.url}gradio_api/upload"
    big = httpx.post(upload, files={"files": ("big.json", b"x" * 30_000)}, timeout=30)
    assert big.status_code == 413, big.text
    small = httpx.post(upload, files={"files": ("small.json", WITHIN.encode())}, timeout=30)
    assert small.status_code == 200, small.text


def test_a_request_body_far_past_the_import_limit_is_refused_unread(limited):
    """`/import` through Gradio's own API: a body far larger than any import could be is
    refused (413, saying why) before Gradio reads it into memory, whether it declares its
    length or streams without one; the app goes on serving."""
    call = f"{limited.url}gradio_api/call/import"
    huge = json.dumps({"data": [document(padding="x" * 2_000_000)]}).encode()
    declared = httpx.post(call, content=huge, headers={"content-type": "application/json"})
    assert declared.status_code == 413, declared.text
    assert "too large" in declared.text

    def chunks():
        for start in range(0, len(huge), 65_536):
            yield huge[start : start + 65_536]

    streamed = httpx.post(call, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code != 200, streamed.text
    client = Client(limited.url, verbose=False)
    assert client.predict(WITHIN, api_name="/import") == {"imported": 3}
