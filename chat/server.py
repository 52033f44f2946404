"""The web server: FastAPI with the session middleware, `/healthz`, and the Gradio app."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount

from . import branding, extensions, gradio_patches, hub_patches, pages, patches, retention
from .accounts import DeclinedSignIn, TokenResolver
from .answers_redis import shared_answers
from .api import register_api
from .catalog import Catalog
from .check_page import add_check_page
from .doors import address_reader, owner_resolver
from .endpoints import Endpoints, LocalTarget
from .http_api import add_http_api
from .identity import (
    COOKIE_STATE,
    CookiePolicy,
    CookieSigner,
    PageSigner,
    SessionCookieMiddleware,
    SessionHashes,
)
from .limits import Limits
from .limits_redis import shared_limits
from .local_model import LocalModel
from .quota import HFAccess, asks_for_inference
from .sealed_session import SealedSessionCookie
from .security import BodyLimit, SecurityMiddleware
from .service import ChatService
from .settings import Settings
from .share_pages import add_share_pages
from .store import open_store
from .ui import CSS, build_ui
from .watermark import COPY_LABEL, Detector

log = logging.getLogger("parlor.server")

# Streaming chats are long-lived jobs: Gradio's default of 40 workers would queue people.
MAX_CONCURRENT_JOBS = 1000


def create_app(
    settings: Settings,
    catalog: Catalog,
    environ: dict[str, str] | None = None,
    local: LocalModel | None = None,
) -> FastAPI:
    """Wire settings, store, endpoints, service, UI and API into one ASGI app. `local`: the
    embedded model when the catalog uses it, already started by `chat.launch` (before
    Gradio is imported, so that it loads meanwhile); the app stops it when it ends."""
    environ = dict(os.environ if environ is None else environ)

    def local_target() -> LocalTarget | None:
        if local is None or not local.ready.is_set():
            return None
        return LocalTarget(local.base_url, local.token)

    history = open_store(settings)
    # Signed-in people pay for their own inference where the Space asks for the scope.
    own_tokens = settings.login_enabled and asks_for_inference(settings.oauth_scopes)
    hf = HFAccess(
        server_token=environ.get("HF_TOKEN", ""),
        own_tokens=own_tokens,
        anonymous_server_token=settings.anonymous_uses_server_token,
        sign_in=settings.login_enabled,
        router_url=settings.inference_providers_url,
    )
    limit_bounds = {
        "per_minute": settings.limit_per_minute,
        "per_day": settings.limit_per_day,
        "per_address_minute": settings.limit_per_address_per_minute,
        "per_address_day": settings.limit_per_address_per_day,
    }
    service = ChatService(
        catalog=catalog,
        history=history,
        data_sharing=settings.data_sharing,
        endpoints=Endpoints(environ=environ, local=local_target, hf=hf),
        max_message_chars=settings.max_message_chars,
        frame_seconds=settings.stream_frame_seconds,
        frame_budget=settings.stream_frame_budget,
        answer_limits=(settings.max_answers_per_person, settings.max_answers),
        model_titles=settings.model_titles,
        store_messages=settings.store_messages,
        import_limits=settings.import_limits,
        limits=Limits(**limit_bounds),
    )
    if settings.redis_url:  # answers in progress shared by the replicas
        service.answers = shared_answers(settings.redis_url)
        secret = settings.signing_secret()  # the same on every replica
        service.limits = shared_limits(service.answers.sync, secret, **limit_bounds)
    secret = settings.signing_secret()
    signer = CookieSigner(secret)
    page_tokens = PageSigner(secret, max_age=settings.page_token_hours * 3600)
    tokens = (
        TokenResolver(
            settings.openid_provider_url,
            ttl=settings.token_cache_seconds,
            refused_ttl=min(60.0, settings.token_cache_seconds),
        )
        if settings.login_enabled
        else None
    )
    owner_of = owner_resolver(
        signer,
        page_tokens,
        login=settings.login_enabled,
        tokens=tokens,
        adopt=service.adopt,
        is_retired=history.is_retired,
        own_tokens=own_tokens,
        # Hashing the address costs each request a little: only when a limit counts it.
        address_of=address_reader(trusted_proxy=settings.trusted_proxy)
        if service.limits.address
        else None,
    )

    footer = ""
    if settings.ephemeral_storage:
        footer = (
            "⚠️ **This server keeps history on a disk that is wiped when it restarts.** "
            "Export your data to keep it."
        )
        log.warning(
            "history lives on ephemeral disk (%s): attach a storage bucket at /data "
            "or set PARLOR_DATA_DIR to keep it across restarts",
            settings.data_dir,
        )
    # The watermark's key stays in this process and the embedded model's (chat/watermark.py).
    detector = Detector(catalog, settings.watermark_secret() if catalog.watermarks() else "")
    brand = branding.branding_of(settings)
    demo = build_ui(
        service,
        owner_of,
        footer=footer,
        login=settings.login_enabled,
        welcome=settings.welcome,
        api=lambda: register_api(service, owner_of, detector),
        copy_label=COPY_LABEL if settings.label_on_copy else "",
        brand=brand,
        extend=extensions.load(settings.extension),
    )
    demo.max_threads = MAX_CONCURRENT_JOBS
    demo.queue(default_concurrency_limit=None)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        days = settings.retention_days
        sweeper = retention.Sweeper(history, days).start() if days else None
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.stop()
            if local is not None:
                local.stop()
            history.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.local_model = local

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        if local is not None and not local.ready.is_set():
            detail = local.failed or "the embedded model is loading"
            return JSONResponse({"status": "starting", "detail": detail}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/session/check", include_in_schema=False)
    def session_check(request: Request) -> JSONResponse:
        """Whether this browser sent back a valid session cookie (the UI warns if not)."""
        came_back = bool(getattr(request.state, COOKIE_STATE, False))
        return JSONResponse({"cookie": came_back}, headers={"cache-control": "no-store"})

    @app.get("/session/page", include_in_schema=False)
    def page_token() -> JSONResponse:
        """A secret for the page that asks, which names it where its cookie does not come
        back (chat/doors.py); sent to that page only, never through Gradio's queue."""
        return JSONResponse({"token": page_tokens.issue()}, headers={"cache-control": "no-store"})

    @app.get(gradio_patches.DEEP_LINK_PATH, include_in_schema=False)
    def no_deep_links() -> Response:
        """Gradio would save a session's last-shown values (a conversation) to a file here."""
        return Response(status_code=404)

    _serve_brand_files(app, brand)

    @app.get("/privacy", include_in_schema=False)
    def privacy() -> HTMLResponse:
        return HTMLResponse(
            pages.privacy_page(
                service,
                data_sharing=settings.data_sharing,
                login=settings.login_enabled,
                ephemeral=settings.ephemeral_storage,
                feedback_url=settings.feedback_link,
                own_tokens=own_tokens,
                brand=brand,
                retention_days=settings.retention_days,
                address_limits=bool(service.limits.address),
            )
        )

    add_check_page(app, detector)  # /check: is a text watermarked?
    app = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        css=CSS,
        theme=branding.theme(brand),
        head=brand.head(),
        show_error=False,
        run_history=False,
        footer_links=[],
        # An upload past the import limit is refused before Gradio stores it.
        max_file_size=settings.import_limits.max_bytes,
        server_name=settings.server_name,
        server_port=settings.server_port,
    )
    gradio_app = _mounted(app, gr.routes.App)
    # Measured changes to the libraries' private internals, each on the versions it was
    # written for only; one log line names those left off.
    patches.apply(
        [*gradio_patches.patches(gradio_app), *hub_patches.PATCHES], enabled=settings.patches
    )
    # Inside Gradio's own app, so that the sign-in session (its SessionMiddleware) is read.
    add_http_api(gradio_app, service, owner_of)
    add_share_pages(gradio_app, service, owner_of, brand)
    pages.add_models_page(gradio_app, service, owner_of, brand)
    policy = CookiePolicy(
        samesite=settings.cookie_samesite,
        secure=settings.cookie_secure,
        partitioned=settings.cookie_partitioned,
        max_age=settings.cookie_max_age_days * 24 * 3600,
    )
    app.add_middleware(SessionHashes)  # inside the cookie middleware: it reads its verdict
    app.add_middleware(
        SessionCookieMiddleware,
        signer=signer,
        policy=policy,
        is_retired=history.is_retired,
        # A Space's proxy sets X-Forwarded-Proto (it ends TLS); elsewhere, only a declared one.
        forwarded_proto=settings.trusted_proxy or settings.on_space,
    )
    if settings.login_enabled:
        app.add_middleware(DeclinedSignIn)
    if own_tokens:  # the sign-in cookie holds a token that pays: the browser keeps it sealed
        app.add_middleware(SealedSessionCookie, secret=secret)
    # Room for the largest import, each character escaped in the request's JSON (an emoji as
    # two \uXXXX); an upload is held to the import limit itself by Gradio (max_file_size).
    app.add_middleware(BodyLimit, limit=3 * settings.import_limits.max_bytes + 2**20)
    app.add_middleware(
        SecurityMiddleware,
        frame_ancestors=settings.frame_ancestors,
        public_urls=settings.public_urls,
        trusted_proxy=settings.trusted_proxy,
        image_origins=brand.image_origins(),
    )
    return app


