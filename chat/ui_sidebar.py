"""The chat page's sidebar of conversations: grouped by when they were last used (Today,
Yesterday, Previous 7 days, Previous 30 days, Older, in the person's own time zone), each row
with its title, an inline rename and a delete that asks first; the open one highlighted; and
a search box that finds conversations by title or by any message's words, with a snippet.

Gradio has no list component with per-row controls, so the rows are drawn by the page
(SIDEBAR_JS), as the branch switchers are (chat/ui_tree.py): the server writes the listing
and the search results as JSON into hidden Textboxes, and a click writes what the person
asked for into another one, whose `.change` event acts on the server. Titles are the
person's own text: the page puts them in with `textContent`, never as HTML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr

# The sidebar lists the newest PAGE conversations; a button lists the older ones. Gradio sends
# a value whole each time it changes (a new conversation), so its cost follows its length.
PAGE = 50


@dataclass
class Sidebar:
    """The sidebar's components (see the module's docstring)."""

    listing: gr.Textbox  # {"rows": [{id, title, updated_at}]}, newest first
    selected: gr.Textbox  # the open conversation's id, highlighted
    more: gr.Button  # lists the conversations older than the first PAGE
    search: gr.Textbox  # what the person types
    found: gr.Textbox  # {"query", "results": [{id, title, snippet, marks, message_id}]}
    opening: gr.Textbox  # written by the page: open (or delete) the open conversation
    acting: gr.Textbox  # written by the page: rename or delete another row
    titling: gr.Textbox  # "<conversation id> <time>": list again once its title is written


def build_sidebar(*, history: bool = True) -> Sidebar:
    """The sidebar's components, where the conversations are listed (no search box where
    no `history` is kept)."""
    search = gr.Textbox(
        placeholder="Search conversations",
        show_label=False,
        elem_id="sidebar-search",
        container=False,
        max_length=500,
        visible=history,
    )
    gr.HTML('<nav id="conversations" aria-label="Conversations"></nav>', padding=False)
    more = gr.Button(
        "Show older conversations", size="sm", elem_id="more-conversations", visible=False
    )
    hidden = {"visible": "hidden"}
    return Sidebar(
        listing=gr.Textbox('{"rows": []}', elem_id="sidebar-listing", **hidden),
        selected=gr.Textbox("", elem_id="sidebar-selected", **hidden),
        more=more,
        search=search,
        found=gr.Textbox('{"query": "", "results": []}', elem_id="sidebar-found", **hidden),
        opening=gr.Textbox("", elem_id="sidebar-open", **hidden),
        acting=gr.Textbox("", elem_id="sidebar-act", **hidden),
        titling=gr.Textbox("", elem_id="sidebar-titling", **hidden),
    )


def listing_value(rows: list[dict]) -> str:
    """The listing, for SIDEBAR_JS: only what a row shows."""
    keep = ("id", "title", "updated_at")
    return json.dumps({"rows": [{k: r[k] for k in keep} for r in rows]})


def found_value(query: str, results: list[dict]) -> str:
    """Search results, for SIDEBAR_JS, with the query they answer (the page shows only the
    answer to what is in the box now)."""
    keep = ("id", "title", "snippet", "marks", "message_id")
    return json.dumps({"query": query, "results": [{k: r[k] for k in keep} for r in results]})


def asked(value: str) -> dict:
    """What a row asked for: {"op": "open" | "rename" | "delete", "id", "title"?,
    "message"?} (a search result opens on the branch of the message it found); {} for
    anything else (the page writes it, but anyone may send anything)."""
    try:
        wanted = json.loads(value or "{}")
    except ValueError:
        return {}
    if not isinstance(wanted, dict) or wanted.get("op") not in ("open", "rename", "delete"):
        return {}
    if not all(isinstance(wanted.get(k, ""), str) for k in ("id", "title", "message")):
        return {}
    return wanted


# Draws the sidebar (see the module's docstring) whenever its values change. On a narrow
# screen (Gradio's sidebar covers the whole width under 769 px) it starts closed and closes
# once a conversation is chosen, so the chat is what a phone shows.
SIDEBAR_JS = """
() => {
  if (window.parlorSidebar) return;
  const NARROW = "(max-width: 768px)";
  const GROUPS = ["Today", "Yesterday", "Previous 7 days", "Previous 30 days", "Older"];
  const box = (id) => document.querySelector(`#${id} textarea, #${id} input`);
  const read = (id, empty) => {
    try { return JSON.parse(box(id)?.value || "") || empty; } catch (e) { return empty; }
  };
  const write = (id, wanted) => {
    const b = box(id);
    if (!b) return;
    b.value = JSON.stringify({...wanted, t: Date.now()});
    b.dispatchEvent(new Event("input", {bubbles: true}));
  };
  const close = () => {
    if (!window.matchMedia(NARROW).matches) return;
    const side = document.querySelector("#sidebar");
    const open = side?.classList.contains("open") ? side : document.querySelector(".sidebar.open");
    open?.querySelector(".toggle-button")?.click();
  };
  const dayOf = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const group = (stamp, today) => {
    const days = Math.round((today - dayOf(new Date(stamp))) / 86400000);
    return days <= 0 ? 0 : days === 1 ? 1 : days <= 7 ? 2 : days <= 30 ? 3 : 4;
  };
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const ICONS = {  // drawn, not emoji: a phone or a server may have no emoji font
    Rename: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
    Delete: "M5 7h14M10 7V5h4v2M7 7l1 13h8l1-13M10 11v6M14 11v6",
  };
  const icon = (name) => {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  };
  const tool = (title, act) => {
    const b = el("button", "parlor-tool");
    b.append(icon(title));
    b.type = "button";
    b.title = title;
    b.setAttribute("aria-label", title);
    b.addEventListener("click", (e) => { e.stopPropagation(); act(); });
    return b;
  };
  const selected = () => box("sidebar-selected")?.value || "";
  const open = (id, message) => {
    document.querySelectorAll("#conversations .parlor-row").forEach(
      (r) => r.classList.toggle("selected", r.dataset.id === id));
    write("sidebar-open", {op: "open", id, message: message || ""});
    close();
  };
  const remove = (id) => write(id === selected() ? "sidebar-open" : "sidebar-act",
                               {op: "delete", id});
  const renaming = (row, c) => {
    const input = el("input", "parlor-rename-input");
    input.value = c.title;
    input.setAttribute("aria-label", "New title");
    let done = false;
    const finish = (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title && title !== c.title) write("sidebar-act", {op: "rename", id: c.id, title});
      draw();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true); }
      if (e.key === "Escape") { e.preventDefault(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
    row.replaceChildren(input);
    input.focus();
    input.select();
  };
  const confirming = (row, c) => {
    const ask = el("span", "parlor-confirm-text", "Delete for good?");
    const yes = el("button", "parlor-confirm-yes", "Delete");
    const no = el("button", "parlor-confirm-no", "Cancel");
    yes.type = no.type = "button";
    yes.addEventListener("click", (e) => { e.stopPropagation(); remove(c.id); });
    no.addEventListener("click", (e) => { e.stopPropagation(); draw(); });
    row.classList.add("confirming");
    row.replaceChildren(ask, yes, no);
    no.focus();
  };
  const row = (c, snippet) => {
    const r = el("div", "parlor-row" + (c.id === selected() ? " selected" : ""));
    r.dataset.id = c.id;
    const main = el("button", "parlor-open");
    main.type = "button";
    main.title = c.title;
    main.append(el("span", "parlor-title", c.title));
    if (snippet) main.append(snippet);
    main.addEventListener("click", () => open(c.id, c.message_id));
    r.append(main);
    if (!snippet) {
      const tools = el("span", "parlor-tools");
      tools.append(tool("Rename", () => renaming(r, c)), tool("Delete", () => confirming(r, c)));
      r.append(tools);
    }
    return r;
  };
  const marked = (text, marks) => {
    // marks are offsets in code points (Python's): index an array of them.
    const chars = Array.from(text);
    const p = el("span", "parlor-snippet");
    let at = 0;
    for (const [start, end] of marks) {
      if (start < at) continue;
      p.append(chars.slice(at, start).join(""), el("mark", "", chars.slice(start, end).join("")));
      at = end;
    }
    p.append(chars.slice(at).join(""));
    return p;
  };
  const draw = () => {
    const nav = document.querySelector("#conversations");
    if (!nav) return;
    const query = (box("sidebar-search")?.value || "").trim();
    const parts = [];
    if (query) {
      const found = read("sidebar-found", {query: "", results: []});
      if (found.query !== query) return;  // the answer to what is typed now is on its way
      if (!found.results.length) parts.push(el("p", "parlor-empty", "No conversation matches."));
      for (const c of found.results) parts.push(row(c, marked(c.snippet || "", c.marks || [])));
    } else {
      const rows = read("sidebar-listing", {rows: []}).rows || [];
      const today = dayOf(new Date());
      let last = -1;
      for (const c of rows) {
        const g = group(c.updated_at, today);
        if (g !== last) parts.push(el("h3", "parlor-group", GROUPS[g]));
        last = g;
        parts.push(row(c));
      }
    }
    nav.replaceChildren(...parts);
  };
  window.parlorSidebar = {draw};
  if (window.matchMedia(NARROW).matches) setTimeout(close, 0);
  document.querySelector("#new-chat")?.addEventListener("click", close);
  draw();
}
"""

# Draws the sidebar again once one of its values changes.
REDRAW_JS = "() => { window.parlorSidebar?.draw(); }"

CSS = """
#conversations { display: flex; flex-direction: column; gap: 1px; margin: .25rem 0; }
#conversations .parlor-group { font-size: .75rem; font-weight: 600; margin: .7rem .4rem .2rem;
  color: var(--body-text-color-subdued); text-transform: none; }
