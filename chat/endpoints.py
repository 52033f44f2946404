"""Streaming from model endpoints through `huggingface_hub.AsyncInferenceClient`.

Every endpoint type (the embedded model included) is reached through the same client. Each
request spreads over a model's endpoints by weight; a failure before the first token (server
unreachable, timeout, overloaded, rate limited, refused token...) moves on to the next
endpoint, a failure after it ends the answer (the caller keeps what arrived). Everything that
can go wrong becomes a `ChatError` whose message is fit for the person chatting; the kind of
failure goes to the log, never the message text.

A stream yields the answer as `str` pieces, a thinking model's reasoning as `Thought` pieces
(from a reasoning field or an inline `<think>`), and ends with one `Finish` naming why the
model stopped. A request whose last message is the assistant's asks to continue it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx  # the HTTP client huggingface_hub 2.x is built on
from huggingface_hub import (
    AsyncInferenceClient,
    constants,
    is_offline_mode,
    set_async_client_factory,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    InferenceTimeoutError,
    OfflineModeIsEnabled,
    OverloadedError,
    TextGenerationError,
)
from huggingface_hub.errors import ValidationError as RequestValidationError
from huggingface_hub.utils import get_async_session

from .catalog import Endpoint, Model, endpoint_available, endpoint_token, is_hub_model_id
from .identity import Owner
from .quota import HFAccess, own_token_message
from .settings import HF_DOMAINS

log = logging.getLogger("parlor.endpoints")

REQUEST_TIMEOUT = 120.0  # seconds without a byte from the server before we give up
CONNECT_TIMEOUT = 10.0  # seconds to open a connection: an unreachable server fails over fast


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


class Thought(str):
    """A piece of a thinking model's reasoning: shown apart, never part of the answer."""

    __slots__ = ()


class Finish(str):
    """The last piece of a stream: "" as text; `.reason` says why the model stopped
    ("stop", "length", ... as the server sent it; "stop" when it sent none)."""

    reason: str

    @classmethod
    def of(cls, reason: str | None) -> Finish:
        finish = cls()
        finish.reason = reason or "stop"
        return finish

    def __repr__(self) -> str:
        return f"Finish.of({self.reason!r})"


THINK, THOUGHT_END = "<think>", "</think>"


