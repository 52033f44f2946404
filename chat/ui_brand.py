"""The deployer's branding on the chat page (chat/branding.py): the sidebar's header (logo,
name, description), the links under it, and in the chat's column the announcement banner,
the header and the footer. Static components: nothing here runs per event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

import gradio as gr

from .branding import Branding

PRIVATE = {"api_visibility": "private"}
CSS = """
#announcement { border-left: 4px solid var(--color-accent); padding: .2rem .6rem;
  background: var(--background-fill-secondary); flex-wrap: nowrap; align-items: center; }
#announcement > button { flex: 0 0 auto !important; min-width: 0 !important; width: auto; }
body.parlor-announcement-off #announcement { display: none !important; }
#brand img { max-height: 2.5rem; max-width: 100%; display: block; margin-bottom: .3rem; }
#brand h2 { margin: 0; }
#brand p { margin: .2rem 0 0; font-size: .9rem; opacity: .8; }
"""
_STORE = "parlor-announcement-dismissed"  # localStorage: the key of the text dismissed


def build_brand_header(brand: Branding) -> gr.HTML:
    """The sidebar's top: the logo, the app's name and its description."""
    logo = f'<img src="{escape(brand.logo_href())}" alt="">' if brand.logo else ""
    about = f"<p>{escape(brand.description)}</p>" if brand.description else ""
    return gr.HTML(f"{logo}<h2>{escape(brand.name)}</h2>{about}", elem_id="brand", padding=False)


def links_markdown(brand: Branding) -> str:
    """The sidebar's links: the app's own pages, then the deployer's."""
    own = [("Models", "models"), ("Privacy", "privacy")]
    return " · ".join(f"[{label}]({href})" for label, href in [*own, *brand.links])


@dataclass
class Announcement:
    """The banner over the chat, and its dismiss button (None without an announcement)."""

    dismiss: gr.Button | None

    def wire(self, demo: gr.Blocks, brand: Branding) -> None:
        """The page hides an announcement this browser dismissed, remembered in localStorage
        by its text's key: a new text shows again. In the browser only, no server event."""
        if self.dismiss is None:
            return
        key, store = json.dumps(brand.announcement_key), json.dumps(_STORE)
        hide = 'document.body.classList.add("parlor-announcement-off");'
        demo.load(
            None, js=f"() => {{ if (localStorage.getItem({store}) === {key}) {hide} }}", **PRIVATE
        )
        self.dismiss.click(
            None, js=f"() => {{ localStorage.setItem({store}, {key}); {hide} }}", **PRIVATE
        )


def build_announcement(brand: Branding) -> Announcement:
    if not brand.announcement:
        return Announcement(None)
    with gr.Row(elem_id="announcement", equal_height=True):
        gr.Markdown(brand.announcement, elem_id="announcement-text")
        dismiss = gr.Button("Dismiss", size="sm", elem_id="announcement-dismiss", min_width=0)
    return Announcement(dismiss)


def build_header(brand: Branding) -> None:
    if brand.header:
        gr.Markdown(brand.header, elem_id="brand-header")


def build_footer(brand: Branding) -> None:
    if brand.footer:
        gr.Markdown(brand.footer, elem_id="brand-footer")
