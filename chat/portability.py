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

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from .history import MAX_TITLE_CHARS, History, clip_title, new_id, now
from .settings import ImportLimits

FORMAT = "parlor-export"
VERSION = 1

# Plain dicts rather than pydantic models: a model per message (with its set of fields set)
# made parsing take ~5x the document's size in memory; dicts take ~2x.
_LENIENT = ConfigDict(extra="ignore")
# A message's fields and their values when the document leaves them out.
MESSAGE_DEFAULTS = {"created_at": "", "model": None, "incomplete": False, "notice": ""}


class PortabilityError(ValueError):
    """The document cannot be imported; the message says why."""


class ExportedMessage(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    role: Literal["user", "assistant"]
    content: str
    created_at: NotRequired[str]
    model: NotRequired[str | None]
    incomplete: NotRequired[bool]
    notice: NotRequired[str]


class ExportedConversation(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    title: NotRequired[str]
    model: str
    created_at: str
    updated_at: str
    messages: NotRequired[list[ExportedMessage]]


class Export(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    format: Literal["parlor-export"]
    version: Annotated[int, Field(ge=1, le=VERSION)]
    exported_at: NotRequired[str]
    settings: NotRequired[dict]
    conversations: NotRequired[list[ExportedConversation]]


_EXPORT = TypeAdapter(Export)


def export_owner(history: History, owner: str, settings: dict) -> dict:
    """All of an owner's data as one JSON-ready document."""
    conversations = []
    for summary in history.list_conversations(owner):
        conv = history.get_conversation(owner, summary["id"])
        if conv is None:
            continue
        conv["messages"] = [
            {k: m.get(k) for k in ("role", "content", *MESSAGE_DEFAULTS)} for m in conv["messages"]
        ]
        conversations.append(conv)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now(),
        "settings": settings,
        "conversations": conversations,
    }


def parse_export(text: str, limits: ImportLimits) -> Export:
    """The document, or a PortabilityError saying why it cannot be imported.

    Its size is checked before it is parsed, and pydantic parses and checks it in one pass
    from the text (no `json.loads` copy to validate afterwards)."""
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else 0
    if size > limits.max_bytes:
        raise PortabilityError(
            f"This file is too large to import ({_mb(size)}); the limit is "
            f"{_mb(limits.max_bytes)}. Split it, or ask the server's owner."
        )
    try:
        document = _EXPORT.validate_json(text)
    except ValidationError as e:
        raise PortabilityError(_explained(e)) from None
    _check_limits(document, limits)
    return document


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 1024:,.0f} KB"


def _explained(error: ValidationError) -> str:
    """The reason a person should read first among pydantic's errors."""
    errors = error.errors(include_url=False)
    for e in errors:
        if e["type"] in ("json_invalid", "json_type", "string_unicode") and not e["loc"]:
            return "This is not a Parlor export: it is not valid JSON."
    for e in errors:
        if e["loc"] in ((), ("format",)):
            return "This is not a Parlor export (its 'format' is not 'parlor-export')."
    for e in errors:
        if e["loc"] == ("version",) and e["type"] == "less_than_equal":
            return (
                f"This export is of a newer version ({e['input']}) than this Parlor reads "
                f"({VERSION})."
            )
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"This export is damaged at '{where}': {first['msg']}."


def _check_limits(document: Export, limits: ImportLimits) -> None:
    """Refuse a document holding more than an import may (see `ImportLimits`)."""
    conversations = document.get("conversations", [])
    if len(conversations) > limits.conversations:
        raise PortabilityError(
            f"This export holds {len(conversations):,} conversations; an import may hold up "
            f"to {limits.conversations:,}. Split it into smaller files."
        )
    for n, conv in enumerate(conversations, 1):
        where = f"Conversation {n} of this export"
        title, messages = conv.get("title", ""), conv.get("messages", [])
        if len(title) > MAX_TITLE_CHARS:
            raise PortabilityError(
                f"{where} has a title of {len(title):,} characters; the limit is "
                f"{MAX_TITLE_CHARS:,}."
            )
        if len(messages) > limits.messages:
            raise PortabilityError(
                f"{where} holds {len(messages):,} messages; the limit is "
                f"{limits.messages:,} a conversation."
            )
        for m in messages:
            user = m["role"] == "user"
            limit = limits.message_chars if user else limits.answer_chars
            if len(m["content"]) > limit:
                raise PortabilityError(
                    f"{where} holds {'a message' if user else 'an answer'} of "
                    f"{len(m['content']):,} characters; the limit is {limit:,}."
                )


def import_into(history: History, owner: str, document: Export) -> int:
    """Add the export's conversations to the owner's; ones already there are skipped."""
    return history.add_conversations(owner, map(_rows, document.get("conversations", [])))


def _rows(conv: ExportedConversation) -> tuple[dict, list[dict]]:
    """A conversation of the document as the store's row and messages (a new id each)."""
    row = {k: v for k, v in conv.items() if k != "messages"}
    row["title"] = clip_title(conv.get("title", ""))
    return row, [{"id": new_id(), **MESSAGE_DEFAULTS, **m} for m in conv.get("messages", [])]
