"""`python app.py`: settings, models.yaml, the embedded model, then the web app, in that order.

The embedded model starts first, in its own process: it loads while Gradio is imported and
the page is built (~4 s), instead of after.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

from pydantic import ValidationError

from .catalog import CatalogError, load_catalog
from .local_model import LocalModel
from .settings import Settings, SettingsError


def main() -> None:
    # Start-up makes ~230,000 objects that live as long as the app (Gradio, FastAPI,
    # pydantic): the collector's full passes over them cost ~0.9 s of start-up CPU and free
    # next to nothing. It stays off until the app is built; then what exists is frozen, so
    # the collections made while serving look only at what serving creates.
    gc.disable()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # huggingface_hub's HTTP client logs every request to a model at INFO: a line per
    # message sent, whose failures `chat.endpoints` already reports in words of its own.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from our users
    # Gradio summarises its last 10,000 events with pandas after every event, for a
    # monitoring page Parlor does not serve: up to ~20 ms of CPU per event on a busy server.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000000000")
    try:
        settings = Settings()
        settings.signing_secret()  # a damaged secret.key stops here, before anything starts
        catalog = load_catalog(settings.models)
        mark_key = settings.watermark_secret() if catalog.watermarks() else ""
    except ValidationError as e:
        sys.exit(f"Parlor cannot start: {_setting_error(e)}")
    except (CatalogError, SettingsError) as e:
        sys.exit(f"Parlor cannot start: {e}")
    local = (
        LocalModel(threads=settings.local_threads, watermark_key=mark_key)
        if catalog.uses_local()
        else None
    )
    if local is not None:
        local.start()
    from .server import create_app, serve  # imports Gradio: after the model has started

    try:
        app = create_app(settings, catalog, local=local)
    except SettingsError as e:  # PARLOR_DATABASE_URL's database, or a deployer's extension
        if local is not None:
            local.stop()
        sys.exit(f"Parlor cannot start: {e}")
    settle_heap()
    serve(app, settings)


def settle_heap() -> None:
    """Free start-up's garbage once, move what remains out of the collector's sight
    (`gc.freeze`), and turn the collector back on."""
    gc.collect()
    gc.freeze()
    gc.enable()


def _setting_error(error: ValidationError) -> str:
    """The first bad setting as one line: the variable, the reason (never the value, which
    may be a secret)."""
    first = error.errors()[0]
    why = first["msg"].removeprefix("Value error, ")  # a check of ours says it all
    if not first["loc"]:  # a check of several settings together names them itself
        return f"{why}."
    name = str(first["loc"][0])
    variable = name if name.isupper() else f"PARLOR_{name.upper()}"
    return f"the setting {variable} is not valid: {why}."