def _held_back(text: str, tag: str) -> int:
    """How many characters at the end of `text` may be the start of `tag` (split across
    chunks): they wait for the next chunk."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class InlineThinking:
    """Reasoning sent inside the content, between `<think>` and `</think>` (Qwen3, DeepSeek
    R1 behind servers without a reasoning parser).

    `<think>` counts only at the start of the answer (after whitespace); either tag may be
    split across chunks; a think never closed runs to the end. `feed` returns the pieces
    ready (`Thought` or answer `str`); once `answering`, the rest of the content is answer.
    """

    def __init__(self) -> None:
        self.held = ""  # content waiting for the next chunk to say what it is
        self.state = "start"  # start -> think -> after -> answer, or start -> answer
        self.answering = False

    def feed(self, text: str) -> list[str]:
        if self.state == "start":
            text, self.held = self.held + text, ""
            head = text.lstrip()
            if THINK.startswith(head):  # whitespace so far, or the beginning of "<think>"
                self.held = text
                return []
            if not head.startswith(THINK):
                return self._answer(text)
            self.state, text = "think", head[len(THINK) :]
        if self.state == "think":
            return self._think(text)
        return self._answer(text.lstrip())  # after "</think>": the answer, once it starts

    def _think(self, text: str) -> list[str]:
        text, self.held = self.held + text, ""
        end = text.find(THOUGHT_END)
        if end < 0:
            keep = _held_back(text, THOUGHT_END)
            self.held, text = text[len(text) - keep :], text[: len(text) - keep]
            return [Thought(text)] if text else []
        self.state = "after"
        thought, rest = text[:end], text[end + len(THOUGHT_END) :].lstrip()
        return ([Thought(thought)] if thought else []) + self._answer(rest)

    def _answer(self, text: str) -> list[str]:
        if not text:
            return []
        self.state, self.answering = "answer", True
        return [text]

    def end(self) -> list[str]:
        """What is still held when the stream ends: an unclosed think's last words, or an
        answer that was only whitespace (or "<thi")."""
        held, self.held = self.held, ""
        if not held:
            return []
        return [Thought(held)] if self.state == "think" else [held]


def _reasoning_and_start(delta: Any, content: str | None, inline: InlineThinking) -> list[str]:
    """The pieces of one chunk before the answer proper has begun: its reasoning field, then
    its content read for an inline `<think>`.

    huggingface_hub 2.4 types `delta.reasoning` (the name gpt-oss brought); DeepSeek, older
    vLLM and llama.cpp send `reasoning_content`, which the hub keeps as an extra attribute,
    present only when sent (Parlor's lean reader, chat.hub_patches, reads a missing field as
    None). Both are read with a default, so a hub without the `reasoning` field works too."""
    thought = getattr(delta, "reasoning", None) or getattr(delta, "reasoning_content", None)
    pieces: list[str] = [Thought(thought)] if thought else []
    return pieces + inline.feed(content) if content else pieces


def _retry_after(response: httpx.Response | None) -> str:
    """The "Try again in ..." sentence, from a `Retry-After` header (seconds or HTTP date)."""
    value = response.headers.get("retry-after", "").strip() if response is not None else ""
    seconds: int | None = None
    if value.isdigit():
        seconds = int(value)
    elif value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            seconds = max(0, round((when - dt.datetime.now(dt.UTC)).total_seconds()))
    if seconds is None:
        return " Try again in a minute."
    if seconds <= 1:
        return " Try again in a moment."
    if seconds < 120:
        return f" Try again in {seconds} seconds."
    if seconds < 7200:
        return f" Try again in {round(seconds / 60)} minutes."
    return f" Try again in {round(seconds / 3600)} hours."


def _from_http(status: int, response: httpx.Response | None) -> ChatError:
    # Before the first token every failure but a rejected request is worth another endpoint:
    # a bad token or a missing model is a property of one server, not of the conversation.
    if status in (401, 403):
        return ChatError(
            f"The model's server refused our credentials (HTTP {status}). "
            "The person running this Parlor needs to check the endpoint's token; "
            "meanwhile, choose another model.",
            kind="auth",
            failover=True,
        )
    if status == 404:
        return ChatError(
            "The model's server does not know this model (HTTP 404). It may have been "
            "renamed or removed: choose another model.",
            kind="not_found",
            failover=True,
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
    if status in (400, 413, 422):
        return ChatError(
            f"The model's server rejected the request (HTTP {status}). Try a shorter "
            "message, or start a new conversation.",
            kind="bad_request",
        )
    return ChatError(
        f"The model's server failed (HTTP {status}). Try again in a moment.",
        kind="server_error",
        failover=True,
    )


OFFLINE = "offline mode is on (HF_HUB_OFFLINE), and Hugging Face's servers need the network"
# Failures of the connection itself: the only ones reported as "the connection broke".
BROKEN = (
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


def to_chat_error(error: BaseException, *, started: bool, responded: bool = True) -> ChatError:
    """Translate whatever the client raised into a `ChatError`.

    `started`: part of the answer was already yielded (no failover then: it would start over).
    `responded`: the server had answered with a stream (a `ValueError` before that is ours or
    the client library's, about the endpoint's configuration, not an unreadable reply).
    """
    kept = " What arrived is kept; send your message again for a full answer." if started else ""
    if isinstance(error, ChatError):
        return error
    if isinstance(error, HfHubHTTPError):
        response = getattr(error, "response", None)
        status = response.status_code if response is not None else 0
        return _from_http(status, response)
    if isinstance(error, InferenceTimeoutError | httpx.TimeoutException | TimeoutError):
        return ChatError(
            "The model took too long to answer." + (kept or " Try again in a moment."),
            kind="timeout",
            failover=not started,
        )
    if isinstance(error, OfflineModeIsEnabled):  # a ConnectionError, but nothing broke
        return ChatError(
            f"This model cannot be reached: {OFFLINE}. Choose another model.",
            kind="offline",
            failover=True,
        )
    if isinstance(error, httpx.ConnectError | httpx.ProxyError | ConnectionRefusedError):
        return ChatError(
            "Could not reach the model's server. It may be down; try again later, "
            "or choose another model.",
            kind="unreachable",
            failover=True,
        )
    if isinstance(error, BROKEN):
        return ChatError(
            "The connection to the model broke"
            + (" in the middle of the answer." + kept if started else ". Try again in a moment."),
            kind="stream_cut",
            failover=not started,
        )
    # Errors the server reports inside the stream (TGI sends {"error", "error_type"} events).
    if isinstance(error, OverloadedError):
        return ChatError(
            "The model is overloaded." + (kept or " Try again in a minute."),
            kind="unavailable",
            failover=not started,
        )
    if isinstance(error, RequestValidationError):
        return ChatError(
            "The model's server rejected the request. Try a shorter message, or start a new "
            "conversation.",
            kind="bad_request",
        )
    if isinstance(error, TextGenerationError):
        return ChatError(
            "The model stopped with an error." + (kept or " Try again in a moment."),
            kind="server_error",
            failover=not started,
        )
    if isinstance(error, json.JSONDecodeError) or (
        responded and isinstance(error, ValueError | KeyError | TypeError | AttributeError)
    ):
        return ChatError(
            "The model's server sent a reply we could not read." + (kept or " Try again."),
            kind="malformed",
            failover=not started,
        )
    if isinstance(error, ValueError | httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return ChatError(
            "This model is not set up correctly on this server. The person running this "
            "Parlor needs to check its endpoint; meanwhile, choose another model.",
            kind="config",
            failover=True,
        )
    return ChatError(
        "The model failed to answer." + (kept or " Try again in a moment."), kind="unknown"
    )


def _as_own(error: ChatError, status: int) -> ChatError:
    """`error` told as what Hugging Face said of the person's own token (or credits)."""
    message = own_token_message(status)
    return ChatError(message, kind="own_token", failover=True) if message else error


