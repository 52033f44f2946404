"""Titles written by a conversation's own model after its first answer: the prompt asking
for one, and the cleaning of what comes back (quotes, markdown, newlines; capped)."""

from __future__ import annotations

import re

MAX_CHARS = 60
QUESTION_CHARS = 600  # enough of the question to name it; keeps the request small
SECONDS = 20.0  # a model slower than this leaves the first words of the question
# Asked as a request of the person's, the answer begun with "Title:": the embedded model
# (135M) answers the question itself when told in a system prompt, but titles it so.
INSTRUCTION = "Summarize this request as a short title of 3 to 6 words.\n\nRequest: "
ANSWER_START = "Title:"
_THINKING = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_LABEL = re.compile(r"^(title|titre)\s*[:：-]\s*", re.I)
_MARKDOWN = re.compile(r"[*_`#>\[\]~|]")
_QUOTES = "\"'“”‘’«»„`"


def request(question: str) -> list[dict]:
    """The messages asking the model for a title of the conversation begun by `question`."""
    return [
        {"role": "user", "content": INSTRUCTION + question[:QUESTION_CHARS]},
        {"role": "assistant", "content": ANSWER_START},  # continued (see Endpoints.stream)
    ]


def clean(text: str) -> str:
    """The title in what the model wrote: its first non-empty line, without a "Title:"
    label, markdown, quotes or a closing full stop, at most MAX_CHARS ('' when none)."""
    text = _THINKING.sub("", text)
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = _MARKDOWN.sub("", _LABEL.sub("", line.strip()))
    line = " ".join(line.split()).strip(_QUOTES + " ").rstrip(".!:;,").strip(_QUOTES + " ")
    if len(line) <= MAX_CHARS:
        return line
    cut = line[: MAX_CHARS - 1].rsplit(" ", 1)[0] or line[: MAX_CHARS - 1]
    return cut.rstrip(" ,;:-") + "…"
