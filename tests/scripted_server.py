"""A scripted OpenAI-compatible (and TGI Messages-API) chat server for tests.

The only stand-in allowed in the test suite: a real HTTP server on 127.0.0.1 that tests steer
to get exact streams and to inject faults.

    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["Hi", "!"], delay=0.1)
        srv.script_model("other", "status", status=503, headers={"Retry-After": "30"})
        ...  # AsyncInferenceClient(base_url=srv.base_url, api_key="k") or TGI at srv.tgi_url
        assert srv.requests[-1]["body"]["messages"][-1]["content"] == "hello"

Scenarios (options): tokens (tokens, delay), echo (delay), status (status, body, headers),
cut (tokens, after, delay), malformed, slow (tokens, delay=0.5), empty, error_event (tokens,
error, error_type: the tokens, then an `{"error", "error_type"}` event as TGI sends one).
Every scenario also takes first_delay: seconds to wait before the response headers are sent,
and, for the streaming ones:
- reasoning: a thinking model's reasoning, as tokens sent before the answer's, in the
  form reasoning_form names: "field" (default: each in the delta's `reasoning_field`,
  "reasoning_content" as vLLM and DeepSeek send it, or "reasoning" as gpt-oss and the HF router
  do) or "think" (in the content, between a "<think>" chunk and a "</think>\n\n" one);
- finish: the last chunk's finish_reason ("stop" by default; "length"...; None: no
  finish_reason is sent at all).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from loopback import LoopbackServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_TOKENS = ["Hello", ",", " world", "!"]
SCENARIOS = {"tokens", "echo", "status", "cut", "malformed", "slow", "empty", "error_event"}
Script = tuple[str, dict[str, Any]]


def _sse(data: dict[str, Any] | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content") or ""
            if isinstance(content, list):  # multimodal parts: keep the text ones
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""


def _reasoning_deltas(opts: dict[str, Any]) -> list[dict[str, str]]:
    """The deltas carrying the `reasoning` option's tokens, in `reasoning_form`."""
    tokens = list(opts.get("reasoning") or ())
    if not tokens:
        return []
    if opts.get("reasoning_form") == "think":
        return [{"content": t} for t in ["<think>", *tokens, "</think>\n\n"]]
    return [{opts.get("reasoning_field", "reasoning_content"): t} for t in tokens]


