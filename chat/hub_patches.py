"""Changes to huggingface_hub's streaming chat, found with py-spy (docs/performance.md).

`AsyncInferenceClient.chat_completion(stream=True)` turns each line of the stream into
nested `ChatCompletionStreamOutput` dataclasses that are also dicts, each of which copies
itself into its dict with `dataclasses.asdict` (`inference/_generated/types/base.py`,
`BaseInferenceType.parse_obj` and `__post_init__`): 90-110 µs per token on this machine, a
quarter of Parlor's server CPU per streamed token, where reading the JSON takes 5 µs.

`lean_stream_chunks` replaces the function that reads one line of that stream
(`inference/_common.py`, `_format_chat_completion_stream_output`) with one that reads it the
same way (a line that is not `data:` is skipped, `data: [DONE]` ends the stream, an
`{"error"}` event raises the hub's own exception for it, a payload that is not a JSON object
raises `AttributeError`) into light objects: the payload's fields as attributes (names
normalised as the hub does them: lower case, `_` for `-`), nested the same way
(`chunk.choices[0].delta.content`), a field the server did not send reading as None, as it
does in the hub's types. The request, its headers and its errors stay the hub's. Only
Parlor uses the client in its process, and it reads nothing else of a chunk.

`asyncio_read_timeouts` times each read of the hub's HTTP stack (httpcore2, used by nothing
else in Parlor) with `asyncio.timeout` instead of `anyio.fail_after`.

Each applies on the versions it was written for only (`PATCHES`, `chat.patches`); what would
make it unnecessary upstream is in docs/upstream.md.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import anyio
from httpcore2 import ReadError, ReadTimeout
from httpcore2._backends.anyio import AnyIOStream
from httpcore2._exceptions import map_exceptions
from huggingface_hub.inference import _common
from huggingface_hub.inference._generated.types.base import normalize_key

from .patches import Patch, exact_version

HUB_READ_LINE = _common._format_chat_completion_stream_output  # the hub's own, kept for tests


class Fields(SimpleNamespace):
    """A JSON object's fields as attributes; one it does not hold reads as None."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(name)
        return None


def _fields(value: Any) -> Any:
    if isinstance(value, dict):
        return Fields(**{normalize_key(key): _fields(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_fields(item) for item in value]
    return value


def read_stream_line(line: str) -> Fields | None:
    """One line of a streamed chat completion: a chunk, or None for a line without data."""
    if not line.startswith("data:"):
        return None
    if line.strip() == "data: [DONE]":
        raise StopIteration("[DONE] signal received.")
    payload = line.lstrip("data:").strip()  # noqa: B005 - the hub's own reading, kept
    data = json.loads(payload)
    if data.get("error") is not None:  # AttributeError, as in the hub, if not an object
        raise _common._parse_text_generation_error(data["error"], data.get("error_type"))
    return _fields(data)


def lean_stream_chunks() -> None:
    """Read streamed chat chunks with `read_stream_line`."""
    _common._format_chat_completion_stream_output = read_stream_line


# As httpcore2's own AnyIOStream.read maps them.
_READ_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: ReadTimeout,
    anyio.BrokenResourceError: ReadError,
    anyio.ClosedResourceError: ReadError,
    anyio.EndOfStream: ReadError,
}


async def _read(self: AnyIOStream, max_bytes: int, timeout: float | None = None) -> bytes:
    with map_exceptions(_READ_ERRORS):
        async with asyncio.timeout(timeout):
            try:
                return await self._stream.receive(max_bytes=max_bytes)
            except anyio.EndOfStream:
                return b""


def asyncio_read_timeouts() -> None:
    """Time each read of a model's stream with `asyncio.timeout`.

    httpcore2 reads every chunk of a response inside `anyio.fail_after`
    (`httpcore2/_backends/anyio.py`, `AnyIOStream.read`): a cancel scope that looks up the
    running async library, the current task and a timer each time, about a fifth of the
    server's GIL time in py-spy when 200 answers stream at 10 tokens/s each (one read per
    token). Parlor runs on asyncio only (uvicorn), where `asyncio.timeout` does the same
    job in a fraction of that. A read that times out still raises httpcore2's ReadTimeout,
    which the hub and `chat.endpoints` report as before; a cancelled task is still
    cancelled."""
    AnyIOStream.read = _read  # type: ignore[method-assign]


PATCHES = [
    Patch(
        "lean_stream_chunks",
        lean_stream_chunks,
        exact_version(huggingface_hub="2.4.0"),
        "huggingface_hub: an option to stream chat chunks as plain dicts",
    ),
    Patch(
        "asyncio_read_timeouts",
        asyncio_read_timeouts,
        exact_version(httpcore2="2.16.2"),
        "httpcore2: time reads with asyncio.timeout when the loop is asyncio's",
    ),
]
