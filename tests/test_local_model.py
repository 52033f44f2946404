"""The embedded model's process: what it may see of the app's environment, and the real
model continuing a partial answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from chat.catalog import Model, parse_catalog
from chat.endpoints import Endpoints, Finish, LocalTarget
from chat.local_model import LocalModel, child_environment


def test_child_environment_keeps_what_python_and_llama_cpp_need_and_no_secret():
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/opt/lib",
        "VIRTUAL_ENV": "/venv",
        "OMP_NUM_THREADS": "1",
        "LLAMA_CPP_LIB_PATH": "/opt/llama",
        "HF_TOKEN": "hf_secret",
        "PARLOR_SECRET": "signing",
        "OAUTH_CLIENT_SECRET": "oauth",
        "TEAM_KEY": "team",
        "LLAMA_API_KEY": "looks-like-llama-but-is-a-key",
        "PYTHON_KEYRING_PASSWORD": "hidden",
    }
    child = child_environment(environ, "local-token")
    assert child == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/opt/lib",
        "VIRTUAL_ENV": "/venv",
        "OMP_NUM_THREADS": "1",
        "LLAMA_CPP_LIB_PATH": "/opt/llama",
        "PARLOR_LOCAL_TOKEN": "local-token",
    }


@pytest.fixture(scope="module")
def embedded() -> Iterator[Endpoints]:
    """The real embedded model in its own process, reached as the app reaches it."""
    local = LocalModel()
    local.start()
    try:
        assert local.wait_ready(), local.failed
        yield Endpoints(environ={}, local=lambda: LocalTarget(local.base_url, local.token))
    finally:
        local.stop()


def greedy(max_tokens: int) -> Model:
    """The embedded model, always picking its likeliest token: the same text every run."""
    raw = {
        "id": "smol",
        "name": "SmolLM2",
        "parameters": {"temperature": 0, "max_tokens": max_tokens},
        "endpoints": [{"type": "local"}],
    }
    return parse_catalog({"models": [raw]}).models[0]


def answer(endpoints: Endpoints, model: Model, messages: list[dict]) -> tuple[str, str]:
    """The text streamed, and why the model stopped."""

    async def run() -> list[str]:
        return [piece async for piece in endpoints.stream(model, messages)]

    pieces = asyncio.run(run())
    assert isinstance(pieces[-1], Finish), "the stream ends with its finish reason"
    return "".join(pieces), pieces[-1].reason


def test_the_embedded_model_continues_a_partial_answer_where_it_ended(embedded):
    """Asked to count, with "1, 2, 3, 4," already written and the token limit reached soon,
    the model goes on from 5, in the same message, rather than starting a new answer."""
    counting = [
        {"role": "user", "content": "Count from 1 to 20, separated by commas."},
        {"role": "assistant", "content": "1, 2, 3, 4,"},
    ]
    text, reason = answer(embedded, greedy(12), counting)
    assert re.match(r"\s*5, 6, 7\b", text), f"not a continuation: {text[:40]!r}"
    assert reason == "length"


def test_a_continued_answer_ends_where_the_model_ends_it(embedded):
    france = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is"},
    ]
    text, reason = answer(embedded, greedy(100), france)
    assert text.lstrip().startswith("Paris"), f"not a continuation: {text[:40]!r}"
    assert reason == "stop"
