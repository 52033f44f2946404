"""Export and import of one person's data: a documented, versioned JSON document.

Schema, version 2 (`format` and `version` identify it; unknown fields are ignored on import
so later versions can add fields)::

    {
      "format": "parlor-export",
      "version": 2,
      "exported_at": "2026-11-22T10:00:00.000000+00:00",
      "settings": {"share_with_model_authors": false},
      "conversations": [
        {
          "id": "32 hex characters",
          "title": "...", "model": "model id",
          "created_at": "ISO 8601", "updated_at": "ISO 8601",
          "leaf_id": "id of the message shown last" | null,
          "messages": [
            {"id": "...", "parent_id": "id of the message it follows" | null,
             "role": "user" | "assistant", "content": "...", "reasoning": "",
             "created_at": "ISO 8601", "model": "model id" | null,
             "incomplete": false, "notice": "", "finish_reason": "stop" | "length" | null}
          ]
        }
      ]
    }

A conversation is a tree: each message follows its `parent_id` (null: it starts the
conversation), so an edited question or a retried answer is a sibling of the one it
replaces. `leaf_id` names the message whose branch is shown (null or absent: the last
message). `reasoning` is a thinking model's reasoning before its answer.

Version 1, which this still imports, has no `id`, `parent_id`, `leaf_id`, `reasoning` nor
`finish_reason`: its messages are one branch, each following the one before it. Imported
messages get new ids, in both versions (their `parent_id` and `leaf_id` follow).
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from .history import MAX_TITLE_CHARS, SHAPE, clip_title, new_id, now
from .settings import ImportLimits
from .store import Store

FORMAT = "parlor-export"
VERSION = 2
MAX_ID_CHARS = 100  # a message id of the document; ours are 32 hex digits

# Plain dicts rather than pydantic models: a model per message (with its set of fields set)
# made parsing take ~5x the document's size in memory; dicts take ~2x.
_LENIENT = ConfigDict(extra="ignore")
# A message's fields and their values when the document leaves them out.
MESSAGE_DEFAULTS = {
    "reasoning": "",
    "created_at": "",
    "model": None,
    "incomplete": False,
    "notice": "",
    "finish_reason": None,
    "feedback": None,
}
_CONVERSATION_FIELDS = ("id", "title", "model", "created_at", "updated_at")
MessageId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class PortabilityError(ValueError):
    """The document cannot be imported; the message says why."""


class Feedback(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    rating: Literal["up", "down"]
    comment: Annotated[str, Field(max_length=2000)]
    at: str


class ExportedMessage(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    id: NotRequired[MessageId]  # version 2 on
    parent_id: NotRequired[MessageId | None]  # version 2 on
    role: Literal["user", "assistant"]
    content: str
    reasoning: NotRequired[str]
    created_at: NotRequired[str]
    model: NotRequired[str | None]
    incomplete: NotRequired[bool]
    notice: NotRequired[str]
    finish_reason: NotRequired[str | None]
    feedback: NotRequired[Feedback | None]  # optional in version 2; absent means none


class ExportedConversation(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    title: NotRequired[str]
    model: str
    created_at: str
    updated_at: str
    leaf_id: NotRequired[MessageId | None]  # version 2 on
    messages: NotRequired[list[ExportedMessage]]


class Export(TypedDict):
    __pydantic_config__ = _LENIENT  # type: ignore[misc]
    format: Literal["parlor-export"]
    version: Annotated[int, Field(ge=1, le=VERSION)]
    exported_at: NotRequired[str]
    settings: NotRequired[dict]
    conversations: NotRequired[list[ExportedConversation]]


_EXPORT = TypeAdapter(Export)


def export_owner(history: Store, owner: str, settings: dict) -> dict:
    """All of an owner's data as one JSON-ready document."""
    conversations = []
    for summary in history.list_conversations(owner):
        conv = history.get_conversation(owner, summary["id"])
        if conv is not None:
            conversations.append(_exported(conv))
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now(),
        "settings": settings,
        "conversations": conversations,
    }


def _exported(conv: dict) -> dict:
    """A stored conversation (`History.get_conversation`) as the document holds it."""
    return {
        **{k: conv.get(k) for k in _CONVERSATION_FIELDS},
        "leaf_id": conv["leaf_id"],
        "messages": [
            {k: m.get(k, MESSAGE_DEFAULTS.get(k)) for k in _MESSAGE_FIELDS}
            for m in conv["messages"]
        ],
    }


_MESSAGE_FIELDS = ("id", "parent_id", "role", "content", *MESSAGE_DEFAULTS)


def parse_export(text: str, limits: ImportLimits) -> Export:
    """The document, or a PortabilityError saying why it cannot be imported.

    Its size is checked before it is parsed, and pydantic parses and checks it in one pass
    from the text (no `json.loads` copy to validate afterwards)."""
    check_size(len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else 0, limits)
    try:
        document = _EXPORT.validate_json(text)
    except ValidationError as e:
        raise PortabilityError(_explained(e)) from None
    _check_limits(document, limits)
    return document


