"""One conversation as a Markdown document (the shown branch), for reading or keeping."""

from __future__ import annotations

import datetime as dt

REASONING = "Reasoning"  # the summary of the collapsed <details> holding an answer's reasoning


def as_markdown(conversation: dict) -> str:
    """`conversation` as ChatService.conversation returns it: its title, model and times,
    then each message of the shown branch under who wrote it and when. An answer's reasoning
    comes first, folded in a collapsed <details> (it renders closed on GitHub and most
    Markdown viewers)."""
    lines = [
        f"# {_one_line(conversation.get('title') or 'New chat')}",
        "",
        f"- Model: {conversation.get('model') or 'unknown'}",
        f"- Started: {_when(conversation.get('created_at'))}",
        f"- Last changed: {_when(conversation.get('updated_at'))}",
    ]
    for m in conversation.get("messages", []):
        lines += ["", "---", "", _heading(m), ""]
        if m.get("reasoning"):
            lines += [
                f"<details><summary>{REASONING}</summary>",
                "",
                m["reasoning"],
                "",
                "</details>",
                "",
            ]
        lines.append(m.get("content") or "")
        if m.get("notice"):
            lines += ["", f"*{m['notice']}*"]
    return "\n".join(lines).rstrip() + "\n"


def _heading(message: dict) -> str:
    who = "You" if message.get("role") == "user" else (message.get("model") or "Assistant")
    when = _when(message.get("created_at"))
    return f"### {who}" + (f" · {when}" if when != "unknown" else "")


def _when(stamp: object) -> str:
    """An ISO time, shortened to the minute (UTC); "unknown" when there is none."""
    try:
        when = dt.datetime.fromisoformat(stamp) if isinstance(stamp, str) and stamp else None
    except ValueError:
        when = None
    if when is None:
        return "unknown"
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _one_line(text: str) -> str:
    return " ".join(text.split())
