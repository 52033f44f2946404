"""Security headers and cross-site request refusal, as one ASGI middleware.

- `Content-Security-Policy: frame-ancestors ...` says which sites may embed Parlor in a frame
  (`PARLOR_FRAME_ANCESTORS`; `*`, the default, allows any site, like a public Space).
- Because the session cookie is sent cross-site (so the app works in an iframe), a request
  that changes state is refused when its `Origin` is a site other than the app itself or an
  embedding site named in `PARLOR_FRAME_ANCESTORS`. The chat page inside an iframe runs on the
  app's own origin, so embedding keeps working; a foreign page posting on a visitor's behalf
  does not. Requests without `Origin` (the Python client, curl) carry no ambient browser
  cookie and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _netloc(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"//{url}")
    return (parts.netloc or "").lower()


class SecurityMiddleware:
    def __init__(self, app, *, frame_ancestors: str, public_url: str = "") -> None:
        self.app = app
        sources = frame_ancestors.split()
        self.csp = ("frame-ancestors " + " ".join(sources)).encode() if sources else None
        # "*" lets any site frame the page, not post to it: only named sites are trusted.
        self.trusted = {_netloc(s) for s in sources if s not in ("*", "'self'", "'none'")}
        if public_url:
            self.trusted.add(_netloc(public_url))

    def _same_site(self, origin: str, headers: dict[bytes, bytes]) -> bool:
        own = {
            _netloc(headers.get(b"host", b"").decode("latin-1")),
            _netloc(headers.get(b"x-forwarded-host", b"").decode("latin-1").split(",")[0]),
        }
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
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                ]
                if self.csp:
                    extra.append((b"content-security-policy", self.csp))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