def is_hub_url(url: str) -> bool:
    """Whether `url` is on Hugging Face's servers (the Hub, its router, Inference Endpoints):
    what offline mode must not reach."""
    host = (urlsplit(url).hostname or "").lower()
    hub = urlsplit(constants.ENDPOINT).hostname  # huggingface.co, or the mirror HF_ENDPOINT names
    return host == hub or any(host == d or host.endswith("." + d) for d in HF_DOMAINS)


RequestHook = Callable[[httpx.Request], Awaitable[object]]


def _for_hub_only(hook: RequestHook) -> RequestHook:
    """huggingface_hub's request hook, applied to requests to Hugging Face only.

    The hub's hook refuses every request when HF_HUB_OFFLINE is set (`OfflineModeIsEnabled`),
    even to the embedded model on 127.0.0.1; what else it does (a trace id, debug logs) is
    for Hugging Face's servers too. Other servers get the request as it is.
    """

    async def hook_for_hub(request: httpx.Request) -> None:
        if is_hub_url(str(request.url)):
            await hook(request)

    return hook_for_hub


@functools.cache
def share_tls_settings() -> None:
    """Make huggingface_hub's per-request HTTP clients share one TLS context.

    Each `AsyncInferenceClient` opens its own `httpx2.AsyncClient`, and each of those loads
    the system's CA certificates again: ~50 ms of CPU per chat message, on the event loop.
    The replacement factory builds the same client (huggingface_hub's own event hooks,
    redirects and timeout) around a context loaded once; a new client stays cheap. Its
    request hooks apply to Hugging Face's servers only (`_for_hub_only`).
    """
    template = get_async_session()  # huggingface_hub's default client, used as the pattern
    follow, timeout = template.follow_redirects, template.timeout
    hooks = {
        "request": [_for_hub_only(hook) for hook in template.event_hooks["request"]],
        "response": template.event_hooks["response"],
    }
    tls = httpx.create_ssl_context()

    def factory() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=tls, event_hooks=hooks, follow_redirects=follow, timeout=timeout
        )

    set_async_client_factory(factory)


def _marked(model: Model, endpoint: Endpoint) -> dict:
    """The request's watermark, for the embedded model's own endpoint (chat/local_model.py),
    which alone reads it; the key is that process's, never in a request."""
    if model.watermark is None or endpoint.type != "local":
        return {}
    return {"extra_body": {"watermark": model.watermark.model_dump()}}


