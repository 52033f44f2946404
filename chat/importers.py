"""Imports from other chat apps, recognised by their shape (docs/import.md says where each
shape comes from):

- a Parlor export (a JSON object, see `portability`);
- a HuggingChat data export: a zip holding `conversations.json`, or that JSON alone (a list
  of conversations whose `messages` name their `ancestors`);
- a ChatGPT `conversations.json` (a list of conversations whose `mapping` is a message tree,
  `current_node` the message shown), alone or in ChatGPT's export zip;
- an Open WebUI chat export (a list of chats, each with `chat.history.messages`, a tree by
  `parentId`, and `currentId`; or older ones with a list `chat.messages`).

Each foreign conversation becomes a version-2 Parlor conversation whose id is derived from
its source's id, so importing the same file twice adds nothing. One that cannot be read, or
holds more than an import may, is skipped and reported with its reason; a document past the
size or count limits is refused whole, as a Parlor export is.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .history import MAX_TITLE_CHARS, now
from .portability import (
    FORMAT,
    Export,
    PortabilityError,
    check_conversation,
    check_size,
    parse_export,
)
from .settings import ImportLimits

MAX_ZIP_MEMBERS = 100_000  # a HuggingChat zip holds one file per uploaded image
MAX_REASONS = 20  # the reasons listed in a report; the count covers them all
SOURCES = {
    "parlor": "Parlor export",
    "huggingchat": "HuggingChat export",
    "chatgpt": "ChatGPT export",
    "openwebui": "Open WebUI export",
}


class Unreadable(ValueError):
    """One conversation cannot be read; the message says why (it is skipped and counted)."""


@dataclass
class Batch:
    """A document read for import: its `kind` (a key of SOURCES), its conversations as a
    Parlor export, and the reasons of the conversations skipped."""

    kind: str
    document: Export
    skipped: list[str] = field(default_factory=list)

    def report(self, imported: int, notes: list[str]) -> dict:
        """The result of the import: `imported` always, the rest only when there is some."""
        out: dict = {"imported": imported}
        if self.skipped:
            reasons = self.skipped[:MAX_REASONS]
            if len(self.skipped) > MAX_REASONS:
                reasons.append(f"… and {len(self.skipped) - MAX_REASONS:,} more.")
            out |= {"skipped": len(self.skipped), "reasons": reasons}
        if notes:
            out["notes"] = notes
        return out


def read(data: str | bytes, limits: ImportLimits) -> Batch:
    """The document to import from an upload's bytes or /import's text, or a
    PortabilityError saying why it cannot be imported."""
    text = _text_of(data, limits)
    if text.lstrip()[:1] != "[":
        return Batch("parlor", parse_export(text, limits))
    check_size(len(text.encode("utf-8", "surrogatepass")), limits)
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        raise PortabilityError("This file cannot be imported: it is not valid JSON.") from None
    if not isinstance(items, list) or not any(isinstance(i, dict) for i in items):
        raise PortabilityError(
            "This file holds no conversations."
            if items == []
            else "This file is not one Parlor can import: it should be a Parlor, HuggingChat, "
            "ChatGPT or Open WebUI export."
        )
    return _convert(_recognise(items), items, limits)


# -- from bytes, a zip, or text ----------------------------------------------------------


def _text_of(data: str | bytes, limits: ImportLimits) -> str:
    """The JSON text of an upload's bytes, of /import's text, or of a zip in either (as
    /import's text, a data URL: "data:application/zip;base64,..." or any other type)."""
    if isinstance(data, str) and data.startswith("data:") and ";base64," in data[:100]:
        data = _unbase64(data.split(";base64,", 1)[1], limits)
    if isinstance(data, bytes) and data.startswith(b"PK"):
        return _from_zip(data, limits)
    if isinstance(data, bytes):
        check_size(len(data), limits)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise PortabilityError(
                "This file cannot be imported: it is neither a zip nor UTF-8 text."
            ) from None
    return data


def _unbase64(payload: str, limits: ImportLimits) -> bytes:
    check_size(len(payload) * 3 // 4, limits, "This zip")  # before decoding it
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise PortabilityError(
            "This zip cannot be read: the text after ';base64,' is not base64."
        ) from None


def _from_zip(blob: bytes, limits: ImportLimits) -> str:
    """The `conversations.json` of a HuggingChat or ChatGPT export zip. Nothing is written
    to disk; a member named outside the archive, or one that would unpack past the size
    limit (a zip bomb), refuses the whole zip."""
    check_size(len(blob), limits, "This zip")
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, ValueError):
        raise PortabilityError("This zip is damaged: it cannot be opened.") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise PortabilityError(f"This zip holds {len(members):,} files: too many to read.")
        for member in members:
            _check_member_name(member.filename)
        found = [m for m in members if PurePosixPath(m.filename).name == "conversations.json"]
        if not found:
            raise PortabilityError(
                "This zip holds no conversations.json: it is not a HuggingChat or ChatGPT "
                "data export."
            )
        return _read_member(archive, min(found, key=lambda m: m.filename.count("/")), limits)


def _check_member_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in name:
        raise PortabilityError(
            f"This zip is refused: it holds a file named '{name[:80]}', outside the archive "
            "(a path traversal). Nothing of it was read."
        )


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limits: ImportLimits) -> str:
    if member.flag_bits & 0x1:
        raise PortabilityError("This zip is encrypted: export your data again without a password.")
    check_size(member.file_size, limits, "The conversations.json in this zip")
    try:
        with archive.open(member) as f:
            raw = f.read(limits.max_bytes + 1)  # its header may lie about its size
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
        raise PortabilityError(
            "This zip is damaged: its conversations.json cannot be read."
        ) from None
    check_size(len(raw), limits, "The conversations.json in this zip")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PortabilityError("The conversations.json in this zip is not UTF-8 text.") from None


