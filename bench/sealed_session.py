"""Issue 21: the sealed sign-in cookie (chat/sealed_session.py), on a Space that asks for
the `inference-api` scope.

Gradio's `session` cookie of a signed-in person (a sign-in as Hugging Face issues it, about
2 kB) is opened on each request that brings it and sealed again on each response that sets
it (Starlette's SessionMiddleware sets it on every response while someone is signed in):
- the CPU time of one open and one seal, median of ROUNDS batches, baseline: the same
  request and response passed through untouched (the cookie parsed as Parlor parses it);
- the sealed cookie's size against Gradio's own (a browser keeps at most 4,096 bytes).

    python -m bench.sealed_session
"""

from __future__ import annotations

import base64
import json
import secrets
import time

from bench.common import Figure, Report, bench_main, median
from chat.identity import read_cookie
from chat.sealed_session import SealedSessionCookie

ROUNDS, BATCH = 15, 200


def gradio_cookie() -> bytes:
    """A `session` value shaped as Gradio's: base64 JSON of the sign-in, a time, a signature."""
    claims = {"sub": "6123456789abcdef01234567", "name": "Some Person", "aud": "client-id"}
    claims |= {"preferred_username": "someperson", "iss": "https://huggingface.co"}
    claims |= {"picture": "https://cdn-avatars.huggingface.co/v1/production/uploads/a/b.png"}
    jwt = ".".join(secrets.token_urlsafe(n) for n in (60, 420, 256))
    info = {"access_token": "hf_oauth_" + secrets.token_urlsafe(24), "id_token": jwt}
    info |= {"scope": "openid profile inference-api", "expires_at": 1_790_000_000}
    info |= {"token_type": "bearer", "expires_in": 28_800, "userinfo": claims}
    body = base64.b64encode(json.dumps({"oauth_info": info}).encode())
    return body + b".aGVsbG8." + secrets.token_urlsafe(20).encode()


def per_call_us(work) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(BATCH):
            work()
        times.append((time.perf_counter() - start) / BATCH * 1e6)
    return median(times)


def run(report: Report) -> None:
    middleware = SealedSessionCookie(None, secret=secrets.token_urlsafe(48))
    value = gradio_cookie()
    set_cookie = b"session=" + value + b"; path=/; Max-Age=1209600; httponly; samesite=none"
    sealed = middleware._sealed(set_cookie).split(b";")[0]
    header = b"parlor-session=" + secrets.token_hex(40).encode() + b"; " + sealed
    plain = header.decode("latin-1")
    report.add(
        Figure(
            "opening the cookie of one request",
            per_call_us(lambda: middleware._opened(header)),
            "µs",
            baseline=per_call_us(lambda: read_cookie(plain, "session")),
            baseline_name="parsing the Cookie header alone",
        )
    )
    report.add(
        Figure(
            "sealing the cookie of one response",
            per_call_us(lambda: middleware._sealed(set_cookie)),
            "µs",
            note="zlib level 9, then Fernet",
        )
    )
    report.add(
        Figure(
            "sealed cookie (name and value)",
            len(sealed),
            "bytes",
            baseline=len(b"session=" + value),
            baseline_name="Gradio's own",
            target="< 4,096 bytes",
            met=len(sealed) < 4096,
        )
    )


def main() -> None:
    bench_main(__doc__, "sealed_session", "the sealed sign-in cookie (issue 21)", run)


if __name__ == "__main__":
    main()
