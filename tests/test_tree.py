"""`chat.tree`: a conversation's messages as a tree, read by pure functions."""

from __future__ import annotations

from chat import tree


def _m(mid: str, parent: str | None, role: str = "user") -> dict:
    return {"id": mid, "parent_id": parent, "role": role, "content": mid}


# q1 ─ a1 ─ q2 ─ a2
#   │       └ q2b ─ a2b
#   └ a1b
ROWS = [
    _m("q1", None),
    _m("a1", "q1", "assistant"),
    _m("q2", "a1"),
    _m("a2", "q2", "assistant"),
    _m("a1b", "q1", "assistant"),
    _m("q2b", "a1"),
    _m("a2b", "q2b", "assistant"),
]


def test_the_path_runs_from_the_root_to_the_leaf():
    assert [m["id"] for m in tree.path(ROWS, "a2")] == ["q1", "a1", "q2", "a2"]
    assert [m["id"] for m in tree.path(ROWS, "a1b")] == ["q1", "a1b"]
    assert tree.path(ROWS, "missing") == [] and tree.path(ROWS, None) == []


def test_siblings_are_in_the_order_they_were_written():
    assert [m["id"] for m in tree.siblings(ROWS, "a1b")] == ["a1", "a1b"]
    assert [m["id"] for m in tree.siblings(ROWS, "q2")] == ["q2", "q2b"]
    assert [m["id"] for m in tree.siblings(ROWS, "q1")] == ["q1"]


def test_switching_to_a_message_shows_its_newest_branch_down_to_a_leaf():
    assert tree.deepest(ROWS, "a1") == "a2b"
    assert tree.deepest(ROWS, "q2") == "a2"
    assert tree.deepest(ROWS, "a1b") == "a1b"


def test_an_old_flat_list_reads_as_one_branch():
    flat = [{"id": i, "role": "user", "content": i} for i in ("x", "y", "z")]
    rows = tree.as_tree(flat)
    assert [m["parent_id"] for m in rows] == [None, "x", "y"]
    assert tree.shown_leaf(rows, None) == "z"
    assert [m["id"] for m in tree.path(rows, "z")] == ["x", "y", "z"]


def test_a_loop_or_a_missing_parent_ends_the_path_instead_of_hanging():
    looped = [_m("a", "b"), _m("b", "a")]
    assert {m["id"] for m in tree.path(looped, "a")} == {"a", "b"}
    orphan = [_m("x", "gone")]
    assert [m["id"] for m in tree.path(orphan, "x")] == ["x"]


def test_replies_are_read_in_one_pass_by_parent():
    replies = tree.replies(ROWS)
    assert replies[None] == ["q1"] and replies["q1"] == ["a1", "a1b"]
    assert replies["a1"] == ["q2", "q2b"] and "a2" not in replies
