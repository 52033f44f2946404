"""`/check`: anyone pastes a text and learns whether a model of this server wrote it with
the watermark on (chat/watermark.py). Plain HTML from the server, like chat/pages.py: a form
that posts back to itself, every text escaped, the text checked never stored or logged.
"""

from __future__ import annotations

import asyncio
from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from .pages import _page
from .watermark import MAX_CHECK_CHARS, THRESHOLD, CheckError, Detector, meaning

CHECK_STYLE = """
textarea{width:100%;font:inherit;padding:.5rem;border:1px solid #d1d5db;border-radius:.4rem}
select{font:inherit;padding:.2rem .4rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
.result{border:1px solid #e5e7eb;border-radius:.6rem;padding:.8rem 1rem;margin:1rem 0}
.verdict{font-size:1.15rem;font-weight:600}.error{color:#b91c1c}
td{padding:.1rem 1rem .1rem 0}
"""


def check_page(
    detector: Detector,
    *,
    text: str = "",
    model_id: str = "",
    result: dict | None = None,
    error: str = "",
) -> str:
    """The page: what the check is, the form (with the text checked), and what it found."""
    models = detector.models()
    if not models:
        body = "<h1>Check a text</h1><p>No model of this server watermarks its answers.</p>"
        return _page("Check a text", body)
    names = ", ".join(escape(m.name) for m in models)
    options = "".join(
        f"<option value='{escape(m.id)}'{' selected' if m.id == model_id else ''}>"
        f"{escape(m.name)}</option>"
        for m in models
    )
    body = (
        f"<style>{CHECK_STYLE}</style><h1>Was this text written by a model here?</h1>"
        f"<p>Answers of {names} on this Parlor carry an invisible watermark: the model prefers "
        f"words from lists only this server can compute. Paste a text to count them.</p>"
        f"<form method='post' action='/check'>"
        f"<label for='check-model'>Model</label>"
        f"<select id='check-model' name='model'>{options}</select>"
        f"<label for='check-text'>Text</label>"
        f"<textarea id='check-text' name='text' rows='12' maxlength='{MAX_CHECK_CHARS}'>"
        f"{escape(text)}</textarea>"
        f"<p><button class='start' id='check-submit' type='submit'>Check</button></p></form>"
        f"{_found(result, error)}"
        f"<p>{escape(meaning(THRESHOLD))}</p>"
    )
    return _page("Check a text", body)


def _found(result: dict | None, error: str) -> str:
    if error:
        return f"<div class='result' id='check-result'><p class='error'>{escape(error)}</p></div>"
    if result is None:
        return ""
    rows = (
        ("Tokens scored", f"{result['tokens']:,} (each pair of neighbours counted once)"),
        ("Green tokens", f"{result['green']:,}"),
        ("z-score", f"{result['z']:.2f} (watermarked from {result['threshold']:g})"),
        ("p-value", f"{result['p_value']:.2g}"),
    )
    table = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in rows)
    return (
        f"<div class='result' id='check-result'><p class='verdict'>{escape(result['verdict'])}"
        f"</p><table>{table}</table></div>"
    )


def add_check_page(app: FastAPI, detector: Detector) -> None:
    @app.get("/check", include_in_schema=False)
    def check_form(model: str = "") -> HTMLResponse:
        return HTMLResponse(check_page(detector, model_id=model))

    @app.post("/check", include_in_schema=False)
    async def check(request: Request) -> HTMLResponse:
        form = await request.form()
        text, model_id = str(form.get("text") or ""), str(form.get("model") or "")
        try:  # tokenising and scoring take a few ms per hundred tokens: off the event loop
            result = await asyncio.to_thread(detector.check, text, model_id)
        except CheckError as e:
            return HTMLResponse(check_page(detector, text=text, model_id=model_id, error=str(e)))
        return HTMLResponse(check_page(detector, text=text, model_id=model_id, result=result))