#conversations .parlor-row { display: flex; align-items: center; gap: .25rem; border-radius: 8px;
  padding: 0 .2rem; min-height: 2.1rem; }
#conversations .parlor-row:hover { background: var(--background-fill-primary); }
#conversations .parlor-row.selected { background: var(--color-accent-soft);
  box-shadow: inset 3px 0 0 var(--color-accent); }
#conversations .parlor-open { flex: 1; min-width: 0; text-align: left; padding: .35rem .3rem;
  background: none; border: none; cursor: pointer; color: var(--body-text-color);
  font: inherit; font-size: var(--text-md); font-weight: 400; }
#conversations .parlor-title { display: block; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
#conversations .parlor-snippet { display: block; font-size: .8rem; line-height: 1.3;
  color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
#conversations .parlor-tools { display: flex; visibility: hidden; }
#conversations .parlor-row:hover .parlor-tools, #conversations .parlor-row.selected .parlor-tools,
#conversations .parlor-row:focus-within .parlor-tools { visibility: visible; }
#conversations .parlor-tool { background: none; border: none; cursor: pointer; padding: .2rem .3rem;
  border-radius: 6px; color: var(--body-text-color-subdued); }
#conversations .parlor-tool:hover { background: var(--background-fill-secondary); }
#conversations .parlor-tool svg { width: 1rem; height: 1rem; fill: none; stroke: currentColor;
  stroke-width: 1.8; stroke-linecap: round; stroke-linejoin: round; display: block; }
#conversations .parlor-rename-input { flex: 1; min-width: 0; padding: .3rem;
  border: 1px solid var(--color-accent); border-radius: 6px; }
#conversations .parlor-row.confirming { gap: .4rem; font-size: .85rem; flex-wrap: wrap;
  padding: .3rem; }
#conversations .parlor-confirm-yes { color: var(--button-cancel-text-color);
  background: var(--button-cancel-background-fill); border-radius: 6px; padding: .1rem .5rem; }
#conversations .parlor-confirm-no { border: 1px solid var(--border-color-primary);
  border-radius: 6px; padding: .1rem .5rem; }
#conversations .parlor-empty { color: var(--body-text-color-subdued); font-size: .85rem;
  margin: .5rem .4rem; }
@media (hover: none) { #conversations .parlor-tools { visibility: visible; } }
"""
