"""Titles written by a conversation's own model after its first answer: the prompt asking
for one, and the cleaning of what comes back (quotes, markdown, newlines; capped)."""

from __future__ import annotations

import re

MAX_CHARS = 60
QUESTION_CHARS = 600  # enough of the question to name it; keeps the request small
SECONDS = 20.0  # a model slower than this leaves the first words of the question
INSTRUCTION = (
    "Write a title of 3 to 6 words for a conversation that starts with the message below. "
    "Reply with the title only: no quotes, no punctuation at the end."
)
_THINKING = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_LABEL = re.compile(r"^(title|titre)\s*[:：-]\s*", re.I)
_MARKDOWN = re.compile(r"[*_`#>\[\]~|]")
_QUOTES = "\"'“”‘’«»„`"


def request(question: str) -> list[dict]:
    """The messages asking the model for a title of the conversation begun by `question`."""
    return [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": question[:QUESTION_CHARS]},
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