def _serve_brand_files(app: FastAPI, brand: branding.Branding) -> None:
    """The deployer's logo and favicon files (checked at start-up). No script runs in them,
    even opened on their own (an SVG may hold one)."""
    headers = {"content-security-policy": "script-src 'none'", "cache-control": "max-age=3600"}
    for path, file in brand.files().items():
        media = branding.IMAGE_TYPES[file.suffix.lower()]

        def serve_file(file=file, media=media) -> FileResponse:
            return FileResponse(file, media_type=media, headers=headers)

        app.add_api_route(f"/{path}", serve_file, methods=["GET", "HEAD"], include_in_schema=False)


def _mounted(app: FastAPI, kind: type[FastAPI]) -> FastAPI:
    """The app of `kind` mounted in `app` (`gr.mount_gradio_app` mounts a copy of its own)."""
    return next(r.app for r in app.routes if isinstance(r, Mount) and isinstance(r.app, kind))


def serve(app: FastAPI, settings: Settings) -> None:
    """Run until Ctrl-C or SIGTERM, then save the answers in progress and exit cleanly; the
    embedded model stops with the app."""
    log.info("Parlor on http://%s:%s", settings.server_name, settings.server_port)
    config = uvicorn.Config(
        app,
        host=settings.server_name,
        port=settings.server_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        # The client's address and scheme come from X-Forwarded-* only behind a proxy the
        # deployer declares (uvicorn would otherwise believe any client on 127.0.0.1).
        proxy_headers=settings.trusted_proxy,
    )
    # uvicorn raises the stop signal again once it has shut down: a stop that was asked
    # for ends the process with status 0.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _exit_cleanly)
    _Server(config, app).run()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


class _Server(uvicorn.Server):
    """uvicorn's server, which ends the answers in progress before it closes connections:
    otherwise it waits for them, then cancels them halfway through a save."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        service: ChatService = self.app.state.service
        stopped = await service.shutdown()
        _mounted(self.app, gr.routes.App).stop_event.set()  # ends Gradio's heartbeat streams
        await super().shutdown(sockets)
        log.info("Parlor stopped; %d answer(s) in progress saved as interrupted", stopped)
