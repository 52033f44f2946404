"""Export and import of one person's data: a documented, versioned JSON document.

Schema, version 1 (`format` and `version` identify it; unknown fields are ignored on import
so later versions can add fields)::

    {
      "format": "parlor-export",
      "version": 1,
      "exported_at": "2026-11-22T10:00:00.000000+00:00",
      "settings": {"share_with_model_authors": false},
      "conversations": [
        {
          "id": "32 hex characters",
          "title": "...", "model": "model id",
          "created_at": "ISO 8601", "updated_at": "ISO 8601",
          "messages": [
            {"role": "user" | "assistant", "content": "...", "created_at": "ISO 8601",
             "model": "model id" | null, "incomplete": false, "notice": ""}
          ]
        }
      ]
    }
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .history import History, new_id, now

FORMAT = "parlor-export"
VERSION = 1


class PortabilityError(ValueError):
    """The document cannot be imported; the message says why."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ExportedMessage(_Lenient):
    role: Literal["user", "assistant"]
    content: str
    created_at: str = ""
    model: str | None = None
    incomplete: bool = False
    notice: str = ""


class ExportedConversation(_Lenient):
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    title: str = "New chat"
    model: str
    created_at: str
    updated_at: str
    messages: list[ExportedMessage] = []


class Export(_Lenient):
    format: Literal["parlor-export"]
    version: int = Field(ge=1, le=VERSION)
    exported_at: str = ""
    settings: dict = {}
    conversations: list[ExportedConversation] = []


def export_owner(history: History, owner: str, settings: dict) -> dict:
    """All of an owner's data as one JSON-ready document."""
    conversations = []
    for summary in history.list_conversations(owner):
        conv = history.get_conversation(owner, summary["id"])
        if conv is None:
            continue
        conv["messages"] = [
            {k: m.get(k) for k in ExportedMessage.model_fields} for m in conv["messages"]
        ]
        conversations.append(conv)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now(),
        "settings": settings,
        "conversations": conversations,
    }


def parse_export(text: str) -> Export:
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise PortabilityError("This is not a Parlor export: it is not valid JSON.") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise PortabilityError("This is not a Parlor export (its 'format' is not 'parlor-export').")
    if isinstance(raw.get("version"), int) and raw["version"] > VERSION:
        raise PortabilityError(
            f"This export is of a newer version ({raw['version']}) than this Parlor reads "
            f"({VERSION})."
        )
    try:
        return Export.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PortabilityError(f"This export is damaged at '{where}': {first['msg']}.") from None


def import_into(history: History, owner: str, document: Export) -> int:
    """Add the export's conversations to the owner's; ones already there are skipped."""
    imported = 0
    for conv in document.conversations:
        row = conv.model_dump(exclude={"messages"})
        messages = [{"id": new_id(), **m.model_dump()} for m in conv.messages]
        if history.add_conversation(owner, row, messages):
            imported += 1
    return imported