# -- recognising and converting ------------------------------------------------------------


def _convert(kind: str, items: list, limits: ImportLimits) -> Batch:
    if len(items) > limits.conversations:
        raise PortabilityError(
            f"This export holds {len(items):,} conversations; an import may hold up to "
            f"{limits.conversations:,}. Split it into smaller files."
        )
    batch = Batch(kind, {"format": FORMAT, "version": 2, "conversations": []})
    for n, item in enumerate(items, 1):
        try:
            conv = CONVERTERS[kind](item)
            check_conversation(n, conv, limits, tree=True)  # type: ignore[arg-type]
        except (Unreadable, PortabilityError) as e:
            batch.skipped.append(f"Conversation {n}{_titled(item)}: {e}")
        except (KeyError, TypeError, AttributeError, ValueError):
            batch.skipped.append(
                f"Conversation {n}{_titled(item)}: it cannot be read (its shape is not that of "
                f"a {SOURCES[kind]})."
            )
        else:
            batch.document["conversations"].append(conv)  # type: ignore[typeddict-item]
    return batch


def _recognise(items: list) -> str:
    """Which app's export a list of conversations is, by its first conversation's shape."""
    first = next(i for i in items if isinstance(i, dict))
    if "mapping" in first:
        return "chatgpt"
    if "chat" in first or "history" in first:
        return "openwebui"
    messages = first.get("messages")
    if isinstance(messages, list) and ("_id" in first or _said_from(messages)):
        return "huggingchat"
    if isinstance(messages, list):
        return "openwebui"  # an old Open WebUI chat: a list of {role, content}
    raise PortabilityError(
        "This file is not one Parlor can import: a list, but not of HuggingChat, ChatGPT or "
        "Open WebUI conversations."
    )


def _said_from(messages: list) -> bool:
    return any(isinstance(m, dict) and "from" in m for m in messages[:3])