class Endpoints:
    """Opens streams to the endpoints of catalog models."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        local: Callable[[], LocalTarget | None] = lambda: None,
        rng: random.Random | None = None,
        timeout: float = REQUEST_TIMEOUT,
        hf: HFAccess | None = None,
    ) -> None:
        self._environ = dict(environ)
        # Whose token an hf endpoint carries (chat/quota.py): by default the server's, always.
        self._hf = hf or HFAccess(server_token=self._environ.get("HF_TOKEN", ""))
        self._local = local
        self._rng = rng or random.Random()
        self._timeout = timeout
        share_tls_settings()

    def why_unusable(self, endpoint: Endpoint, owner: Owner | None = None) -> str:
        """Why `endpoint` cannot be called now for `owner` (None: by the server itself), in
        words for people; "" when it can."""
        if endpoint.type == "local":
            return "" if self._local() is not None else "the embedded model is still starting"
        if is_offline_mode() and self._reaches_hub(endpoint):
            return OFFLINE
        if endpoint.type == "hf":
            return self._hf.token_for(owner)[1]
        if not endpoint_available(endpoint, self._environ):
            return "this server has no token for it"
        return ""

    @staticmethod
    def _reaches_hub(endpoint: Endpoint) -> bool:
        if endpoint.type == "hf":
            return True
        return is_hub_url(endpoint.url if endpoint.type == "tgi" else endpoint.base_url)

    def usable(self, endpoint: Endpoint, owner: Owner | None = None) -> bool:
        return not self.why_unusable(endpoint, owner)

    def why_unavailable(self, model: Model, owner: Owner | None = None) -> str:
        """Why no endpoint of `model` can answer now ("" when one can): the first one's reason."""
        if model.retired is not None:
            return f"it was retired on {model.retired.on}"
        reasons = [self.why_unusable(e, owner) for e in model.endpoints]
        return "" if "" in reasons else reasons[0]

    def available(self, model: Model, owner: Owner | None = None) -> bool:
        return not self.why_unavailable(model, owner)

    def order(self, model: Model, owner: Owner | None = None) -> list[Endpoint]:
        """The usable endpoints, in a random order weighted by `weight` (no repeats)."""
        pool = [e for e in model.endpoints if self.usable(e, owner)]
        ordered = []
        while pool:
            pick = self._rng.choices(range(len(pool)), weights=[e.weight for e in pool])[0]
            ordered.append(pool.pop(pick))
        return ordered

    def _timeout_for(self, endpoint: Endpoint) -> httpx.Timeout:
        """Seconds without a byte before giving up (the endpoint's own `timeout` if the
        catalog has one); connecting gets at most CONNECT_TIMEOUT, so failover is quick."""
        seconds = endpoint.timeout or self._timeout
        return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))

    def _client(
        self, endpoint: Endpoint, model: Model, owner: Owner | None
    ) -> tuple[AsyncInferenceClient, str | None]:
        """A client for one endpoint, with its own token only (never the server's by default,
        and a person's own for Inference Providers only)."""
        timeout = self._timeout_for(endpoint)
        if endpoint.type == "local":
            target = self._local()
            if target is None:
                raise ChatError(
                    "The embedded model is still starting. Try again in a moment.",
                    kind="unavailable",
                    failover=True,
                )
            client = AsyncInferenceClient(
                base_url=target.base_url, api_key=target.token, timeout=timeout
            )
            return client, None
        if endpoint.type == "hf":
            return self._hf_client(endpoint, model, timeout, owner)
        token = endpoint_token(endpoint, self._environ)
        base_url = endpoint.url.rstrip("/") + "/v1" if endpoint.type == "tgi" else endpoint.base_url
        if token:
            client = AsyncInferenceClient(base_url=base_url, api_key=token, timeout=timeout)
        else:
            # With no api_key the client sends the machine's own HF token to this server. A
            # placeholder key stops that, and a None header drops the placeholder itself
            # (huggingface_hub removes None-valued headers): no Authorization is sent at all.
            client = AsyncInferenceClient(
                base_url=base_url,
                api_key="no-token",
                headers={"authorization": None},  # type: ignore[dict-item]
                timeout=timeout,
            )
        if endpoint.type == "openai":
            return client, endpoint.model or model.id  # vLLM & co. need the served name
        return client, "tgi"  # TGI serves one model and ignores the name

    def _hf_client(
        self, endpoint: Endpoint, model: Model, timeout: httpx.Timeout, owner: Owner | None
    ) -> tuple[AsyncInferenceClient, str]:
        """A client for Inference Providers, whose requests carry the person's own HF token
        or the server's (chat/quota.py).

        huggingface_hub sends a model given as a URL to that URL, and a key that is not an
        HF token straight to the provider: either would hand the token to another server. The
        catalog refuses the first; both are checked again here, before anything is sent.
        """
        served = endpoint.model or model.id
        reason = self.why_unusable(endpoint, owner)
        if not reason and not is_hub_model_id(served):
            reason = "its model is not a Hugging Face model id"
        if reason:
            raise ChatError(
                f"This model cannot be used on this server: {reason}. Choose another model.",
                kind="offline" if reason == OFFLINE else "config",
                failover=True,
            )
        token, _ = self._hf.token_for(owner)
        if router := self._hf.router_url.rstrip("/"):
            # The router's OpenAI-compatible route: "model" or "model:provider".
            client = AsyncInferenceClient(base_url=router + "/v1", api_key=token, timeout=timeout)
            pinned = endpoint.provider != "auto"
            return client, f"{served}:{endpoint.provider}" if pinned else served
        client = AsyncInferenceClient(provider=endpoint.provider, api_key=token, timeout=timeout)
        return client, served

    async def stream(
        self, model: Model, messages: list[dict], owner: Owner | None = None
    ) -> AsyncIterator[str]:
        """Yield the answer's text pieces (`str`), its reasoning (`Thought`), then one `Finish`;
        raise `ChatError` when it cannot be had. `owner`: whom it is for (whose token an hf
        endpoint carries: chat/quota.py); None, the server itself.

        When the last message is an assistant's, the model is asked to continue it: it is
        sent as it is (the embedded model continues it; other servers, see docs/models.md).
        Before the first piece (a `Thought` counts), a failure worth it (`ChatError.failover`)
        moves on to the next endpoint; after it, the error is raised and the caller keeps
        what it received.
        """
        endpoints = self.order(model, owner)
        if not endpoints:
            reason = self.why_unavailable(model, owner)
            raise ChatError(
                f"{model.name} is not available on this server right now: {reason}.",
                kind="offline" if reason == OFFLINE else "unavailable",
            )
        params = model.parameters.model_dump(exclude_none=True)
        if not params.get("stop"):
            params.pop("stop", None)
        last: ChatError | None = None
        for number, endpoint in enumerate(endpoints):
            started = responded = False
            try:
                client, served = self._client(endpoint, model, owner)
                async with client:
                    response = await client.chat_completion(
                        messages, model=served, stream=True, **params, **_marked(model, endpoint)
                    )
                    responded = True
                    reason = None
                    inline: InlineThinking | None = InlineThinking()  # None once answering
                    async for chunk in response:
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        reason = choice.finish_reason or reason
                        delta = choice.delta
                        piece = delta.content
                        if inline is None:  # the answer proper: as cheap as can be
                            if piece:
                                started = True
                                yield piece
                            continue
                        for part in _reasoning_and_start(delta, piece, inline):
                            started = True
                            yield part
                        if inline.answering:
                            inline = None
                    for part in inline.end() if inline is not None else ():
                        started = True
                        yield part
                if not started:
                    raise ChatError(
                        "The model sent back an empty answer. Try again, or rephrase your message.",
                        kind="empty",
                        failover=True,
                    )
                yield Finish.of(reason)
                return
            except Exception as e:
                error = to_chat_error(e, started=started, responded=responded)
                http = getattr(e, "response", None) if isinstance(e, HfHubHTTPError) else None
                if http is not None and endpoint.type == "hf" and self._hf.is_own(owner):
                    error = _as_own(error, http.status_code)
                log.warning(
                    "model %s endpoint #%d (%s, attempt %d) failed%s: %s (%s%s)",
                    model.id,
                    next(i for i, x in enumerate(model.endpoints) if x is endpoint),
                    endpoint.type,
                    number + 1,
                    " mid-answer" if started else "",
                    error.kind,
                    type(e).__name__,
                    f" HTTP {http.status_code}" if http is not None else "",
                )
                if started or not error.failover:
                    raise error from None
                last = error
        assert last is not None
        raise last
