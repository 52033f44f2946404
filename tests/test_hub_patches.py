"""`chat.hub_patches`: Parlor reads streamed chat lines as huggingface_hub itself does.

Each line below is run through the hub's own reader and through Parlor's: both skip the
same lines, end on the same line, raise the same errors, and give the same values for
every field of a chunk (the ones Parlor reads, and the others)."""

from __future__ import annotations

import json

import pytest
from test_endpoints import server, srv  # noqa: F401 - fixtures: the scripted server
from test_endpoints import test_timeout_before_the_response as before_the_response
from test_endpoints import test_timeout_mid_stream_keeps_the_start as mid_stream

from chat.hub_patches import HUB_READ_LINE, PATCHES, read_stream_line
from chat.patches import apply


def data(payload: object) -> str:
    return "data: " + json.dumps(payload)


CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
LINES = {
    "openai": data(
        {
            **CHUNK,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
            ],
        }
    ),
    "tgi": data(
        {
            **CHUNK,
            "system_fingerprint": "3.0-sha",
            "usage": None,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": " there"},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    ),
    "no content": data(
        {**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    ),
    "tool call": data(
        {
            **CHUNK,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    "finish_reason": None,
                }
            ],
        }
    ),
    "finish": data({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    "usage only": data(
        {
            **CHUNK,
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    ),
    "extra fields": data(
        {
            **CHUNK,
            "x_vendor": {"a": [1, {"b": 2}]},
            "choices": [{"index": 1, "delta": {"content": "é"}, "finish_reason": None, "x": 1}],
        }
    ),
    "no space": 'data:{"id": "c2", "choices": [{"index": 0, "delta": {"content": "tight"}}]}',
    "capitalised": 'data: {"ID": "c3", "Choices": [{"Index": 0, "Delta": {"Content": "Up"}}]}',
    "blank": "",
    "comment": ": keep-alive",
    "done": "data: [DONE]",
    "done, no space": "data:[DONE]",
    "overloaded": data({"error": "Model is overloaded", "error_type": "overloaded"}),
    "generation error": data({"error": "CUDA out of memory", "error_type": "generation"}),
    "untyped error": data({"error": "something"}),
    "not an object": "data: [1, 2]",
    "broken json": "data: {not json",
}


def plain(value: object) -> object:
    """A chunk's fields (read as attributes, as Parlor does), as plain JSON data."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if v is not None}
    if isinstance(value, dict):  # a field the hub left as it came (no type of its own)
        return {k: plain(v) for k, v in value.items() if v is not None}
    return value


def outcome(read, line: str) -> tuple[str, object]:
    try:
        chunk = read(line)
    except BaseException as e:  # StopIteration included: the stream's end
        return "raised", (type(e), str(e))
    if chunk is None:
        return "skipped", None
    first = chunk.choices[0] if chunk.choices else None
    parlor_reads = (first.delta.content, first.delta.role, first.finish_reason) if first else None
    return "chunk", (parlor_reads, plain(chunk))


@pytest.mark.parametrize("name", LINES)
def test_parlor_reads_a_stream_line_as_the_hub_does(name):
    line = LINES[name]
    assert outcome(read_stream_line, line) == outcome(HUB_READ_LINE, line)


def test_a_field_the_server_did_not_send_reads_as_none():
    chunk = read_stream_line(LINES["no content"])
    assert chunk.choices[0].delta.content is None
    assert chunk.usage is None and chunk.system_fingerprint is None


@pytest.fixture
def hub_patched() -> None:
    """The hub's HTTP stack as the app runs it (on the versions the patches were written for)."""
    assert [p.name for p in apply(PATCHES, enabled=True)] == [p.name for p in PATCHES]


def test_a_silent_model_still_times_out_through_parlors_reads(hub_patched, srv):  # noqa: F811
    before_the_response(srv)
    mid_stream(srv)
