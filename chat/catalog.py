"""`models.yaml` → validated `Catalog` of models and their endpoints.

A mistake in the file stops start-up with one line naming the file, the model, the field and
the reason (`CatalogError`), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class CatalogError(ValueError):
    """`models.yaml` cannot be used; the message says where and why."""


# A Hub model id ("org/name", or a legacy "name"), as huggingface_hub's `validate_repo_id`
# accepts it. An `hf` endpoint is called with the server's HF_TOKEN, and huggingface_hub
# sends a model given as a URL straight to that URL: only ids may go there.
_HUB_MODEL_ID = re.compile(r"^(?:[\w\-.]+/)?[\w\-.]{1,96}$")


def is_hub_model_id(name: str) -> bool:
    """Whether `name` names a model on the Hugging Face Hub (not a URL, not a path)."""
    return bool(_HUB_MODEL_ID.match(name)) and ".." not in name and "--" not in name


NOT_A_HUB_ID = (
    "an hf endpoint sends the server's HF_TOKEN, so its model must be a Hugging Face model "
    "id such as 'org/name', not {name!r} (for another server, use type openai or tgi)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameters(_Strict):
    """Sampling parameters sent with every request to the model."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    stop: list[str] = []
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)


class Watermark(_Strict):
    """The embedded model's watermark (chat/watermark.py): the green share of the vocabulary
    and what is added to the green logits."""

    gamma: float = Field(0.25, gt=0, lt=1)
    delta: float = Field(2.0, gt=0, le=20)


class PromptExample(_Strict):
    title: str = Field(min_length=1)
    prompt: str = Field(min_length=1)


class Retired(_Strict):
    on: dt.date
    transfer_to: str


class _Endpoint(_Strict):
    weight: float = Field(1.0, gt=0)
    # Seconds without a byte from the server before giving up (before the first token, the
    # next endpoint is tried). Unset: 120 s.
    timeout: float | None = Field(None, gt=0, le=3600)


class LocalEndpoint(_Endpoint):
    """The embedded SmolLM2 model, served by Parlor itself on 127.0.0.1."""

    type: Literal["local"]


class HFEndpoint(_Endpoint):
    """Hugging Face Inference Providers; the token is the server's `HF_TOKEN`, or the
    signed-in person's own (chat/quota.py)."""

    type: Literal["hf"]
    provider: str = Field("auto", pattern=r"^[a-z0-9][a-z0-9\-]*$")
    model: str | None = None  # defaults to the model's id

    @field_validator("model")
    @classmethod
    def _hub_id(cls, name: str | None) -> str | None:
        if name is not None and not is_hub_model_id(name):
            raise ValueError(NOT_A_HUB_ID.format(name=name))
        return name


class TGIEndpoint(_Endpoint):
    """A text-generation-inference server, through its Messages API."""

    type: Literal["tgi"]
    url: str = Field(pattern=r"^https?://")
    token_env: str | None = None


class OpenAIEndpoint(_Endpoint):
    """Any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...)."""

    type: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://")
    model: str | None = None  # the served model name; defaults to the model's id
    token_env: str | None = None


Endpoint = Annotated[
    LocalEndpoint | HFEndpoint | TGIEndpoint | OpenAIEndpoint, Field(discriminator="type")
]