def check_size(size: int, limits: ImportLimits, what: str = "This file") -> None:
    """Refuse a document of `size` bytes past the import size limit."""
    if size > limits.max_bytes:
        raise PortabilityError(
            f"{what} is too large to import ({_mb(size)}); the limit is "
            f"{_mb(limits.max_bytes)}. Split it, or ask the server's owner."
        )


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
    """Refuse a document holding more than an import may (see `ImportLimits`), or (version
    2) a conversation whose messages do not make a tree."""
    conversations = document.get("conversations", [])
    if len(conversations) > limits.conversations:
        raise PortabilityError(
            f"This export holds {len(conversations):,} conversations; an import may hold up "
            f"to {limits.conversations:,}. Split it into smaller files."
        )
    for n, conv in enumerate(conversations, 1):
        check_conversation(n, conv, limits, tree=document["version"] >= 2)


def check_conversation(
    n: int, conv: ExportedConversation, limits: ImportLimits, *, tree: bool
) -> None:
    """Refuse the `n`th conversation when it holds more than an import may, or (`tree`)
    when its messages do not make a tree."""
    where = _where(n, conv)
    title, messages = conv.get("title", ""), conv.get("messages", [])
    if len(title) > MAX_TITLE_CHARS:
        raise PortabilityError(
            f"{where} has a title of {len(title):,} characters; the limit is {MAX_TITLE_CHARS:,}."
        )
    if len(messages) > limits.messages:
        raise PortabilityError(
            f"{where} holds {len(messages):,} messages; the limit is "
            f"{limits.messages:,} a conversation."
        )
    for m in messages:
        _check_lengths(m, where, limits)
    if tree:
        _check_tree(conv, where)


def _where(n: int, conv: ExportedConversation) -> str:
    """How an error names a conversation: its place in the document, and its title."""
    title = " ".join(conv.get("title", "").split())
    if len(title) > 40:
        title = title[:40] + "…"
    return f"Conversation {n} of this export" + (f' ("{title}")' if title else "")


def _check_lengths(message: ExportedMessage, where: str, limits: ImportLimits) -> None:
    user = message["role"] == "user"
    limit = limits.message_chars if user else limits.answer_chars
    if len(message["content"]) > limit:
        raise PortabilityError(
            f"{where} holds {'a message' if user else 'an answer'} of "
            f"{len(message['content']):,} characters; the limit is {limit:,}."
        )
    reasoning = message.get("reasoning", "")
    if len(reasoning) > limits.answer_chars:
        raise PortabilityError(
            f"{where} holds an answer's reasoning of {len(reasoning):,} characters; the limit "
            f"is {limits.answer_chars:,}."
        )


def _check_tree(conv: ExportedConversation, where: str) -> None:
    """Version 2: every message has an id of its own, follows a message of the same
    conversation (or none), never itself through its ancestors, and `leaf_id` names one."""
    parents: dict[str, str | None] = {}
    for n, m in enumerate(conv.get("messages", []), 1):
        if "id" not in m:
            raise PortabilityError(f"{where}: its message {n} has no 'id'.")
        if m["id"] in parents:
            raise PortabilityError(f"{where}: two of its messages have the id '{m['id']}'.")
        parents[m["id"]] = m.get("parent_id")
    for mid, parent in parents.items():
        if parent is not None and parent not in parents:
            raise PortabilityError(
                f"{where}: message '{mid}' follows '{parent}', which is not one of its messages."
            )
    rooted: set[str] = set()  # messages whose ancestors were followed up to a first message
    for mid in parents:
        line: dict[str, None] = {}  # this walk, in order (a dict: found in one step)
        at: str | None = mid
        while at is not None and at not in rooted:
            if at in line:
                raise PortabilityError(
                    f"{where}: message '{at}' follows itself through its 'parent_id's; the "
                    "messages of a conversation make a tree."
                )
            line[at] = None
            at = parents[at]
        rooted.update(line)
    leaf = conv.get("leaf_id")
    if leaf is not None and leaf not in parents:
        raise PortabilityError(f"{where}: its leaf_id '{leaf}' is not one of its messages.")


def import_into(history: Store, owner: str, document: Export) -> int:
    """Add the export's conversations to the owner's; ones already there are skipped."""
    tree = document["version"] >= 2
    stamp = now()  # retention counts from here (chat/retention.py), whatever their dates
    rows = (_rows(conv, tree=tree) for conv in document.get("conversations", []))
    return history.add_conversations(
        owner, (({**row, "imported_at": stamp}, messages) for row, messages in rows)
    )


def _rows(conv: ExportedConversation, *, tree: bool) -> tuple[dict, list[dict]]:
    """A conversation of the document as the store's row and messages, each message with a
    new id (its `parent_id` and the `leaf_id` follow). Version 1 (`tree` false) is one
    branch, in order."""
    messages = conv.get("messages", [])
    if tree:
        fresh = {m["id"]: new_id() for m in messages}
        ids = list(fresh.values())
        parents = [fresh.get(m.get("parent_id")) for m in messages]  # type: ignore[arg-type]
        leaf = fresh.get(conv.get("leaf_id"))  # type: ignore[arg-type]
    else:
        ids = [new_id() for _ in messages]
        parents, leaf = [None, *ids][: len(ids)], None  # each follows the one before
    row = {k: v for k, v in conv.items() if k not in ("messages", "leaf_id")}
    row["title"] = clip_title(conv.get("title", ""))
    row["leaf_id"] = leaf or (ids[-1] if ids else None)
    row["shape"] = SHAPE
    return row, [
        {**MESSAGE_DEFAULTS, **m, "id": i, "parent_id": p}
        for m, i, p in zip(messages, ids, parents, strict=True)
    ]
