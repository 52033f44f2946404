"""A conversation as a tree of messages: pure functions over a conversation's message rows.

Every message names its `parent_id` (None for a root); a conversation shows one path, from a
root to its shown leaf. Editing a question or answering again adds a sibling, so nothing a
person wrote or read is ever replaced. Rows are kept in the order they were created, which is
also the order of siblings. Files written before trees existed hold a plain list: `as_tree`
reads it as one branch.
"""

from __future__ import annotations

from collections.abc import Iterable


def as_tree(messages: Iterable[dict]) -> list[dict]:
    """The rows with a `parent_id` each: a row without one (an old file) follows the row
    before it, so a flat list reads as a single branch."""
    rows: list[dict] = []
    previous = None
    for m in messages:
        if "parent_id" not in m:
            m = {**m, "parent_id": previous}
        rows.append(m)
        previous = m["id"]
    return rows


def by_id(messages: Iterable[dict]) -> dict[str, dict]:
    return {m["id"]: m for m in messages}


def path(messages: list[dict], leaf_id: str | None) -> list[dict]:
    """The messages from a root down to `leaf_id` (empty when there is no such message). A
    parent missing from the rows ends the path there, as does a loop."""
    rows = by_id(messages)
    out: list[dict] = []
    seen: set[str] = set()
    node = rows.get(leaf_id) if leaf_id else None
    while node is not None and node["id"] not in seen:
        seen.add(node["id"])
        out.append(node)
        node = rows.get(node.get("parent_id"))
    out.reverse()
    return out


def replies(messages: Iterable[dict]) -> dict[str | None, list[str]]:
    """Every message's replies' ids, oldest first, by parent id (None: the roots), in one
    pass: what siblings and children of many messages are read from."""
    out: dict[str | None, list[str]] = {}
    for m in messages:
        out.setdefault(m.get("parent_id"), []).append(m["id"])
    return out


def children(messages: list[dict], message_id: str | None) -> list[dict]:
    """The replies to `message_id` (the roots when it is None), oldest first."""
    return [m for m in messages if m.get("parent_id") == message_id]


def siblings(messages: list[dict], message_id: str) -> list[dict]:
    """The message and the others with the same parent, oldest first."""
    rows = by_id(messages)
    if message_id not in rows:
        return []
    return children(messages, rows[message_id].get("parent_id"))


def deepest(messages: list[dict], message_id: str) -> str:
    """The leaf reached from `message_id` by following, at each step, the newest reply."""
    kids: dict[str | None, list[dict]] = {}
    for m in messages:
        kids.setdefault(m.get("parent_id"), []).append(m)
    seen: set[str] = set()
    node = message_id
    while kids.get(node) and node not in seen:
        seen.add(node)
        node = kids[node][-1]["id"]
    return node


def shown_leaf(messages: list[dict], leaf_id: str | None) -> str | None:
    """The leaf to show: the stored one if it is a message here, else the newest message's
    deepest descendant (an old file, or a leaf that was never written)."""
    if leaf_id and any(m["id"] == leaf_id for m in messages):
        return leaf_id
    return deepest(messages, messages[-1]["id"]) if messages else None
