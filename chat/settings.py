"""Every setting Parlor reads from the environment, validated once at start-up."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SPACE_VOLUME = Path("/data")


class Settings(BaseSettings):
    """Parlor's configuration. Each field maps to `PARLOR_<NAME>` unless noted."""

    model_config = SettingsConfigDict(env_prefix="PARLOR_", extra="ignore")

    data_dir: Path = Path("data")
    models: Path = Path(__file__).resolve().parent.parent / "models.yaml"
    secret: str = ""
    max_message_chars: int = Field(16_000, ge=1)
    # Seconds between two frames of a streamed answer: tokens arriving within one frame are
    # sent together, which keeps the text smooth and costs Gradio one SSE message per frame.
    stream_frame_seconds: float = Field(0.03, ge=0)
    # Frames per second of all the answers streaming at once together: past it, each
    # answer's frames come further apart than stream_frame_seconds (ChatService).
    stream_frame_budget: float = Field(800.0, gt=0)
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
    feedback_url: str = ""  # a public discussion page for feedback, linked from /privacy
    # Sites allowed to embed Parlor in a frame (CSP frame-ancestors); "*" allows any site.
    frame_ancestors: str = "*"
    # Set by Hugging Face Spaces.
    space_id: str = Field("", validation_alias="SPACE_ID")
    space_host: str = Field("", validation_alias="SPACE_HOST")
    # Gradio's OAuth ("Sign in with Hugging Face"): set by a Space with `hf_oauth: true`, or
    # by hand to use any OpenID provider (see the README).
    system: str = Field("", validation_alias="SYSTEM")
    oauth_client_id: str = Field("", validation_alias="OAUTH_CLIENT_ID")
    openid_provider_url: str = Field("", validation_alias="OPENID_PROVIDER_URL")
    token_cache_seconds: float = Field(300, ge=0)
    # How long a page whose browser keeps no cookie (a frame where third-party cookies are
    # blocked) stays the same person: the page's token, and with it its conversation, ends.
    page_token_hours: float = Field(24, gt=0)

    @property
    def login_enabled(self) -> bool:
        """Gradio runs its real OAuth flow only on a Space (or what says it is one)."""
        return self.system == "spaces" and bool(self.oauth_client_id and self.openid_provider_url)

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
    def on_space(self) -> bool:
        return bool(self.space_id)

    @property
    def public_url(self) -> str:
        """The app's public address when known (a Space's), else empty."""
        host = self.space_host.split(",")[0].strip()
        return f"https://{host}" if host else ""

    @property
    def feedback_link(self) -> str:
        if self.feedback_url:
            return self.feedback_url
        if self.space_id:
            return f"https://huggingface.co/spaces/{self.space_id}/discussions"
        return ""

    def signing_secret(self) -> str:
        """`PARLOR_SECRET`, or a secret generated once and kept in the data directory."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value)
        tmp.chmod(0o600)
        tmp.replace(path)
        return value