def _titled(item: object) -> str:
    title = item.get("title") if isinstance(item, dict) else None
    if not isinstance(title, str) or not title.strip():
        return ""
    title = " ".join(title.split())
    return f' ("{title[:40]}…")' if len(title) > 40 else f' ("{title}")'


@dataclass
class Node:
    """A message of a foreign conversation, before it becomes Parlor's."""

    id: str
    parent: str | None
    role: str
    content: str
    reasoning: str = ""
    created_at: str = ""
    model: object = None  # a model's name, as the export gives it


def _conversation(
    kind: str,
    source_id: object,
    item: dict,
    nodes: list[Node],
    *,
    title: object,
    model: object,
    times: tuple[str, str],
    leaf: str | None,
) -> dict:
    """A Parlor conversation (as an export holds it) of a foreign one's messages: only the
    person's and the model's messages with some text are kept (system prompts, tool calls
    and hidden ones are not), each one following its nearest kept ancestor."""
    kept = [n for n in nodes if n.role in ("user", "assistant") and (n.content or n.reasoning)]
    if not kept:
        raise Unreadable("it holds no message to import.")
    parents = {n.id: n.parent for n in nodes}
    ids = {n.id: str(i) for i, n in enumerate(kept, 1)}

    def nearest(at: str | None) -> str | None:
        seen: set[str] = set()
        while at is not None and at not in ids and at not in seen:
            seen.add(at)
            at = parents.get(at)
        return ids.get(at) if at is not None else None

    name = _name(model) or _last_model(kept)
    stamps = [n.created_at for n in kept if n.created_at]
    created, updated = times
    return {
        "id": stable_id(kind, source_id, item),
        "title": title.strip()[:MAX_TITLE_CHARS] if isinstance(title, str) else "",
        "model": name or "unknown",
        "created_at": created or min(stamps, default="") or now(),
        "updated_at": updated or max(stamps, default="") or created or now(),
        "leaf_id": nearest(leaf) or ids[kept[-1].id],
        "messages": [
            {
                "id": ids[n.id],
                "parent_id": nearest(n.parent),
                "role": n.role,
                "content": n.content,
                "reasoning": n.reasoning,
                "created_at": n.created_at,
                "model": (_name(n.model) or name) if n.role == "assistant" else None,
            }
            for n in kept
        ],
    }


def _last_model(nodes: list[Node]) -> str | None:
    return next((_name(n.model) for n in reversed(nodes) if _name(n.model)), None)


def _name(value: object) -> str | None:
    """A model's name as the export gives it, when it is text (capped like a title)."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split())[:MAX_TITLE_CHARS] or None


def stable_id(kind: str, source_id: object, item: dict) -> str:
    """A conversation's Parlor id: the same for the same source conversation, every time."""
    if isinstance(source_id, str | int) and str(source_id):
        key = f"{kind}:{source_id}"
    else:  # no id in the source: its whole content names it
        key = f"{kind}:" + json.dumps(item, sort_keys=True, default=str)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def iso_time(value: object) -> str:
    """A time as Parlor stores it, from seconds since the epoch (or milliseconds), an ISO
    string, or a MongoDB `{"$date": ...}`; "" when there is none to read."""
    if isinstance(value, dict):
        value = value.get("$date")
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else value
            when = dt.datetime.fromtimestamp(seconds, dt.UTC)
        elif isinstance(value, str) and value:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        else:
            return ""
    except (ValueError, OverflowError, OSError):
        return ""
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _text(value: object) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [
            p if isinstance(p, str) else p.get("text") for p in value if isinstance(p, str | dict)
        ]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return ""


def _part(value: object) -> bool:
    return isinstance(value, str | dict)


# -- HuggingChat (huggingface/chat-ui) -----------------------------------------------------


