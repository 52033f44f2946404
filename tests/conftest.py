from __future__ import annotations

import pytest
from apprunner import RunningApp
from browser import browser, people  # noqa: F401 - fixtures: one Chromium for the session
from pg import pg_url, postgres, store  # noqa: F401 - fixtures: PostgreSQL for the store tests


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The app on the embedded model, shared by the end-to-end tests of a session."""
    running = RunningApp(tmp_path_factory.mktemp("shared") / "data").wait_ready()
    yield running
    running.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that use the browser last: Playwright's sync API keeps an event loop
    running on the main thread while the session's Chromium is open, and tests that call
    asyncio.run() cannot run beside it."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
