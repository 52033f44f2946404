"""Every setting Parlor reads from the environment, validated once at start-up."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import branding as checks

# Hugging Face's own hosts: its HF token is only ever sent there (chat/endpoints.py).
HF_DOMAINS = ("huggingface.co", "hf.co", "huggingface.cloud")  # the router: router.huggingface.co
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

SPACE_VOLUME = Path("/data")
MIN_SECRET_CHARS = 16  # the shortest cookie-signing secret accepted


@dataclass(frozen=True)
class ImportLimits:
    """What one import (`/import`, the page's upload) may hold; past any of them the whole
    document is refused with a message saying which. Each is a setting of `Settings`."""

    max_bytes: int = 50 * 1024 * 1024
    conversations: int = 5_000
    messages: int = 5_000  # in each conversation
    message_chars: int = 16_000  # a person's message, as when sending it
    answer_chars: int = 100_000  # a model's answer


class SettingsError(ValueError):
    """A setting, or a file that stands for one, cannot be used; the message says why."""


def _read_secret(path: Path, *, variable: str, loss: str) -> str:
    """A kept secret. A damaged one is never replaced: what it signed or marked would be
    lost (`loss` says what)."""
    try:
        value = path.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        value, why = "", type(e).__name__
    else:
        why = "too short to be a secret"
    if len(value) < MIN_SECRET_CHARS:
        raise SettingsError(
            f"{path} is damaged ({why}) and was left untouched. Restore it from a backup, or "
            f"move it aside to start with a new secret ({loss}), or set {variable}."
        )
    return value


def _kept_secret(path: Path, *, variable: str, loss: str) -> str:
    """The secret kept in `path`, generated there the first time."""
    if path.exists():
        return _read_secret(path, variable=variable, loss=loss)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(f".{secrets.token_hex(8)}.tmp")
    # Created readable by its owner only: never, even for a moment, by anyone else.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    tmp.replace(path)
    return value


class Settings(BaseSettings):
    """Parlor's configuration. Each field maps to `PARLOR_<NAME>` unless noted."""

    model_config = SettingsConfigDict(env_prefix="PARLOR_", extra="ignore")

    data_dir: Path = Path("data")
    # History on PostgreSQL (chat/history_pg.py) instead of TinyDB files under data_dir.
    database_url: str = ""
    # Answers in progress shared by several replicas (chat/answers_redis.py); unset: in memory.
    redis_url: str = ""
    # How many Parlor processes serve this deployment together: past 1, Redis and PostgreSQL.
    replicas: int = Field(default=1, ge=1)
    models: Path = Path(__file__).resolve().parent.parent / "models.yaml"
    secret: str = ""
    # The watermark's secret key (chat/watermark.py); unset: generated into the data directory.
    watermark_key: str = ""
    # Copying an answer on the page appends a line saying a model wrote it.
    label_on_copy: bool = False
    max_message_chars: int = Field(ImportLimits.message_chars, ge=1)
    # Imports: a larger document, or one holding more, is refused whole (see ImportLimits).
    max_import_mb: float = Field(ImportLimits.max_bytes / 2**20, gt=0)
    max_import_conversations: int = Field(ImportLimits.conversations, ge=1)
    max_import_messages: int = Field(ImportLimits.messages, ge=1)
    max_answer_chars: int = Field(ImportLimits.answer_chars, ge=1)
    # Seconds between two frames of a streamed answer: tokens arriving within one frame are
    # sent together, which keeps the text smooth and costs Gradio one SSE message per frame.
    stream_frame_seconds: float = Field(0.03, ge=0)
    # Frames per second of all the answers streaming at once together: past it, each
    # answer's frames come further apart than stream_frame_seconds (ChatService).
    stream_frame_budget: float = Field(800.0, gt=0)
    # Answers being written at once: each one a task of the server's that outlives the page
    # that asked for it. Past either bound, a new message is refused with a clear reason.
    max_answers_per_person: int = Field(4, ge=1)
    # After a new conversation's first answer, its model writes the title in the background.
    model_titles: bool = True
    # Off: no conversation is ever written; each one is temporary, in memory while its page
    # is open (chat/scratch.py), and the sidebar and the privacy page say history is off.
    store_messages: bool = True
    max_answers: int = Field(1000, ge=1)
    cookie_samesite: Literal["none", "lax", "strict"] = "none"
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    cookie_partitioned: bool = True
    cookie_max_age_days: int = Field(400, ge=1)
    local_threads: int = Field(0, ge=0)  # 0: one per core but one
    # Gradio's own variables name where the server listens (a Space sets 0.0.0.0).
    server_name: str = Field("127.0.0.1", validation_alias="GRADIO_SERVER_NAME")
    server_port: int = Field(7860, validation_alias="GRADIO_SERVER_PORT")
    hf_token: str = Field("", validation_alias="HF_TOKEN")
    # Opt-in sharing of conversations with model authors. Off: the per-person setting does
    # not exist and the privacy page promises that nothing is shared.
    data_sharing: bool = False
    feedback_url: str = ""  # the older name of discussion_url, still read
    # -- branding and links (chat/branding.py checks each one) --
    name: str = Field("Parlor", min_length=1, max_length=80)
    description: str = Field("", max_length=300)
    logo: str = ""  # an image file served by the app, or an https:// URL
    favicon: str = ""
    accent_color: str = ""  # "#rrggbb": primary buttons and links, light and dark
    announcement: str = ""  # Markdown banner over the chat, dismissible
    header: str = ""  # Markdown above the chat
    footer: str = ""  # Markdown under the chat
    privacy_policy_url: str = ""
    terms_url: str = ""
    legal_contact: str = ""  # an e-mail address or a URL
    source_url: str = ""  # off when unset (branding.PROJECT_REPOSITORY, once there is one)
    discussion_url: str = ""  # the public discussion; PARLOR_FEEDBACK_URL is its older name
    extension: str = ""  # module.path of a module with extend(blocks, parlor): chat/extensions.py
    # -- end of branding and links --
    # The welcome notice a person sees on their first visit (Markdown; empty: Parlor's own).
    welcome: str = ""
    # Sites allowed to embed Parlor in a frame (CSP frame-ancestors); "*" allows any site.
    frame_ancestors: str = "*"
    # Parlor is reached only through a reverse proxy that sets X-Forwarded-Host itself: the
    # cross-site check then takes it for the app's own address. Off, anyone could send it.
    trusted_proxy: bool = False
    # Messages (answers asked of a model) per person, and per client address of anonymous
    # people, per minute and per day (chat/limits.py); unset: no limit.
    limit_per_minute: int | None = Field(None, ge=1)
    limit_per_day: int | None = Field(None, ge=1)
    limit_per_address_per_minute: int | None = Field(None, ge=1)
    limit_per_address_per_day: int | None = Field(None, ge=1)
    # Conversations untouched for this many days are deleted (chat/retention.py); unset: kept.
    retention_days: int | None = Field(None, ge=1)
    # Set by Hugging Face Spaces.
    space_id: str = Field("", validation_alias="SPACE_ID")
    space_host: str = Field("", validation_alias="SPACE_HOST")
    # Gradio's OAuth ("Sign in with Hugging Face"): set by a Space with `hf_oauth: true`, or
    # by hand to use any OpenID provider (see docs/deploy.md).
    system: str = Field("", validation_alias="SYSTEM")
    oauth_client_id: str = Field("", validation_alias="OAUTH_CLIENT_ID")
    openid_provider_url: str = Field("", validation_alias="OPENID_PROVIDER_URL")
    oauth_scopes: str = Field("", validation_alias="OAUTH_SCOPES")
    token_cache_seconds: float = Field(300, ge=0)
    # Inference Providers (`hf` endpoints): anonymous people's requests carry the server's
    # HF_TOKEN (off: they sign in to use those models; see chat/quota.py), and the router
    # they go to ("": huggingface_hub's own, router.huggingface.co).
    anonymous_uses_server_token: bool = True
    inference_providers_url: str = Field("", pattern=r"^(https?://.+)?$")  # see _tokens_go_to
    # Parlor's changes to private internals of Gradio and huggingface_hub (chat/patches.py),
    # each on the versions it was written for. Off ("off", "false", "0"): the libraries'
    # own code everywhere, to rule the patches out when something looks wrong.
    patches: bool = True
    # How long a page whose browser keeps no cookie (a frame where third-party cookies are
    # blocked) stays the same person: the page's token, and with it its conversation, ends.
    page_token_hours: float = Field(24, gt=0)

    @field_validator("inference_providers_url")
    @classmethod
    def _tokens_go_to(cls, value: str) -> str:
        """HF_TOKEN and people's own tokens go out with these requests: only to Hugging
        Face's own hosts (https), or to this machine."""
        if not value:
            return value
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        hugging_face = any(host == d or host.endswith("." + d) for d in HF_DOMAINS)
        if not ((parts.scheme == "https" and hugging_face) or host in LOOPBACK_HOSTS):
            raise ValueError(
                "tokens go out with these requests: give an https:// address on "
                + ", ".join(HF_DOMAINS)
                + ", or one on this machine (127.0.0.1, localhost)"
            )
        return value

    @property
    def login_enabled(self) -> bool:
        """Gradio runs its real OAuth flow only on a Space (or what says it is one)."""
        return self.system == "spaces" and bool(self.oauth_client_id and self.openid_provider_url)

    @field_validator("watermark_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < MIN_SECRET_CHARS:
            raise ValueError(f"a key must be at least {MIN_SECRET_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _database_url(self) -> Settings:
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError(
                "PARLOR_DATABASE_URL must be a postgresql:// URL (leave it unset for TinyDB files)"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("PARLOR_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        if self.replicas > 1 and not (self.redis_url and self.database_url):
            raise SettingsError(
                f"PARLOR_REPLICAS={self.replicas} needs PARLOR_REDIS_URL (answers in progress) "
                "and PARLOR_DATABASE_URL (history) shared by every replica; "
                "without them, run a single replica"
            )
        return self

    # -- branding and links: each checked at start-up, the error naming its variable --
    _colour = field_validator("accent_color")(checks.colour)
    _image = field_validator("logo", "favicon")(checks.image)
    _link = field_validator(
        "privacy_policy_url", "terms_url", "source_url", "discussion_url", "feedback_url"
    )(checks.link)
    _contact = field_validator("legal_contact")(checks.contact)
    _extension = field_validator("extension")(checks.module)

    @model_validator(mode="after")
    def _space_volume(self) -> Settings:
        # On a Space, a mounted storage bucket at /data keeps history across restarts.
        if self.on_space and "data_dir" not in self.model_fields_set and SPACE_VOLUME.is_dir():
            self.data_dir = SPACE_VOLUME
        return self

    @property
    def ephemeral_storage(self) -> bool:
        """True on a Space whose data directory is not on a mounted volume: a restart wipes it."""
        return self.on_space and not self.data_dir.resolve().is_relative_to(SPACE_VOLUME)

    @property
    def import_limits(self) -> ImportLimits:
        return ImportLimits(
            max_bytes=int(self.max_import_mb * 2**20),
            conversations=self.max_import_conversations,
            messages=self.max_import_messages,
            message_chars=self.max_message_chars,
            answer_chars=self.max_answer_chars,
        )

    @property
    def on_space(self) -> bool:
        return bool(self.space_id)

    @property
    def public_urls(self) -> list[str]:
        """Every public address of a Space: its hf.space one, then its custom domain's if it
        has one (Spaces list both in SPACE_HOST; Gradio's oauth.py reads it so)."""
        return [f"https://{h.strip()}" for h in self.space_host.split(",") if h.strip()]

    @property
    def feedback_link(self) -> str:
        if link := self.discussion_url or self.feedback_url:
            return link
        if self.space_id:
            return f"https://huggingface.co/spaces/{self.space_id}/discussions"
        return ""

    def signing_secret(self) -> str:
        """`PARLOR_SECRET`, or a secret generated once and kept in the data directory."""
        lost = "every anonymous session then starts afresh"
        path = self.data_dir / "secret.key"
        return self.secret or _kept_secret(path, variable="PARLOR_SECRET", loss=lost)

    def watermark_secret(self) -> str:
        """`PARLOR_WATERMARK_KEY`, or a key generated once and kept in the data directory:
        the watermark's key (chat/watermark.py). It never leaves the server."""
        lost = "answers watermarked until then are no longer recognised"
        path = self.data_dir / "watermark.key"
        return self.watermark_key or _kept_secret(path, variable="PARLOR_WATERMARK_KEY", loss=lost)
