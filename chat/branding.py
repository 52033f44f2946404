"""A deployer's branding and links: the app's name, description, logo, favicon, accent colour,
announcement, header and footer, and the links of the sidebar and of /privacy.

Each setting is checked at start-up (the `check` functions, run by `Settings`), so that a
bad colour or a missing logo stops the app with the variable's name, not a broken page. The
pages and the UI read one `Branding`, made from the settings by `branding_of`.

A logo or favicon may be an https:// URL: the page's Content-Security-Policy then allows
images from that origin only (`image_origins`), and nothing else from it. Refusing URLs
would make a deployer copy a CDN's file by hand; allowing any origin would let an answer's
markup send requests anywhere, which the CSP is there to prevent (chat/security.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # Gradio is imported after the settings are read (chat/launch.py)
    import gradio as gr

# This project's public repository, the default of PARLOR_SOURCE_URL once there is one.
PROJECT_REPOSITORY = ""
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
LOGO_PATH, FAVICON_PATH = "brand/logo", "brand/favicon"  # where a file is served
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
_EMAIL = re.compile(r"[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


# -- start-up checks (Settings' validators: a ValueError names the variable) -------------


def colour(value: str) -> str:
    """An accent colour as #rrggbb (#rgb is widened); empty: Gradio's own."""
    value = value.strip()
    if not value:
        return ""
    if not _HEX.fullmatch(value):
        raise ValueError("not a colour: write it as #rrggbb, e.g. #0f766e")
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value.lower()


def image(value: str) -> str:
    """A logo or favicon: an https:// URL, or an image file that exists (served by the app)."""
    value = value.strip()
    if not value:
        return value
    if value.startswith("https://"):
        if not _HOST.fullmatch(urlsplit(value).netloc):  # it goes into the page's CSP
            raise ValueError("an image URL must name a plain host, like https://cdn.example.com/")
        return value
    if "://" in value:
        raise ValueError("an image URL must start with https:// (a page on https blocks others)")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"there is no file {path} (give an image file, or an https:// URL)")
    if path.suffix.lower() not in IMAGE_TYPES:
        raise ValueError(
            f"{path.name} is not an image of a type browsers show: use one of "
            + ", ".join(sorted(IMAGE_TYPES))
        )
    return str(path.resolve())


_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")  # a host name and port, nothing else


def link(value: str) -> str:
    """A link of the sidebar and /privacy: an http(s) URL; empty: not shown."""
    value = value.strip()
    if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
        raise ValueError("not a web address: write it as https://...")
    return value


def contact(value: str) -> str:
    """A legal contact: an e-mail address (linked as mailto:) or a web address."""
    value = value.strip()
    if _EMAIL.fullmatch(value):
        return f"mailto:{value}"
    if value.startswith("mailto:") and _EMAIL.fullmatch(value[7:]):
        return value
    return link(value)


def module(value: str) -> str:
    """PARLOR_EXTENSION: an importable module's dotted path (run by chat/extensions.py)."""
    value = value.strip()
    if not value:
        return ""
    if not _MODULE.fullmatch(value):
        raise ValueError("not a module path (like examples.extension)")
    try:
        found = importlib.util.find_spec(value)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"there is no module {value} (is its folder on the Python path?)")
    return value


# -- what the pages and the UI show ---------------------------------------------------------


@dataclass(frozen=True)
class Branding:
    name: str = "Parlor"
    description: str = ""
    logo: str = ""  # a checked file path or https:// URL
    favicon: str = ""
    accent: str = ""  # #rrggbb, or "" for Gradio's own
    announcement: str = ""
    header: str = ""
    footer: str = ""
    # (label, href) of each deployer link, in the order the sidebar shows them
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @staticmethod
    def _href(value: str, served: str) -> str:
        return value if value.startswith("https://") else (served if value else "")

    def logo_href(self, root: str = "") -> str:
        """The logo's address: `root` + where a file is served, or its URL."""
        return self._href(self.logo, root + LOGO_PATH)

    def favicon_href(self, root: str = "") -> str:
        return self._href(self.favicon, root + FAVICON_PATH)

    def files(self) -> dict[str, Path]:
        """The brand's files the app serves, by their path."""
        paths = {LOGO_PATH: self.logo, FAVICON_PATH: self.favicon}
        return {p: Path(v) for p, v in paths.items() if v and not v.startswith("https://")}

    def image_origins(self) -> list[str]:
        """The origins the CSP allows images from, for a logo or favicon given as a URL."""
        urls = [v for v in (self.logo, self.favicon) if v.startswith("https://")]
        return sorted({f"https://{urlsplit(u).netloc}" for u in urls})

    def head(self, root: str = "") -> str:
        """What the page's <head> gets: the favicon and the description."""
        tags = []
        if self.favicon:
            tags.append(f'<link rel="icon" href="{_attr(self.favicon_href(root))}">')
        if self.description:
            tags.append(f'<meta name="description" content="{_attr(self.description)}">')
        return "".join(tags)

    @property
    def announcement_key(self) -> str:
        """Names this announcement's text: dismissing it hides this text only."""
        return hashlib.sha256(self.announcement.encode()).hexdigest()[:16]


PARLOR = Branding()  # the defaults


def _attr(value: str) -> str:
    return escape(value, quote=True)


def branding_of(settings) -> Branding:
    """The Branding of a `Settings` (already checked)."""
    labels = (
        ("Privacy policy", settings.privacy_policy_url),
        ("Terms of use", settings.terms_url),
        ("Legal contact", settings.legal_contact),
        ("Source code", settings.source_url or PROJECT_REPOSITORY),
        ("Discussion", settings.feedback_link),
    )
    return Branding(
        name=settings.name.strip(),
        description=settings.description.strip(),
        logo=settings.logo,
        favicon=settings.favicon,
        accent=settings.accent_color,
        announcement=settings.announcement.strip(),
        header=settings.header.strip(),
        footer=settings.footer.strip(),
        links=tuple((label, href) for label, href in labels if href),
    )


# -- the page's theme and banner --------------------------------------------------------------


def _text_on(hex_colour: str) -> str:
    """Black or white, whichever reads better on `hex_colour` (WCAG relative luminance)."""
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#000000" if luminance > 0.179 else "#ffffff"


def _towards_white(hex_colour: str, share: float) -> str:
    """`hex_colour` mixed with `share` of white."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in rgb)


def theme(brand: Branding) -> gr.themes.Base | None:
    """Gradio's default theme with the accent colour on primary buttons, links and focus, in
    light and dark mode; None (Gradio's own) without one."""
    if not brand.accent:
        return None
    import gradio as gr

    accent, text = brand.accent, _text_on(brand.accent)
    variables = {
        "button_primary_background_fill": accent,
        "button_primary_background_fill_hover": accent,
        "button_primary_border_color": accent,
        "button_primary_border_color_hover": accent,
        "button_primary_text_color": text,
        "color_accent": accent,
        "color_accent_soft": accent + "22",
        "link_text_color": accent,
        "link_text_color_hover": accent,
        "link_text_color_visited": accent,
        "checkbox_background_color_selected": accent,
        "slider_color": accent,
        "loader_color": accent,
    }
    dark = {f"{k}_dark": v for k, v in variables.items() if k != "color_accent"}  # one for both
    # A dark accent on a dark page is hard to read as text: links get a lighter shade there.
    light_text = _towards_white(accent, 0.45) if text == "#ffffff" else accent
    dark.update({f"{k}_dark": light_text for k in variables if k.startswith("link_text")})
    return gr.themes.Default().set(**variables, **dark)
