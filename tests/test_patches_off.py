"""The core journeys once more, on an app launched with PARLOR_PATCHES=off: Gradio,
huggingface_hub and httpcore2 exactly as released (chat/patches.py).

The journeys are the suite's own, imported; the fixtures below give them this app (its
catalog: the embedded model first, then the scripted models of tests/test_http_api.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from apprunner import TEST_MODELS, RunningApp
from scripted_server import ScriptedServer
from test_app import (  # noqa: F401 - the journeys, run here on this module's app
    chat,
    client,
    test_chat_streams_and_is_listed,
    test_delete_conversation,
    test_keep_chatting_in_a_conversation,
)
from test_browser import test_first_visit_chat_streams  # noqa: F401
from test_failures import (
    PortComesBack,
    Stack,
    scripted,
    test_a_slow_answer_can_be_stopped_and_is_kept,  # noqa: F401
)
from test_http_api import (  # noqa: F401
    test_hanging_up_stops_nothing_the_answer_is_finished_and_kept,
    test_the_answer_streams_and_is_kept_like_the_gradio_chat,
)
from test_privacy import test_export_import_round_trip  # noqa: F401

OFF = "library patches off (PARLOR_PATCHES=off)"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[ScriptedServer, RunningApp]]:
    root = tmp_path_factory.mktemp("patches-off")
    with ScriptedServer() as srv:
        catalog = yaml.safe_load(TEST_MODELS.read_text())
        catalog["models"] += [scripted(name, srv.base_url) for name in ("story", "slow")]
        models = root / "models.yaml"
        models.write_text(yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True))
        env = {"PARLOR_PATCHES": "off", "PARLOR_STREAM_FRAME_SECONDS": "0"}
        app = RunningApp(root / "data", models=models, env=env).wait_ready()
        try:
            assert OFF in app.log(), "the app runs without its patches, and says so"
            yield srv, app
        finally:
            app.stop()


@pytest.fixture(scope="module")
def app(served) -> RunningApp:
    return served[1]


@pytest.fixture(scope="module")
def url(app) -> str:
    return app.url


@pytest.fixture(scope="module")
def stack(served) -> Iterator[Stack]:
    srv, app = served
    down = PortComesBack(srv.port)
    yield Stack(srv, app, down)
    down.close()


def test_retry_writes_the_last_answer_again(app):
    c = client(app)
    cid, _ = chat(c, "Name a fruit.")
    job = c.submit(cid, api_name="/retry")
    updates = [tuple(u) for u in job]
    job.result()
    assert len(updates) > 1 and {u[0] for u in updates} == {cid}, "it streams like /chat"
    messages = c.predict(cid, api_name="/conversation")["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Name a fruit."),
        ("assistant", updates[-1][1]),
    ], "the new answer replaces the old one"


def test_start_up_says_in_one_line_that_the_patches_are_off(app):
    lines = [line for line in app.log().splitlines() if "patches" in line]
    assert len(lines) == 1 and OFF in lines[0], lines
    assert "Traceback" not in app.log()
