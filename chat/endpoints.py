"""Streaming from model endpoints through `huggingface_hub.AsyncInferenceClient`.

Every endpoint type (the embedded model included) is reached through the same client. Each
request spreads over a model's endpoints by weight; a failure before the first token (server
unreachable, timeout, overloaded) moves on to the next endpoint. Everything that can go wrong
becomes a `ChatError` whose message is fit for the person chatting; details go to the log,
never the message text.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import httpx2 as httpx  # the HTTP client huggingface_hub 2.x is built on
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

from .catalog import Endpoint, Model, endpoint_available, endpoint_token

log = logging.getLogger("parlor.endpoints")

REQUEST_TIMEOUT = 120.0  # seconds without a byte from the server before we give up


class ChatError(Exception):
    """A model request failed; `str(error)` is the message shown to the person."""

    def __init__(self, message: str, *, kind: str, failover: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.failover = failover  # worth trying another endpoint (before the first token)


@dataclass(frozen=True)
class LocalTarget:
    """Where the embedded model listens, once it is ready."""

    base_url: str
    token: str


def _retry_after(response: httpx.Response | None) -> str:
    value = response.headers.get("retry-after", "") if response is not None else ""
    return f" Try again in {int(value)} seconds." if value.isdigit() else " Try again in a minute."


def _from_http(status: int, response: httpx.Response | None) -> ChatError:
    if status in (401, 403):
        return ChatError(
            f"The model's server refused our credentials (HTTP {status}). "
            "The person running this Parlor needs to check the endpoint's token.",
            kind="auth",
        )
    if status == 404:
        return ChatError(
            "The model's server does not know this model (HTTP 404). It may have been "
            "renamed or removed.",
            kind="not_found",
        )
    if status == 429:
        return ChatError(
            "This model is receiving too many requests right now." + _retry_after(response),
            kind="rate_limited",
            failover=True,
        )
    if status in (502, 503, 504):
        return ChatError(
            f"The model is overloaded or still loading (HTTP {status})." + _retry_after(response),
            kind="unavailable",
            failover=True,
        )
    if status == 400 or status == 413 or status == 422:
        return ChatError(
            f"The model's server rejected the request (HTTP {status}).", kind="bad_request"
        )
    return ChatError(
        f"The model's server failed (HTTP {status}). Try again in a moment.",
        kind="server_error",
        failover=status >= 500,
    )


def to_chat_error(error: BaseException, *, started: bool) -> ChatError:
    """Translate whatever the client raised into a `ChatError`."""
    if isinstance(error, ChatError):
        return error
    if isinstance(error, HfHubHTTPError):
        response = getattr(error, "response", None)
        status = response.status_code if response is not None else 0
        return _from_http(status, response)
    if isinstance(error, InferenceTimeoutError | httpx.TimeoutException | TimeoutError):
        return ChatError(
            "The model took too long to answer."
            + (" The answer so far is kept." if started else ""),
            kind="timeout",
            failover=not started,
        )
    if isinstance(error, httpx.ConnectError | ConnectionRefusedError):
        return ChatError(
            "Could not reach the model's server. It may be down; try again later.",
            kind="unreachable",
            failover=True,
        )
    if isinstance(error, httpx.TransportError | ConnectionError):
        return ChatError(
            "The connection to the model broke"
            + (" in the middle of the answer; what arrived is kept." if started else "."),
            kind="stream_cut",
            failover=not started,
        )
    if isinstance(error, json.JSONDecodeError | ValueError | KeyError | TypeError | AttributeError):
        return ChatError("The model's server sent a reply we could not read.", kind="malformed")
    return ChatError("The model failed to answer. Try again in a moment.", kind="unknown")


class Endpoints:
    """Opens streams to the endpoints of catalog models."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        local: Callable[[], LocalTarget | None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self._environ = dict(environ)
        self._local = local
        self._rng = rng or random.Random()

    def usable(self, endpoint: Endpoint) -> bool:
        if endpoint.type == "local":
            return self._local() is not None
        return endpoint_available(endpoint, self._environ)

    def available(self, model: Model) -> bool:
        return model.retired is None and any(self.usable(e) for e in model.endpoints)

    def order(self, model: Model) -> list[Endpoint]:
        """The usable endpoints, in a random order weighted by `weight` (no repeats)."""
        pool = [e for e in model.endpoints if self.usable(e)]
        ordered = []
        while pool:
            pick = self._rng.choices(range(len(pool)), weights=[e.weight for e in pool])[0]
            ordered.append(pool.pop(pick))
        return ordered

    def _client(self, endpoint: Endpoint, model: Model) -> tuple[AsyncInferenceClient, str | None]:
        """A client for one endpoint, with its own token only (never the server's by default)."""
        token = endpoint_token(endpoint, self._environ)
        if endpoint.type == "local":
            target = self._local()
            if target is None:
                raise ChatError(
                    "The embedded model is still starting. Try again in a moment.",
                    kind="unavailable",
                )
            return AsyncInferenceClient(
                base_url=target.base_url, api_key=target.token, timeout=REQUEST_TIMEOUT
            ), None
        if endpoint.type == "hf":
            client = AsyncInferenceClient(
                provider=endpoint.provider, api_key=token, timeout=REQUEST_TIMEOUT
            )
            return client, endpoint.model or model.id
        base_url = endpoint.url.rstrip("/") + "/v1" if endpoint.type == "tgi" else endpoint.base_url
        # With no api_key the client would send the machine's own HF token to this server;
        # it accepts no `False`, so an explicit placeholder stands in for "no token".
        client = AsyncInferenceClient(
            base_url=base_url, api_key=token or "none", timeout=REQUEST_TIMEOUT
        )
        served = endpoint.model if endpoint.type == "openai" else None
        return client, served or (model.id if endpoint.type == "openai" else "tgi")

    async def stream(self, model: Model, messages: list[dict]) -> AsyncIterator[str]:
        """Yield the answer's text pieces; raise `ChatError` when it cannot be had."""
        endpoints = self.order(model)
        if not endpoints:
            raise ChatError(
                f"{model.name} is not available on this server right now.", kind="unavailable"
            )
        params = model.parameters.model_dump(exclude_none=True)
        if not params.get("stop"):
            params.pop("stop", None)
        last: ChatError | None = None
        for number, endpoint in enumerate(endpoints):
            started = False
            try:
                client, served = self._client(endpoint, model)
                async with client:
                    response = await client.chat_completion(
                        messages, model=served, stream=True, **params
                    )
                    async for chunk in response:
                        if not chunk.choices:
                            continue
                        piece = chunk.choices[0].delta.content
                        if piece:
                            started = True
                            yield piece
                return
            except Exception as e:
                error = to_chat_error(e, started=started)
                log.warning(
                    "model %s endpoint #%d (%s) failed: %s (%s)",
                    model.id,
                    number,
                    endpoint.type,
                    error.kind,
                    type(e).__name__,
                )
                if started or not error.failover:
                    raise error from None
                last = error
        assert last is not None
        raise last
