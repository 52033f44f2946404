"""A person's settings besides sharing: default model, system prompts per model, theme and
the welcome notice. Checked here so that bad input gets a clear message and loses nothing."""

from __future__ import annotations

from typing import Any

from .catalog import Catalog

THEMES = ("system", "light", "dark")
MAX_SYSTEM_PROMPT_CHARS = 4000
DEFAULTS: dict[str, Any] = {
    "default_model": "",
    "system_prompts": {},
    "theme": "system",
    "welcome_dismissed": False,
}


def current(stored: dict) -> dict:
    """The stored settings over the defaults (a model's empty prompt means its own)."""
    return {key: stored.get(key, value) for key, value in DEFAULTS.items()}


def check(changes: dict, catalog: Catalog, usable) -> str:
    """'' when the changes are valid, else the reason, for the person. `usable(model)` says
    why a model cannot be used now ('' when it can)."""
    for key, value in changes.items():
        why = _CHECKS[key](value, catalog, usable) if key in _CHECKS else ""
        if why:
            return why
    return ""


def _default_model(value: Any, catalog: Catalog, usable) -> str:
    if not isinstance(value, str):
        return "'default_model' must be a model id (text)."
    if value == "":
        return ""
    model = next((m for m in catalog.listed if m.id == value), None)
    if model is None:
        return f"'default_model': unknown model: {value}."
    if why := usable(model):
        return f"'default_model': {model.name} cannot be used now: {why}."
    return ""


def _system_prompts(value: Any, catalog: Catalog, usable) -> str:
    if not isinstance(value, dict):
        return "'system_prompts' must be an object of model ids and prompts."
    for model_id, prompt in value.items():
        if catalog.get(model_id) is None:
            return f"'system_prompts': unknown model: {model_id}."
        if not isinstance(prompt, str):
            return f"'system_prompts': the prompt for {model_id} must be text."
        if len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
            return (
                f"'system_prompts': the prompt for {model_id} is {len(prompt)} characters; "
                f"the limit is {MAX_SYSTEM_PROMPT_CHARS}."
            )
    return ""


def _theme(value: Any, catalog: Catalog, usable) -> str:
    return "" if value in THEMES else f"'theme' must be one of: {', '.join(THEMES)}."


def _flag(value: Any, catalog: Catalog, usable) -> str:
    return "" if isinstance(value, bool) else "'welcome_dismissed' must be true or false."


_CHECKS = {
    "default_model": _default_model,
    "system_prompts": _system_prompts,
    "theme": _theme,
    "welcome_dismissed": _flag,
}
