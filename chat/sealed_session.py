"""Gradio's sign-in cookie, sealed: what the browser keeps of a sign-in cannot be read.

Gradio keeps a signed-in person's OAuth details, their access token included, in its
`session` cookie; Starlette's SessionMiddleware signs it, but the JSON inside is plain base64.
Where that token pays for the person's inference (the `inference-api` scope: chat/quota.py),
no one who gets hold of the browser's cookies may read it. This middleware, outside Gradio's
app, encrypts the cookie as it leaves (Fernet: AES with an HMAC, under a key derived from
Parlor's secret; compressed first, so that it stays about the size Gradio made it, far from
a browser's 4 kB per cookie) and opens it as it comes back. A cookie it cannot open (sealed
under another secret, or set before sealing began) is dropped: the person is signed out,
never shown an error.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

from cryptography.fernet import Fernet, InvalidToken

GRADIO_COOKIE = "session"  # the name Gradio's SessionMiddleware gives its cookie
_KEY_CONTEXT = b"parlor-gradio-session-v1"  # a key of its own, never the cookie signer's


class SealedSessionCookie:
    """Pure ASGI middleware: Gradio's `session` cookie is sealed outside, open inside."""

    def __init__(self, app, *, secret: str) -> None:
        self.app = app
        digest = hashlib.sha256(_KEY_CONTEXT + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, self._opened(v) if k == b"cookie" else v) for k, v in scope["headers"]]

        async def send_sealed(message) -> None:
            if message["type"] == "http.response.start":
                sealed = [
                    (k, self._sealed(v) if k == b"set-cookie" else v)
                    for k, v in message.get("headers", [])
                ]
                message = {**message, "headers": sealed}
            await send(message)

        await self.app({**scope, "headers": headers}, receive, send_sealed)

    def _opened(self, cookie_header: bytes) -> bytes:
        """The Cookie header with Gradio's cookie opened (or left out, if it cannot be)."""
        pairs = []
        for pair in cookie_header.split(b";"):
            name, _, value = pair.strip().partition(b"=")
            if name != GRADIO_COOKIE.encode():
                pairs.append(pair.strip())
                continue
            try:
                pairs.append(name + b"=" + zlib.decompress(self._fernet.decrypt(value)))
            except (InvalidToken, zlib.error):
                continue  # not one of ours: as if the browser had sent none
        return b"; ".join(p for p in pairs if p)

    def _sealed(self, set_cookie: bytes) -> bytes:
        """A Set-Cookie header, its value sealed if it sets Gradio's cookie."""
        pair, sep, attributes = set_cookie.partition(b";")
        name, _, value = pair.partition(b"=")
        if name.strip() != GRADIO_COOKIE.encode() or value.strip(b'"') in (b"", b"null"):
            return set_cookie  # another cookie, or Gradio's being deleted
        return name + b"=" + self._fernet.encrypt(zlib.compress(value, 9)) + sep + attributes