class ScriptedServer(LoopbackServer):
    """Serves `POST /v1/chat/completions` and `GET /health` from a background thread."""

    name = "scripted server"  # `requests`: {"path", "headers" (lower-case keys), "body"}

    def __init__(self) -> None:
        self._default: Script = ("tokens", {})
        self._by_model: dict[str, Script] = {}
        self._count = 0
        routes = [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/health", self._health, methods=["GET"]),
        ]
        super().__init__(routes)

    # -- steering -------------------------------------------------------------------------

    def script(self, scenario: str, **options: Any) -> None:
        """What the next requests get (for any model without its own script), until changed."""
        self._default = self._check(scenario, options)

    def script_model(self, model: str, scenario: str, **options: Any) -> None:
        """What requests whose body "model" equals `model` get, until changed."""
        self._by_model[model] = self._check(scenario, options)

    @staticmethod
    def _check(scenario: str, options: dict[str, Any]) -> Script:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; one of {sorted(SCENARIOS)}")
        if options.get("reasoning_form", "field") not in ("field", "think"):
            raise ValueError("reasoning_form is 'field' or 'think'")
        return scenario, dict(options)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def tgi_url(self) -> str:
        return self.url

    @property
    def base_url(self) -> str:
        return f"{self.tgi_url}/v1"

    def _before_exit(self) -> None:
        self._close()  # streams still open end as a client disconnect would, without errors

    # -- serving --------------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        self._record(request, None)
        return JSONResponse({"status": "ok"})

    def _record(self, request: Request, body: Any) -> dict[str, Any]:
        entry = {"path": request.url.path, "headers": dict(request.headers), "body": body}
        self._remember(entry)
        return entry

    def _close(self, client: tuple[Any, ...] | None = None) -> None:
        """Close `client`'s connection (or all) abruptly, as a broken network would."""
        for conn in list(self._server.server_state.connections):
            if client is None or getattr(conn, "client", None) == client:
                conn.transport.close()  # type: ignore[attr-defined]

    async def _chat(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        entry = self._record(request, body)
        body = body if isinstance(body, dict) else {}
        scenario, opts = self._by_model.get(body.get("model"), self._default)
        await asyncio.sleep(float(opts.get("first_delay", 0)))
        if scenario == "status":
            status = int(opts.get("status", 500))
            detail = opts.get("body", {"error": f"scripted HTTP {status}"})
            content = detail if isinstance(detail, dict) else {"error": str(detail)}
            return JSONResponse(content, status_code=status, headers=opts.get("headers"))
        tokens = list(opts.get("tokens", DEFAULT_TOKENS))
        if scenario == "echo":
            tokens = re.findall(r"\s*\S+\s*|\s+", _last_user_text(body))
        elif scenario == "empty":
            tokens = []
        with self._lock:
            self._count += 1
            meta = {"id": f"chatcmpl-scripted-{self._count}", "created": int(time.time())}
        meta["model"] = str(body.get("model") or "scripted")
        client = tuple(request.scope.get("client") or ())
        if not body.get("stream"):
            if scenario == "cut":
                self._close(client)
                return Response(status_code=204)
            if scenario == "malformed":
                return Response("{not json", media_type="application/json")
            message: dict[str, str] = {"role": "assistant"}
            for delta in _reasoning_deltas(opts) + [{"content": t} for t in tokens]:
                for key, text in delta.items():  # the deltas, added up
                    message[key] = message.get(key, "") + text
            choice = {"index": 0, "finish_reason": opts.get("finish", "stop"), "message": message}
            return JSONResponse({**meta, "object": "chat.completion", "choices": [choice]})
        after = int(opts.get("after", 1)) if scenario == "cut" else len(tokens)
        delay = float(opts.get("delay", 0.5 if scenario == "slow" else 0))
        error = (opts.get("error", "scripted error"), opts.get("error_type", "generation"))
        deltas = _reasoning_deltas(opts) + [{"content": t} for t in tokens[:after]]
        end = (opts.get("finish", "stop"), error)
        stream = self._stream(scenario, deltas, meta, delay, client, end)
        headers = {"cache-control": "no-cache"}
        watched = self._watched(stream, entry)
        return StreamingResponse(watched, media_type="text/event-stream", headers=headers)

    async def _watched(
        self, stream: AsyncIterator[bytes], entry: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """`stream`, its request logged with "hung_up": True if the client closes it early
        (as a stopped answer's request must be)."""
        try:
            async for event in stream:
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            with self._lock:
                entry["hung_up"] = True
            raise

    async def _stream(
        self,
        scenario: str,
        deltas: list[dict[str, str]],
        meta: dict[str, Any],
        delay: float,
        client: Any,
        end: tuple[str | None, tuple[str, str]],
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _sse({**meta, "object": "chat.completion.chunk", "choices": [choice]})

        start = time.monotonic()
        finish, error = end
        for number, delta in enumerate(deltas[:1] if scenario == "malformed" else deltas):
            if number and delay:
                # Token n leaves at start + n × delay: a loaded loop's oversleeps do not add
                # up. A client going away cancels us here, quietly.
                await asyncio.sleep(max(0.0, start + number * delay - time.monotonic()))
            yield chunk({"role": "assistant", **delta})
        if scenario == "cut":
            self._close(client)
            return
        if scenario == "error_event":
            yield _sse({"error": error[0], "error_type": error[1]})
            return
        if scenario == "malformed":
            yield b"data: {not json\n\n"
        elif finish is not None:
            yield chunk({}, finish)
        yield _sse("[DONE]")


def scripted_catalog(root: Path, srv: ScriptedServer, names: list[str]) -> Path:
    """A models.yaml in `root` with a model for each of `names`, served by `srv` (as an
    `openai` endpoint whose served model is that name: `srv.script_model(name, ...)`)."""
    models = [
        {
            "id": name,
            "name": f"Scripted {name}",
            "parameters": {"max_tokens": 64},
            "endpoints": [{"type": "openai", "base_url": srv.base_url, "model": name}],
        }
        for name in names
    ]
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


def echo_catalog(root: Path, srv: ScriptedServer) -> Path:
    """A models.yaml in `root` with one model: `srv`'s echo, as an `openai` endpoint."""
    return scripted_catalog(root, srv, ["echo"])
