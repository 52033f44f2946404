"""`python app.py`: settings, models.yaml, the embedded model, then the web app, in that order.

The embedded model starts first, in its own process: it loads while Gradio is imported and
the page is built (~4 s), instead of after.
"""

from __future__ import annotations

import logging
import os
import sys

from .catalog import CatalogError, load_catalog
from .local_model import LocalModel
from .settings import Settings


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from our users
    # Gradio summarises its last 10,000 events with pandas after every event, for a
    # monitoring page Parlor does not serve: up to ~20 ms of CPU per event on a busy server.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000000000")
    settings = Settings()
    try:
        catalog = load_catalog(settings.models)
    except CatalogError as e:
        sys.exit(f"Parlor cannot start: {e}")
    local = LocalModel(threads=settings.local_threads) if catalog.uses_local() else None
    if local is not None:
        local.start()
    from .server import create_app, serve  # imports Gradio: after the model has started

    serve(create_app(settings, catalog, local=local), settings)