class Model(_Strict):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[\w.\-/:]+$")
    name: str = Field(min_length=1)
    description: str = ""
    model_url: str | None = None
    website_url: str | None = None
    system_prompt: str = ""
    prompt_examples: list[PromptExample] = []
    parameters: Parameters = Parameters()
    context_window: int = Field(4096, ge=256)
    unlisted: bool = False
    retired: Retired | None = None
    watermark: Watermark | None = None  # off unless set; the embedded model only
    endpoints: list[Endpoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _watermark_is_local(self) -> Model:
        # Parlor marks answers in its own llama.cpp endpoint; another server would not.
        if self.watermark is not None and any(e.type != "local" for e in self.endpoints):
            raise ValueError(
                "field 'watermark' needs every endpoint to be of type local: only the "
                "embedded model's answers can carry Parlor's watermark"
            )
        return self

    @model_validator(mode="after")
    def _hf_needs_hub_id(self) -> Model:
        # Without its own `model`, an hf endpoint asks Inference Providers for the model's id.
        for index, endpoint in enumerate(self.endpoints):
            if endpoint.type == "hf" and endpoint.model is None and not is_hub_model_id(self.id):
                raise ValueError(
                    f"field 'endpoints[{index}].model' is unset, so the model's 'id' is used: "
                    + NOT_A_HUB_ID.format(name=self.id)
                )
        return self

    @property
    def listed(self) -> bool:
        return not self.unlisted and self.retired is None


class Catalog(_Strict):
    models: list[Model] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_references(self) -> Catalog:
        ids = [m.id for m in self.models]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"model ids must be unique; repeated: {', '.join(dupes)}")
        live = {m.id for m in self.models if m.retired is None}
        for m in self.models:
            if m.retired and m.retired.transfer_to not in live:
                raise ValueError(
                    f"model {m.id!r}: retired.transfer_to {m.retired.transfer_to!r} "
                    "is not a model of this file that is still served"
                )
        if not any(m.listed for m in self.models):
            raise ValueError("at least one model must be listed (not unlisted, not retired)")
        return self

    def get(self, model_id: str) -> Model | None:
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def default(self) -> Model:
        """The first listed model: the one a new conversation uses unless told otherwise."""
        return next(m for m in self.models if m.listed)

    @property
    def listed(self) -> list[Model]:
        return [m for m in self.models if m.listed]

    def watermarks(self) -> bool:
        """Whether a model of the catalog watermarks its answers (the key is then needed)."""
        return any(m.watermark is not None for m in self.models)

    def uses_local(self) -> bool:
        return any(e.type == "local" for m in self.models if m.retired is None for e in m.endpoints)


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. In YAML 1.1 `on:` (as in `retired: {on: ...}`),
    `yes`, `no` and `off` would silently become booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_catalog(path: Path) -> Catalog:
    """Read and validate `path`, or raise `CatalogError` naming file, model, field, reason."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as e:
        raise CatalogError(f"{path}: cannot read the file ({e.strerror})") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        reason = getattr(e, "problem", None) or str(e)
        raise CatalogError(f"{path}{line}: not valid YAML ({reason})") from None
    return parse_catalog(raw, source=str(path))


def parse_catalog(raw: object, *, source: str = "models.yaml") -> Catalog:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{source}: expected a mapping with a 'models' list at the top")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as e:
        raise CatalogError(_describe(e, raw, source)) from None


def _describe(error: ValidationError, raw: Mapping, source: str) -> str:
    lines = []
    for err in error.errors():
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            index = loc[1]
            models = raw.get("models") or []
            entry = models[index] if index < len(models) else None
            model_id = entry.get("id") if isinstance(entry, Mapping) else None
            where = f"model {model_id!r}" if model_id else f"models[{index}]"
            loc = loc[2:]
        # Drop pydantic's union-branch tags (e.g. 'openai') from the field path.
        field = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p)
            for p in loc
            if not (isinstance(p, str) and p in ("local", "hf", "tgi", "openai"))
        ).replace(".[", "[")
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown field (a typo?)"
        elif err["type"] == "union_tag_invalid":
            reason = "endpoint type must be one of: local, hf, tgi, openai"
        parts = [p for p in (where, f"field {field!r}" if field else "") if p]
        lines.append(f"{source}: {', '.join(parts) + ': ' if parts else ''}{reason}")
    return "\n".join(lines)


def endpoint_token(endpoint: Endpoint, environ: Mapping[str, str]) -> str | None:
    """The token an endpoint sends, or None. The server's HF token goes to `hf` only."""
    if endpoint.type == "hf":
        return environ.get("HF_TOKEN") or None
    if endpoint.type in ("tgi", "openai") and endpoint.token_env:
        return environ.get(endpoint.token_env) or None
    return None


def endpoint_available(endpoint: Endpoint, environ: Mapping[str, str]) -> bool:
    """Whether an endpoint has what it needs to be called (its token, when it names one)."""
    if endpoint.type == "hf":
        return bool(environ.get("HF_TOKEN"))
    if endpoint.type in ("tgi", "openai") and endpoint.token_env:
        return bool(environ.get(endpoint.token_env))
    return True
