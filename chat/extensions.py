"""`PARLOR_EXTENSION=module.path`: a deployer's own components on the chat page, no fork.

The module defines `extend(blocks, parlor)`. Parlor calls it once at start-up, last thing
inside the page's `gr.Blocks` context, with `parlor` a `PageParts`: the service (the same
public API the UI uses), how to know who is asking, and the page's parts an event needs.
Components it makes go at the end of the page; `with parlor.sidebar:` or `with parlor.main:`
puts them in the sidebar or under the chat. See examples/extension.py.

A module that cannot be imported, has no `extend`, or whose `extend` raises stops start-up
with one line naming the module (`ExtensionError`, read by chat/launch.py).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from .doors import OwnerOf
from .identity import Owner
from .service import ChatService
from .settings import SettingsError

log = logging.getLogger("parlor.extensions")


class ExtensionError(SettingsError):
    """The deployer's extension cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class PageParts:
    """What `extend(blocks, parlor)` gets.

    - `service`: chat/service.py's ChatService; every call takes the owner first.
    - `page`: a hidden Textbox holding this page's token; give it as an input to an event,
      with `gr.Request`, and call `owner(request, token)` to know who is asking.
    - `conversation_id`: a State holding the open conversation's id ("" for a new chat).
    - `sidebar`, `main`: the sidebar and the chat's column, to add components inside them.
    """

    service: ChatService
    owner_of: OwnerOf
    page: gr.Textbox
    conversation_id: gr.State
    sidebar: gr.Sidebar
    main: gr.Column

    def owner(self, request: gr.Request, token: str) -> Owner:
        """The person behind an event (the same rule as every handler of the page)."""
        return self.owner_of(request, page=token)


Extend = Callable[[gr.Blocks, PageParts], None]


def load(path: str) -> Extend | None:
    """The `extend` function of the module at `path` ("" : none), checked to be callable."""
    if not path:
        return None
    try:
        module = importlib.import_module(path)
    except Exception as e:  # the deployer's module: any error of theirs
        raise ExtensionError(f"the extension {path} cannot be imported: {_why(e)}") from e
    extend = getattr(module, "extend", None)
    if not callable(extend):
        raise ExtensionError(f"the extension {path} has no function extend(blocks, parlor)")

    def run(blocks: gr.Blocks, parts: PageParts) -> None:
        try:
            extend(blocks, parts)
        except Exception as e:
            log.exception("the extension %s failed", path)
            raise ExtensionError(f"the extension {path} failed in extend(): {_why(e)}") from e

    return run


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
