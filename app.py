"""Parlor: `python app.py` serves the chat app (see README.md)."""

import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from our users
# Gradio summarises its last 10,000 events with pandas after every event, for a monitoring
# page Parlor does not serve: up to ~20 ms of CPU per event on a busy server.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000000000")

from chat.catalog import CatalogError, load_catalog
from chat.server import create_app, serve
from chat.settings import Settings

if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    try:
        catalog = load_catalog(settings.models)
    except CatalogError as e:
        sys.exit(f"Parlor cannot start: {e}")
    serve(create_app(settings, catalog), settings)
