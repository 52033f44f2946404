"""Security headers and cross-site request refusal, as one ASGI middleware.

- `Content-Security-Policy`: `frame-ancestors` says which sites may embed Parlor in a frame
  (`PARLOR_FRAME_ANCESTORS`; `*`, the default, allows any site, like a public Space); the
  page loads images, media, fonts and styles only from Parlor itself (images and media also
  from `data:`/`blob:`), so that an answer's markup cannot make the browser send anything
  elsewhere (`chat/doors.py` shows remote images as links); a deployer's logo or favicon
  given as a URL adds its origin to `img-src` only (chat/branding.py). Scripts and
  connections are left to Gradio, which builds its page with inline scripts.
- Because the session cookie is sent cross-site (so the app works in an iframe), a request
  that changes state is refused when its `Origin` is a site other than the app itself or an
  embedding site named in `PARLOR_FRAME_ANCESTORS`. The chat page inside an iframe runs on the
  app's own origin, so embedding keeps working; a foreign page posting on a visitor's behalf
  does not. Requests without `Origin` (the Python client, curl) carry no ambient browser
  cookie and pass. The app's own address is the request's `Host` and, on a Space, its
  public addresses (`SPACE_HOST`: the hf.space one, and a custom domain's, where the page
  runs even inside huggingface.co's frame). `X-Forwarded-Host` counts only behind a proxy
  the deployer declares (`PARLOR_TRUSTED_PROXY`): anyone else can send it, a foreign page
  too once Gradio's CORS has allowed the header in its preflight.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Where the page may load from (with frame-ancestors). Measured in Chromium on the chat page:
# Gradio's own page needs nothing else, and markup in an answer (img, video poster, audio,
# svg image, input type=image, CSS backgrounds) is otherwise fetched from anywhere.
LOADS = (
    "img-src 'self' data: blob:",
    "media-src 'self' data: blob:",
    "font-src 'self' data:",
    "style-src 'self' 'unsafe-inline'",
    "object-src 'none'",
    "base-uri 'self'",
)


def _netloc(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"//{url}")
    return (parts.netloc or "").lower()


class SecurityMiddleware:
    def __init__(
        self,
        app,
        *,
        frame_ancestors: str,
        public_urls: Sequence[str] = (),
        trusted_proxy: bool = False,
        image_origins: Sequence[str] = (),
    ) -> None:
        self.app = app
        sources = frame_ancestors.split()
        ancestors = ["frame-ancestors " + " ".join(sources)] if sources else []
        # A deployer's logo or favicon given as a URL: images from its origin, nothing else.
        loads = [" ".join([d, *image_origins]) if d.startswith("img-src") else d for d in LOADS]
        self.extra = (
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"content-security-policy", "; ".join([*ancestors, *loads]).encode()),
        )
        # "*" lets any site frame the page, not post to it: only named sites are trusted.
        self.trusted = {_netloc(s) for s in sources if s not in ("*", "'self'", "'none'")}
        self.trusted.update(_netloc(url) for url in public_urls)
        self.trusted_proxy = trusted_proxy

    def _same_site(self, origin: str, headers: dict[bytes, bytes]) -> bool:
        own = {_netloc(headers.get(b"host", b"").decode("latin-1"))}
        if self.trusted_proxy:  # the last proxy's word: a client's own value comes first
            forwarded = headers.get(b"x-forwarded-host", b"").decode("latin-1")
            own.add(_netloc(forwarded.split(",")[-1].strip()))
        return _netloc(origin) in (own | self.trusted) - {""}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if (
            scope["method"] not in SAFE_METHODS
            and origin
            and not self._same_site(origin, headers)  # includes "null" (sandboxed frames)
        ):
            body = b"Cross-site request refused: this site may not act on Parlor for you."
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses a request body past `limit` bytes before the app reads it (413).

    Gradio reads a whole JSON body into memory before any handler can look at its size:
    an `/import` document of a gigabyte would be parsed before the import limit refused it.
    A body that declares no length is cut off where it passes the limit."""

    def __init__(self, app, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = (
            f"This request is too large: a request may carry up to {limit / 2**20:,.0f} MB."
        ).encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": self.message})
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > self.limit else message

        await self.app(scope, counted, send)