def from_huggingchat(item: dict) -> dict:
    messages = item["messages"]
    tree = any("ancestors" in m for m in messages)
    nodes, previous = [], None
    for m in messages:
        mid = str(m["id"])
        parent = (m.get("ancestors") or [None])[-1] if tree else previous
        nodes.append(
            Node(
                id=mid,
                parent=str(parent) if parent is not None else None,
                role=m["from"],
                content=_text(m.get("content")),
                reasoning=_text(m.get("reasoning")),
                created_at=iso_time(m.get("createdAt")),
                model=(m.get("routerMetadata") or {}).get("model"),
            )
        )
        previous = mid
    source_id = item.get("_id")
    if isinstance(source_id, dict):
        source_id = source_id.get("$oid")
    # HuggingChat shows the branch of the message written last
    leaf = nodes[-1].id if nodes else None
    times = (iso_time(item.get("createdAt")), iso_time(item.get("updatedAt")))
    return _conversation(
        "huggingchat",
        source_id,
        item,
        nodes,
        title=item.get("title"),
        model=item.get("model"),
        times=times,
        leaf=leaf,
    )


# -- ChatGPT ---------------------------------------------------------------------------------


def from_chatgpt(item: dict) -> dict:
    mapping = item["mapping"]
    if not isinstance(mapping, dict):
        raise Unreadable("its 'mapping' of messages is not an object.")
    nodes = [_chatgpt_node(key, node) for key, node in mapping.items()]
    times = (iso_time(item.get("create_time")), iso_time(item.get("update_time")))
    return _conversation(
        "chatgpt",
        item.get("conversation_id") or item.get("id"),
        item,
        nodes,
        title=item.get("title"),
        model=item.get("default_model_slug"),
        times=times,
        leaf=item.get("current_node"),
    )


def _chatgpt_node(key: str, node: dict) -> Node:
    message = node.get("message") or {}
    content = message.get("content") or {}
    metadata = message.get("metadata") or {}
    shown = content.get("content_type") in ("text", "multimodal_text") and not metadata.get(
        "is_visually_hidden_from_conversation"
    )
    return Node(
        id=str(key),
        parent=node.get("parent"),
        role=(message.get("author") or {}).get("role", "") if shown else "",
        content=_text(content.get("parts")) if shown else "",
        created_at=iso_time(message.get("create_time")),
        model=metadata.get("model_slug"),
    )


# -- Open WebUI ------------------------------------------------------------------------------


def from_openwebui(item: dict) -> dict:
    chat = item.get("chat", item)
    history = chat.get("history") or {}
    tree = history.get("messages")
    if isinstance(tree, dict) and tree:
        nodes = [_webui_node(key, m, m.get("parentId")) for key, m in tree.items()]
        leaf = history.get("currentId")
    else:  # older chats: a list, each following the one before unless it names a parent
        nodes, previous = [], None
        for n, m in enumerate(chat["messages"]):
            node = _webui_node(m.get("id") or f"#{n}", m, m.get("parentId", previous))
            nodes.append(node)
            previous = node.id
        leaf = None
    models = chat.get("models")
    model = models[0] if isinstance(models, list) and models else None
    times = (iso_time(item.get("created_at")), iso_time(item.get("updated_at")))
    return _conversation(
        "openwebui",
        item.get("id") or chat.get("id"),
        item,
        nodes,
        title=item.get("title") or chat.get("title"),
        model=model,
        times=times,
        leaf=leaf,
    )


def _webui_node(key: object, m: dict, parent: object) -> Node:
    return Node(
        id=str(key),
        parent=str(parent) if parent is not None else None,
        role=m.get("role", ""),
        content=_text(m.get("content")),
        created_at=iso_time(m.get("timestamp")),
        model=m.get("model"),
    )


CONVERTERS: dict[str, Callable[[dict], dict]] = {
    "huggingchat": from_huggingchat,
    "chatgpt": from_chatgpt,
    "openwebui": from_openwebui,
}


def models_of(conversations: Iterable[dict]) -> list[str]:
    """The model names the conversations were made with, each once."""
    return list(dict.fromkeys(c["model"] for c in conversations))
