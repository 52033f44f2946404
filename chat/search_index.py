"""Search of a person's conversations: the text of their messages, kept in memory.

`SearchIndex` holds, for each owner who searched lately, every conversation's message
contents (every branch) lower-cased and joined in one string, read from the conversation
files on that owner's first search. A search is then a substring test per conversation,
newest first, with no file read but those of the snippets it returns.

Kept right by two means. Every write `History` makes calls `forget(owner, id)`, which drops
that conversation's text at once (a deleted conversation's words leave memory with its
file); it is read again from its file at the next search. And each file is known by its
inode, mtime and size: when the owner's folder changed (another process, a restore), the
next search compares them and reads again the files that changed, and forgets those gone.
Nothing is written to disk, so deleting files leaves no words behind, and there is nothing
to rebuild after damage: a damaged file is searched by title only, and logged by name.

Memory: about the characters of a person's messages (1 byte each for ASCII, 2 or 4 for
other scripts) plus PER_CONVERSATION bytes a conversation, for the people who searched most
lately, up to SEARCH_MEMORY bytes in all (the person searching is kept whatever their size).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger("parlor.search")

SEARCH_MEMORY = 256 * 2**20  # bytes of message text kept for all people together
PER_CONVERSATION = 200  # bytes of bookkeeping a conversation costs beside its text
SNIPPET_CHARS = 160  # an excerpt's length, about two lines of the sidebar
SNIPPET_BEFORE = 50  # of which before the match
_SEP = "\x00"  # between two messages' texts; never in a query word (see `words`)


def words(query: str) -> list[str]:
    """A query's distinct words, lower-cased, in order."""
    seen = dict.fromkeys(w for w in query.replace(_SEP, " ").lower().split())
    return list(seen)


@dataclass
class Texts:
    """One conversation's message contents, lower-cased and joined, as of its file `sig`."""

    sig: tuple[int, int, int]
    text: str = ""

    @property
    def size(self) -> int:
        return len(self.text) + PER_CONVERSATION


def read_texts(sig: tuple[int, int, int], messages: Iterable[dict]) -> Texts:
    """A conversation's `Texts` from its message rows (every branch)."""
    return Texts(sig, _SEP.join(str(m.get("content") or "").lower() for m in messages))


def match(title: str, texts: Texts | None, wanted: list[str]) -> list[str] | None:
    """Whether a conversation holds every wanted word, in its title or its messages: None if
    not, else the words its title lacks (empty: a match of the title alone)."""
    in_title = title.lower()
    rest = [w for w in wanted if w not in in_title]
    if rest and (texts is None or not all(w in texts.text for w in rest)):
        return None
    return rest


def snippet(text: str, wanted: list[str]) -> tuple[str, list[list[int]]]:
    """A short plain-text excerpt of `text` around its first wanted word, whitespace
    collapsed, "…" where cut; and where each wanted word is in it, as [start, end) offsets."""
    pattern = re.compile(
        "|".join(re.escape(w) for w in sorted(wanted, key=len, reverse=True)), re.IGNORECASE
    )
    hit = pattern.search(text)
    at = hit.start() if hit else 0
    start = max(0, at - SNIPPET_BEFORE)
    if start and (space := text.find(" ", start, at)) >= 0:
        start = space + 1  # begin with a whole word
    end = start + SNIPPET_CHARS
    if end < len(text) and (space := text.rfind(" ", hit.end() if hit else start, end)) > 0:
        end = space
    excerpt = " ".join(text[start:end].split())
    excerpt = ("…" if start else "") + excerpt + ("…" if end < len(text) else "")
    return excerpt, [[m.start(), m.end()] for m in pattern.finditer(excerpt)]


def signature(path: str) -> tuple[int, int, int] | None:
    """What changes whenever a conversation file is written (None: there is none)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


Reader = Callable[[str, tuple[int, int, int]], Texts]


@dataclass
class _Owner:
    stamp: tuple[int, ...] = ()  # the owner's folder stamp when last compared with the files
    texts: dict[str, Texts] = field(default_factory=dict)
    size: int = 0
    forgotten: set[str] = field(default_factory=set)  # written to while a search read files


class SearchIndex:
    """The searched people's message texts (see the module's docstring), by owner key."""

    def __init__(self, budget: int = SEARCH_MEMORY) -> None:
        self.budget = budget
        self._owners: OrderedDict[str, _Owner] = OrderedDict()  # least recently searched first
        self._guard = threading.Lock()

    def forget(self, key: str, conversation_id: str) -> None:
        """A write changed (or removed) this conversation: drop its text now."""
        with self._guard:
            owner = self._owners.get(key)
            if owner is None:
                return
            owner.forgotten.add(conversation_id)
            if old := owner.texts.pop(conversation_id, None):
                owner.size -= old.size

    def forget_owner(self, key: str) -> None:
        with self._guard:
            self._owners.pop(key, None)

    def texts(
        self, key: str, folder: str, ids: list[str], stamp: tuple[int, ...], read: Reader
    ) -> dict[str, Texts]:
        """The texts of the conversations `ids` in `folder` (a path ending in "/"), brought
        up to date with the files: all of them compared when the folder's `stamp` changed,
        else only those a write forgot. `read(path, sig)` reads one file's `Texts`."""
        with self._guard:
            owner = self._owners.setdefault(key, _Owner())
            self._owners.move_to_end(key)
            known, changed = dict(owner.texts), owner.stamp != stamp
            owner.forgotten.clear()
        fresh: dict[str, Texts] = {}
        for cid in ids:
            old = known.get(cid)
            if old is not None and not changed:
                fresh[cid] = old
                continue
            path = f"{folder}{cid}.json"
            sig = signature(path)
            if sig is None:
                continue  # deleted meanwhile
            fresh[cid] = old if old is not None and old.sig == sig else read(path, sig)
        with self._guard:
            for cid in owner.forgotten:  # a write landed meanwhile: read it next time
                fresh.pop(cid, None)
            owner.texts, owner.stamp = fresh, stamp
            owner.size = sum(t.size for t in fresh.values())
            self._evict(keep=key)
        return fresh

    def _evict(self, keep: str) -> None:
        """Drop the people searched least recently while the texts exceed the budget."""
        total = sum(o.size for o in self._owners.values())
        for key in list(self._owners):
            if total <= self.budget:
                return
            if key != keep:
                total -= self._owners.pop(key).size

    def size(self, key: str) -> int:
        """Bytes (estimated) kept for this owner."""
        with self._guard:
            owner = self._owners.get(key)
            return owner.size if owner else 0
