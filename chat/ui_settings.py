"""The "Settings" panel of the sidebar (default model, a system prompt per model, theme) and
the welcome notice shown the first time a person comes. Saved through `ChatService`."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .doors import OwnerOf
from .identity import Owner
from .preferences import MAX_SYSTEM_PROMPT_CHARS, THEMES
from .service import ChatService, ServiceError

PRIVATE = {"api_visibility": "private"}

WELCOME = (
    "**Welcome to {name}**, a place to chat with open models. "
    "Answers are written by a language model and **can be wrong**: check what matters. "
    "Your conversations are private to you: see [how your data is kept](privacy)."
)

# Gradio's theme modes: the `dark` class on the body (as `?__theme=` sets it). "system"
# follows the browser's preference, unless the address asks for a mode.
THEME_JS = """
(theme) => {
  const asked = new URL(window.location.href).searchParams.get("__theme");
  const mode = theme === "system" ? (asked || "system") : theme;
  const dark = mode === "dark" ||
    (mode === "system" && window.matchMedia("(prefers-color-scheme: dark)").matches);
  document.body.classList.toggle("dark", dark);
  return theme;
}
"""


@dataclass
class SettingsPanel:
    service: ChatService
    default_model: gr.Dropdown
    prompt_model: gr.Dropdown
    prompt: gr.Textbox
    theme: gr.Radio
    save: gr.Button
    welcome: gr.Column | None = None  # in the chat's column: see build_welcome
    dismiss: gr.Button | None = None

    def _model(self, model_id: str):
        return self.service.catalog.get(model_id) or self.service.catalog.default

    def fill(self, settings: dict, owner: Owner, welcome: bool = True) -> dict:
        """The panel showing `settings` (and the welcome notice unless dismissed); the models
        offered are those `owner` can use."""
        choices = [(m["name"], m["id"]) for m in self.service.models(owner) if m["available"]]
        chosen = settings["default_model"] or self.service.catalog.default.id
        out = {
            self.default_model: gr.update(choices=choices, value=chosen),
            self.prompt_model: gr.update(choices=choices, value=chosen),
            **self._prompt_of(settings, chosen),
            self.theme: settings["theme"],
        }
        if welcome:
            out[self.welcome] = gr.update(visible=not settings["welcome_dismissed"])
        return out

    def _prompt_of(self, settings: dict, model_id: str) -> dict:
        own = self._model(model_id).system_prompt
        custom = settings["system_prompts"].get(model_id, "")
        return {self.prompt: gr.update(value=custom, placeholder=own or "(no system prompt)")}

    def wire(self, loaded: gr.events.Dependency, owner_of: OwnerOf, page: gr.Textbox) -> None:
        """Connect the panel; `loaded`: the page's load, once its token (`page`) is known."""
        service = self.service
        outputs = [self.default_model, self.prompt_model, self.prompt, self.theme, self.welcome]

        def on_load(token: str, request: gr.Request) -> dict:
            owner = owner_of(request, page=token)
            return self.fill(service.settings(owner), owner)

        def pick(model_id: str, token: str, request: gr.Request) -> dict:
            return self._prompt_of(service.settings(owner_of(request, page=token)), model_id)

        def save(
            default: str, model_id: str, prompt: str, theme: str, token: str, request: gr.Request
        ) -> dict:
            changes = {"default_model": default or "", "theme": theme}
            if model_id:
                changes["system_prompts"] = {model_id: prompt.strip()}
            owner = owner_of(request, page=token)
            try:
                settings = service.update_settings(owner, changes)
            except ServiceError as e:  # what was typed stays in the panel
                gr.Warning(str(e))
                return {}
            gr.Info("Settings saved.")
            return self.fill(settings, owner, welcome=False)

        def dismiss(token: str, request: gr.Request) -> dict:
            service.update_settings(owner_of(request, page=token), {"welcome_dismissed": True})
            return {self.welcome: gr.update(visible=False)}

        loaded.then(on_load, inputs=page, outputs=outputs, **PRIVATE).then(
            None, inputs=self.theme, js=THEME_JS, **PRIVATE
        )
        self.prompt_model.input(
            pick, inputs=[self.prompt_model, page], outputs=self.prompt, **PRIVATE
        )
        self.theme.input(None, inputs=self.theme, js=THEME_JS, **PRIVATE)  # at once
        fields = [self.default_model, self.prompt_model, self.prompt, self.theme, page]
        self.save.click(save, inputs=fields, outputs=outputs, **PRIVATE)
        self.dismiss.click(dismiss, inputs=page, outputs=self.welcome, **PRIVATE)


def build_welcome(text: str, name: str = "Parlor") -> tuple[gr.Column, gr.Button]:
    """The welcome notice, hidden until the page knows whether it was dismissed."""
    # A Column: a Group shown after being hidden is drawn with its id twice (Gradio 6.31).
    with gr.Column(visible=False, variant="panel", elem_id="welcome") as group:
        gr.Markdown(text or WELCOME.replace("{name}", name))
        dismiss = gr.Button("Got it", size="sm", elem_id="welcome-dismiss")
    return group, dismiss


def build_settings_panel(service: ChatService) -> SettingsPanel:
    with gr.Accordion("Settings", open=False, elem_id="settings"):
        default_model = gr.Dropdown(label="Default model", elem_id="default-model")
        prompt_model = gr.Dropdown(label="System prompt of", elem_id="prompt-model")
        prompt = gr.Textbox(
            label="System prompt",
            info="Empty: the model's own (shown greyed). New conversations keep it.",
            lines=3,
            max_lines=8,
            max_length=MAX_SYSTEM_PROMPT_CHARS,
            elem_id="system-prompt",
        )
        theme = gr.Radio(list(THEMES), value="system", label="Theme", elem_id="theme")
        save = gr.Button("Save settings", size="sm", elem_id="save-settings")
    return SettingsPanel(service, default_model, prompt_model, prompt, theme, save)
