from __future__ import annotations

import pytest
from apprunner import RunningApp
from browser import browser, people  # noqa: F401 - fixtures: one Chromium for the session


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The app on the embedded model, shared by the end-to-end tests of a session."""
    running = RunningApp(tmp_path_factory.mktemp("shared") / "data").wait_ready()
    yield running
    running.stop()
