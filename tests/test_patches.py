"""`chat.patches`: a patch applies on the library versions it was written for only, and
`PARLOR_PATCHES=off` leaves Gradio, huggingface_hub and httpcore2 exactly as released."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from apprunner import ROOT

from chat.patches import Patch, apply, exact_version, installed

GRADIO = installed("gradio")
OFF = "library patches off (PARLOR_PATCHES=off)"


def recording(name: str, applied: list[str], **versions: str) -> Patch:
    return Patch(name, lambda: applied.append(name), exact_version(**versions), "upstream fix")


def test_a_patch_for_another_version_stays_off_and_start_up_says_why(caplog):
    applied: list[str] = []
    patches = [
        recording("fits", applied, gradio=GRADIO),
        recording("older", applied, gradio="0.0.1"),
        recording("either", applied, gradio=("0.0.1", "0.0.2")),
        recording("elsewhere", applied, gradio=GRADIO, no_such_library="1.0"),
    ]
    with caplog.at_level(logging.INFO, logger="parlor.patches"):
        done = apply(patches, enabled=True)
    assert applied == ["fits"] and [p.name for p in done] == ["fits"]
    assert [r.getMessage() for r in caplog.records] == [
        "library patches off, not written for the versions installed: "
        f"older (gradio {GRADIO}, written for 0.0.1); "
        f"either (gradio {GRADIO}, written for 0.0.1 or 0.0.2); "
        "elsewhere (no_such_library not installed, written for 1.0)"
    ]


def test_every_patch_on_says_nothing(caplog):
    applied: list[str] = []
    with caplog.at_level(logging.INFO, logger="parlor.patches"):
        apply([recording("fits", applied, gradio=GRADIO)], enabled=True)
    assert applied == ["fits"] and caplog.records == []


def test_patches_off_applies_none_and_says_so(caplog):
    applied: list[str] = []
    patches = [recording("one", applied, gradio=GRADIO), recording("two", applied, gradio=GRADIO)]
    with caplog.at_level(logging.INFO, logger="parlor.patches"):
        assert apply(patches, enabled=False) == []
    assert applied == []
    assert [r.getMessage() for r in caplog.records] == [f"{OFF}: one, two"]


# Builds the app as `python app.py` does (settings from the environment), then prints, for
# each patch, whether what it replaces is Parlor's ("parlor") or the library's own.
PROBE = """
import inspect, json, sys
import gradio as gr
from gradio import component_meta
from gradio.state_holder import SessionState
from httpcore2._backends.anyio import AnyIOStream
from huggingface_hub.inference import _common
from chat import gradio_patches, hub_patches, server
from chat.catalog import load_catalog
from chat.settings import Settings

settings = Settings()
app = server._mounted(server.create_app(settings, load_catalog(settings.models)), gr.routes.App)
routers = [r.original_router for r in app.router.routes if hasattr(r, "original_router")]
seen = {
    "skip_absent_matplotlib": "matplotlib" in sys.modules and sys.modules["matplotlib"] is None,
    "slow_queue_polling": app.get_blocks()._queue.sleep_when_free
    == gradio_patches.QUEUE_POLL_SECONDS,
    "cached_argspecs": component_meta.inspect is not inspect,
    "hot_routes_first": any(
        r.routes[0].path == gradio_patches.HOT_ROUTES[0] for r in routers if r.routes
    ),
    "lean_sessions": SessionState.__init__ is gradio_patches._LeanSession.__init__,
    "cheap_skips": gr.Blocks.postprocess_data is gradio_patches._postprocess_data,
    "clear_arity_errors": gr.Blocks.validate_inputs is gradio_patches._validate_inputs,
    "lean_stream_chunks": _common._format_chat_completion_stream_output
    is hub_patches.read_stream_line,
    "asyncio_read_timeouts": AnyIOStream.read is hub_patches._read,
}
print(json.dumps({name: "parlor" if mine else "library" for name, mine in seen.items()}))
"""
PATCH_NAMES = [
    "skip_absent_matplotlib",
    "slow_queue_polling",
    "cached_argspecs",
    "hot_routes_first",
    "lean_sessions",
    "cheap_skips",
    "clear_arity_errors",
    "lean_stream_chunks",
    "asyncio_read_timeouts",
]


@pytest.mark.parametrize(("setting", "expected"), [("on", "parlor"), ("off", "library")])
def test_parlor_patches_off_leaves_the_libraries_as_released(tmp_path, setting, expected):
    """With the patches on (the default) every one is in place on the versions installed, and
    start-up says nothing of them (after an upgrade, re-measure each: docs/upstream.md); with
    PARLOR_PATCHES=off, what each would replace is the library's own, and start-up says so."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PARLOR_DATA_DIR": str(tmp_path / "data"),
        "PARLOR_MODELS": str(ROOT / "tests" / "models-test.yaml"),
        "PARLOR_PATCHES": setting,
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == dict.fromkeys(PATCH_NAMES, expected)
    said = [line for line in probe.stderr.splitlines() if "patches off" in line]
    assert said == ([] if setting == "on" else [f"{OFF}: {', '.join(PATCH_NAMES)}"])
