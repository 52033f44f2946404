"""Where Parlor changes Gradio's own behaviour, each found with a profiler (docs/performance.md;
docs/upstream.md says what would make each unnecessary).

These reach into Gradio 6.31.0's internals, not its public API: each applies on the versions
it was written for only (`chat.patches`), and says what it replaces and why. What would make
each unnecessary upstream is in docs/upstream.md.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterator
from copy import copy
from typing import Any

import gradio as gr
from fastapi import FastAPI
from gradio import component_meta
from gradio.blocks import BlockFunction, convert_component_dict_to_list
from gradio.state_holder import SessionState

from .patches import Patch, exact_version

GRADIO = exact_version(gradio="6.31.0")
# Gradio's routes, reordered inside FastAPI's router (its included routers and their cache).
GRADIO_ROUTES = exact_version(gradio="6.31.0", fastapi="0.165.0")

QUEUE_POLL_SECONDS = 0.002
PROGRESS_POLL_SECONDS = 0.1
# The page's "share a deep link" endpoint; Parlor has no DeepLinkButton (see lean_sessions).
DEEP_LINK_PATH = "/gradio_api/deep_link"


def skip_absent_matplotlib() -> None:
    """Gradio tries `import matplotlib` twice per step of every event, streamed frames
    included (gradio/utils.py MatplotlibBackendMananger, entered by route_utils.
    call_process_api); when it is not installed each try searches sys.path again (~5% of the
    server's CPU while streaming). A None entry in sys.modules makes the failure immediate."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


def slow_queue_polling(demo: gr.Blocks) -> None:
    """Gradio's queue looks for new jobs every 1 ms (gradio/queueing.py
    Queue.start_processing, `sleep_when_free`), summing the queues of every event each time,
    and for progress updates every 10 ms over all `max_threads` job slots
    (start_progress_updates): ~10% of a core, idle or busy. Looking every 2 ms (a job starts
    0.5 ms later on average) and for progress, which Parlor never reports, every 100 ms
    brings that to ~4%."""
    demo._queue.sleep_when_free = QUEUE_POLL_SECONDS
    demo._queue.progress_update_sleep_when_free = PROGRESS_POLL_SECONDS


class _CachedArgspecs:
    """The `inspect` module as `gradio/component_meta.py` sees it, with `getfullargspec`
    remembered per function: the functions are the component classes' `__init__`s."""

    getfullargspec = staticmethod(functools.cache(inspect.getfullargspec))

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


def cached_argspecs() -> None:
    """Every component Gradio builds runs `inspect.getfullargspec` on its `__init__` and on
    each of its bases' (gradio/component_meta.py, `updateable`), and Gradio builds a new one
    for every property an event changes (gradio/blocks.py, `Blocks.postprocess_data`): the
    buttons around each message, among py-spy's hot spots when 200 people send at once on
    the browser path. A function's signature does not change: it is read once."""
    component_meta.inspect = _CachedArgspecs()  # type: ignore[assignment]


# The routes every message takes, as Gradio 6.31 names them: the browser's queue and
# unqueued events, their heartbeat, and the client API's two requests.
HOT_ROUTES = (
    "/gradio_api/heartbeat/{session_hash}",
    "/gradio_api/run/{api_name}",
    "/gradio_api/call/{api_name}",
    "/gradio_api/queue/join",
    "/gradio_api/call/{api_name}/{event_id}",
    "/gradio_api/queue/data",
)


def hot_routes_first(app: FastAPI) -> None:
    """Move the routes of every message to the front of Gradio's router.

    FastAPI tries a request against each route in turn, twice (`fastapi/routing.py`,
    `_IncludedRouter.matches`, then `_match` to handle it), and Gradio's `/queue/join` comes
    41st of its 63: among py-spy's hot spots when 200 people send at once on the browser
    path. No route before them matches their paths, so moving them (in their own order)
    changes which route a request reaches for none."""
    for route in app.router.routes:
        router = getattr(route, "original_router", None)
        if router is None:
            continue
        hot = [r for r in router.routes if getattr(r, "path", None) in HOT_ROUTES]
        router.routes[:] = hot + [r for r in router.routes if r not in hot]
        router._mark_routes_changed()  # FastAPI caches the order until told


class _LeanSession:
    """The methods of Gradio's `SessionState` that `lean_sessions` replaces."""

    def __init__(self, blocks: gr.Blocks) -> None:
        self.blocks_config = copy(blocks.default_config)
        self.config_values: dict[int, Any] = {}  # never filled: see lean_sessions
        self.state_data: dict[int, Any] = {}
        self._state_ttl: dict[int, tuple[float, datetime.datetime]] = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST") else 3600  # as Gradio

    def __setitem__(self, key: int, value: Any) -> None:
        block = self.blocks_config.blocks.get(key)
        if isinstance(block, gr.State):
            self._state_ttl[key] = (block.time_to_live, datetime.datetime.now())
            self.state_data[key] = value
        else:
            self.blocks_config.blocks[key] = value

    def _update_config(self, key: int) -> None:
        pass

    def _update_value_in_config(self, key: int, value: Any) -> None:
        pass

    @property
    def components(self) -> Iterator[dict]:
        return iter(())


def lean_sessions() -> None:
    """Stop Gradio keeping, per session, a copy of every block's config with the last value
    each event put in it (gradio/state_holder.py `SessionState.config_values`).

    Gradio keeps it only to answer `/gradio_api/deep_link` (the `gr.DeepLinkButton`, which
    Parlor does not have). Building it is most of `SessionState.__init__`: 8 ms of CPU for
    Parlor's 67 blocks, paid at each page's first event and at every `/gradio_api/call`
    request (a new session each), a fifth of the server's CPU when 200 chats start at once;
    it weighs ~80 KiB per session, kept for up to 10,000 sessions; and it holds the
    conversation a person last saw, which a deep-link request by session id would write to
    a file. Sessions keep what they are for: `gr.State` values and updated components. The
    deep-link endpoint itself is answered with 404 by `chat.server`."""
    for name, member in vars(_LeanSession).items():
        if not name.startswith("__") or name in ("__init__", "__setitem__"):
            setattr(SessionState, name, member)


_SKIP = gr.skip()
_gradio_postprocess_data = gr.Blocks.postprocess_data


def _is_skip(block: Any, prediction: Any) -> bool:
    return not block.stateful and isinstance(prediction, dict) and prediction == _SKIP


async def _postprocess_data(
    self: gr.Blocks, block_fn: BlockFunction, predictions: Any, state: SessionState | None
) -> list[Any]:
    outputs = block_fn.outputs
    if len(outputs) > 1 and isinstance(predictions, dict) and predictions == _SKIP:
        predictions = [_SKIP] * len(outputs)  # one skip for every output, as Gradio reads it
    elif isinstance(predictions, dict) and predictions:
        predictions = convert_component_dict_to_list(list(outputs), predictions)
    if (
        block_fn.batch
        or block_fn.is_validator_function
        or len(outputs) < 2
        or not isinstance(predictions, list | tuple)
        or len(predictions) != len(outputs)
    ):
        return await _gradio_postprocess_data(self, block_fn, predictions, state)
    kept = [i for i, p in enumerate(predictions) if not _is_skip(outputs[i], p)]
    if len(kept) == len(outputs):
        return await _gradio_postprocess_data(self, block_fn, predictions, state)
    result: list[Any] = [dict(_SKIP) for _ in outputs]
    if kept:
        fn = copy(block_fn)
        fn.outputs = [outputs[i] for i in kept]
        values = [predictions[i] for i in kept]
        one_or_all = values if len(kept) > 1 else values[0]  # Gradio wraps a lone output
        done = await _gradio_postprocess_data(self, fn, one_or_all, state)
        for i, value in zip(kept, done, strict=True):
            result[i] = value
    return result


def cheap_skips() -> None:
    """Answer an output left as `gr.skip()` with the skip itself.

    For each such output Gradio builds a new copy of the component from the session's last
    one, with all its constructor arguments (`gradio/blocks.py`, `Blocks.postprocess_data`),
    only to send `{"__type__": "update"}`, which the page ignores. For the sidebar's list of
    conversations, that is a copy of every conversation's title at each event that leaves it
    alone (the end of an answer, opening a conversation): a cost that grew with the number
    of conversations. The session keeps its last copy, which is the same."""
    gr.Blocks.postprocess_data = _postprocess_data  # type: ignore[method-assign]


_gradio_validate_inputs = gr.Blocks.validate_inputs


def _validate_inputs(self: gr.Blocks, block_fn: BlockFunction, inputs: list[Any]) -> None:
    try:
        _gradio_validate_inputs(self, block_fn, inputs)
    except ValueError:
        raise gr.Error(
            f"This endpoint takes {len(block_fn.inputs)} value(s); {len(inputs)} were sent.",
            print_exception=False,
        ) from None


def clear_arity_errors() -> None:
    """A call with too few values (`{"data": []}`) fails in `Blocks.validate_inputs` with a
    ValueError, which Gradio's queue prints as a traceback (`gradio/queueing.py`,
    `process_events`) and the caller receives as a bare "error". It becomes a gr.Error
    saying what was missing, and no traceback."""
    gr.Blocks.validate_inputs = _validate_inputs  # type: ignore[method-assign]


def patches(app: gr.routes.App) -> list[Patch]:
    """Parlor's changes to Gradio, for `app`: the Gradio app as mounted, its queue set up."""
    demo = app.get_blocks()
    return [
        Patch(
            "skip_absent_matplotlib",
            skip_absent_matplotlib,
            GRADIO,
            "look for matplotlib once per process, not at every step of every event",
        ),
        Patch(
            "slow_queue_polling",
            functools.partial(slow_queue_polling, demo),
            GRADIO,
            "wake the queue when a job arrives instead of polling every 1 ms",
        ),
        Patch(
            "cached_argspecs",
            cached_argspecs,
            GRADIO,
            "read each component class's signature once (component_meta.updateable)",
        ),
        Patch(
            "hot_routes_first",
            functools.partial(hot_routes_first, app),
            GRADIO_ROUTES,
            "FastAPI: find a request's route without trying each route in turn, twice",
        ),
        Patch(
            "lean_sessions",
            lean_sessions,
            GRADIO,
            "build a session's config copy only for apps with a DeepLinkButton",
        ),
        Patch(
            "cheap_skips",
            cheap_skips,
            GRADIO,
            "answer an output left as gr.skip() without building a component",
        ),
        Patch(
            "clear_arity_errors",
            clear_arity_errors,
            GRADIO,
            "raise a gr.Error (no traceback, a message for the caller) for too few inputs",
        ),
    ]
