"""How the chat page draws a conversation's shown path: the chatbot's rows, a thinking model's
reasoning collapsed above its answer, the `‹ 2/3 ›` switcher under each message that has
siblings (other answers, or other versions of a question), and a "watermarked" mark, linked
to /check, under each answer written with the watermark (chat/watermark.py).

Gradio's Chatbot offers no per-message control that works on any message (its `options`
show under the last answer only), and its sanitizer strips the attributes a control in the
message's own Markdown would need, which would also end up in what Copy and Edit show. So
the switchers and marks are drawn by the page, under the rows that `layout()` names, by
BRANCH_JS: it reads them from a hidden Textbox and, on a click, writes the chosen message's id
into another, whose `.change` event switches branch on the server. Drawn beside the text, the
mark is never part of what Copy takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .doors import inert_images, render_answer

THINKING = "Thinking"
STOPPED = "Stopped."  # the one notice that is not a failure (chat/service.py STOPPED)


def answer_rows(
    text: str,
    reasoning: str = "",
    notice: str = "",
    *,
    failed: bool = False,
    writing: bool = False,
) -> list[dict]:
    """An answer as chatbot rows: its reasoning (open while it is all there is, collapsed
    once the answer begins), then the answer with why it is incomplete, if it is."""
    thinking = writing and not text and not notice
    if not reasoning:
        return [{"role": "assistant", "content": render_answer(text, notice, failed=failed)}]
    status = {"title": THINKING, "status": "pending" if thinking else "done"}
    rows = [{"role": "assistant", "content": inert_images(reasoning), "metadata": status}]
    if not thinking:  # no empty answer under the reasoning while it comes
        rows.append({"role": "assistant", "content": render_answer(text, notice, failed=failed)})
    return rows


def message_rows(message: dict, *, writing: bool = False) -> list[dict]:
    """A stored message (as `ChatService.conversation` gives it) as chatbot rows."""
    if message["role"] == "user":
        return [{"role": "user", "content": render_answer(message["content"])}]
    notice = message.get("notice") or ""
    return answer_rows(
        message["content"],
        message.get("reasoning") or "",
        notice,
        failed=notice not in ("", STOPPED),
        writing=writing,
    )


@dataclass
class Layout:
    """What the chatbot shows of a path: its rows, the message each row belongs to (thinking
    rows belong to their answer), the switchers: [row, position (1-based), count,
    previous sibling's id, next sibling's id] under the last row of each message with
    siblings, and the marks: [row, model id] under the last row of each watermarked answer."""

    chat: list[dict] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    branches: list[list] = field(default_factory=list)
    marks: list[list] = field(default_factory=list)

    def state(self) -> dict:
        """What the page keeps (a gr.State): which message each row is, the switchers and
        the marks."""
        return {"ids": self.ids, "branches": self.branches, "marks": self.marks}

    def switchers(self) -> str:
        """The switchers and marks, for BRANCH_JS (a hidden Textbox's value)."""
        return json.dumps({"switchers": self.branches, "marks": self.marks})


def layout(messages: list[dict], *, writing: str = "") -> Layout:
    """The rows of a path of messages; `writing`: the id of an answer still being written."""
    out = Layout()
    for m in messages:
        rows = message_rows(m, writing=m["id"] == writing)
        out.chat += rows
        out.ids += [m["id"]] * len(rows)
        siblings = m.get("siblings") or [m["id"]]
        if len(siblings) > 1:
            at = siblings.index(m["id"])
            before = siblings[at - 1] if at > 0 else ""
            after = siblings[at + 1] if at + 1 < len(siblings) else ""
            out.branches.append([len(out.ids) - 1, at + 1, len(siblings), before, after])
        if m["role"] == "assistant" and (mark := m.get("watermark")):
            out.marks.append([len(out.ids) - 1, mark.get("model") or m.get("model") or ""])
    return out


def kept(state: dict | None, rows: int) -> Layout:
    """The first `rows` rows' ids and switchers of what the page showed (`Layout.state()`):
    what stays on the page while an answer below them is written."""
    state = state or {}
    ids = list(state.get("ids") or [])[:rows]
    branches = [b for b in state.get("branches") or [] if b[0] < rows]
    marks = [m for m in state.get("marks") or [] if m[0] < rows]
    return Layout(ids=ids, branches=branches, marks=marks)


# Draws the switchers (see the module's docstring) under the rows #branches names, again
# whenever the chatbot redraws. They sit beside each message's text, not in it, so Copy
# and Edit never see them; a click writes "<message id> <time>" into #branch-pick.
BRANCH_JS = """
() => {
  if (window.parlorBranches) return;
  const rows = (chat) => chat.querySelectorAll('[data-testid="user"], [data-testid="bot"]');
  const pick = (id) => {
    const box = document.querySelector("#branch-pick textarea");
    if (!box || !id) return;
    box.value = id + " " + Date.now();
    box.dispatchEvent(new Event("input", {bubbles: true}));
  };
  const button = (label, title, id) => {
    const b = document.createElement("button");
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.disabled = !id;
    b.addEventListener("click", (e) => { e.stopPropagation(); pick(id); });
    return b;
  };
  const bar = (s, key) => {
    const div = document.createElement("div");
    div.className = "parlor-branch";
    div.dataset.key = key;
    const where = document.createElement("span");
    where.textContent = `${s[1]}/${s[2]}`;
    div.append(button("‹", "Previous version", s[3]), where, button("›", "Next version", s[4]));
    return div;
  };
  // "watermarked" under an answer, after its switcher if it has one; linked to /check.
  const mark = (m, key) => {
    const div = document.createElement("div");
    div.className = "parlor-mark";
    div.dataset.key = key;
    const a = document.createElement("a");
    a.href = "check?model=" + encodeURIComponent(m[1]);
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = "watermarked";
    a.title = "This answer carries an invisible watermark: anyone can check a copy of it here";
    div.append(a);
    return div;
  };
  const drawMarks = (chat, at) => {
    chat.querySelectorAll(".parlor-mark").forEach((m) => {
      const before = m.previousElementSibling;
      if (!before?.matches("[data-testid], .parlor-branch")) m.remove();
    });
    rows(chat).forEach((row, i) => {
      const m = at.get(i);
      const key = m ? JSON.stringify(m) : "";
      const anchor = row.nextElementSibling?.classList.contains("parlor-branch")
        ? row.nextElementSibling : row;
      const next = anchor.nextElementSibling;
      const old = next?.classList.contains("parlor-mark") ? next : null;
      if ((old ? old.dataset.key : "") === key) return;
      old?.remove();
      if (m) anchor.after(mark(m, key));
    });
  };
  const draw = () => {
    const chat = document.querySelector("#chatbot");
    const source = document.querySelector("#branches textarea");
    if (!chat || !source) return;
    let wanted = [], marked = [];
    try {
      const drawn = JSON.parse(source.value || "[]");  // a new chat's is "[]"
      wanted = Array.isArray(drawn) ? drawn : drawn.switchers || [];
      marked = Array.isArray(drawn) ? [] : drawn.marks || [];
    } catch (e) {}
    const at = new Map(wanted.map((s) => [s[0], s]));
    chat.querySelectorAll(".parlor-branch").forEach((b) => {
      if (!b.previousElementSibling?.matches("[data-testid]")) b.remove();
    });
    rows(chat).forEach((row, i) => {
      const s = at.get(i);
      const key = s ? JSON.stringify(s) : "";
      const next = row.nextElementSibling;
      const old = next?.classList.contains("parlor-branch") ? next : null;
      if ((old ? old.dataset.key : "") === key) return;
      old?.remove();
      if (s) row.after(bar(s, key));
    });
    drawMarks(chat, new Map(marked.map((m) => [m[0], m])));
  };
  let queued = false;
  const soon = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; draw(); });
  };
  window.parlorBranches = {draw: soon};
  const watch = () => {
    const chat = document.querySelector("#chatbot");
    if (!chat) return setTimeout(watch, 100);  // not drawn yet
    new MutationObserver(soon).observe(chat, {subtree: true, childList: true, characterData: true});
    soon();
  };
  watch();
}
"""

# Redraws once the switchers change (the chatbot may not change with them).
REDRAW_JS = "() => { window.parlorBranches?.draw(); }"

CSS = """
.parlor-branch { display: flex; align-items: center; gap: .3rem; margin-top: .35rem;
  font-size: .85rem; color: var(--body-text-color-subdued); font-variant-numeric: tabular-nums; }
.parlor-branch button { min-width: 1.6rem; padding: 0 .4rem; line-height: 1.4;
  border: 1px solid var(--border-color-primary); border-radius: 6px; cursor: pointer;
  color: var(--body-text-color); background: var(--background-fill-primary); }
.parlor-branch button:hover:not(:disabled) { background: var(--background-fill-secondary); }
.parlor-branch button:disabled { opacity: .35; cursor: default; }
.parlor-mark { margin-top: .25rem; font-size: .75rem; }
.parlor-mark a { color: var(--body-text-color-subdued); text-decoration: none;
  border: 1px solid var(--border-color-primary); border-radius: 1rem; padding: 0 .5rem; }
.parlor-mark a:hover { text-decoration: underline; }
"""
