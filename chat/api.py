"""The Gradio client API: thin doors into `ChatService` (see the README's API table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from .doors import OwnerOf, owner_off_loop
from .service import ChatService, ServiceError


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ServiceError as e:
        raise gr.Error(str(e), print_exception=False) from None


def register_api(service: ChatService, owner_of: OwnerOf) -> None:
    """Declare the public endpoints inside the current `gr.Blocks` context.

    Every endpoint takes the caller's identity from the request (session cookie or login),
    or from a Hugging Face token: `Client(url, token=...)` sends it in a header, and
    `Client(url, oauth_token=...)` in the request body, which Gradio hands us as `oauth_token`
    (the way that passes the Spaces proxy)."""

    def models() -> list[dict]:
        """The models people can chat with: id, name, description, available, unavailable_reason
        (why not, "" when available), default."""
        return service.models()

    def new_conversation(
        model_id: str = "", request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Start an empty conversation with a model (the default one when model_id is empty)."""
        return _guard(lambda: service.new_conversation(owner_of(request, oauth_token), model_id))

    # Gradio reads the return annotation to type the endpoint's outputs: this streams
    # [conversation_id, answer_so_far] pairs, the last one holding the whole answer.
    async def chat(
        message: str,
        conversation_id: str = "",
        model_id: str = "",
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> tuple[str, str]:
        """Send a message and stream the answer; an empty conversation_id starts a new one."""
        owner = await owner_off_loop(owner_of, request, oauth_token)
        try:
            async for update in service.send(owner, message, conversation_id, model_id):
                if update.done and update.failed:
                    raise gr.Error(update.notice, print_exception=False)
                yield update.conversation_id, update.text
        except ServiceError as e:
            raise gr.Error(str(e), print_exception=False) from None

    async def retry(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> tuple[str, str]:
        """Write the last answer of a conversation again; streams like /chat."""
        owner = await owner_off_loop(owner_of, request, oauth_token)
        try:
            async for update in service.retry(owner, conversation_id):
                if update.done and update.failed:
                    raise gr.Error(update.notice, print_exception=False)
                yield update.conversation_id, update.text
        except ServiceError as e:
            raise gr.Error(str(e), print_exception=False) from None

    def stop(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Stop the answer being written in a conversation; what was written is kept."""
        return {"stopped": service.stop(owner_of(request, oauth_token), conversation_id)}

    def conversations(
        limit: int = 0, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> list[dict]:
        """Your conversations, newest first: id, title, model, updated_at (the newest `limit`
        of them when limit > 0, all of them otherwise)."""
        return service.conversations(owner_of(request, oauth_token), int(limit or 0))

    def conversation(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """One of your conversations with all its messages."""
        return _guard(lambda: service.conversation(owner_of(request, oauth_token), conversation_id))

    def rename_conversation(
        conversation_id: str,
        title: str,
        request: gr.Request = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> dict:
        """Give one of your conversations a new title."""
        return _guard(
            lambda: service.rename_conversation(
                owner_of(request, oauth_token), conversation_id, title
            )
        )

    def delete_conversation(
        conversation_id: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Delete one of your conversations from disk, for good."""
        return {
            "deleted": service.delete_conversation(owner_of(request, oauth_token), conversation_id)
        }

    def delete_all_conversations(
        request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Delete all your conversations from disk, for good."""
        return {"deleted": service.delete_all_conversations(owner_of(request, oauth_token))}

    def export(request: gr.Request = None, oauth_token: gr.OAuthToken | None = None) -> dict:
        """All your data as one JSON document (format "parlor-export", version 1)."""
        return service.export(owner_of(request, oauth_token))

    def import_(
        data: str, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Add the conversations of a JSON document made by /export to yours."""
        return {
            "imported": _guard(lambda: service.import_data(owner_of(request, oauth_token), data))
        }

    def settings(request: gr.Request = None, oauth_token: gr.OAuthToken | None = None) -> dict:
        """Your settings."""
        return service.settings(owner_of(request, oauth_token))

    def update_settings(
        settings: dict, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None
    ) -> dict:
        """Change some of your settings; returns them all."""
        return _guard(lambda: service.update_settings(owner_of(request, oauth_token), settings))

    endpoints = {
        "models": models,
        "new_conversation": new_conversation,
        "chat": chat,
        "retry": retry,
        "stop": stop,
        "conversations": conversations,
        "conversation": conversation,
        "rename_conversation": rename_conversation,
        "delete_conversation": delete_conversation,
        "delete_all_conversations": delete_all_conversations,
        "export": export,
        "import": import_,
        "settings": settings,
        "update_settings": update_settings,
    }
    for name, fn in endpoints.items():
        gr.api(fn, api_name=name, concurrency_limit=None)
