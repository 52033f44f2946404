"""Every setting Parlor reads from the environment, validated once at start-up."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    cookie_samesite: Literal["none", "lax", "strict"] = "none"
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    cookie_partitioned: bool = True
    cookie_max_age_days: int = Field(400, ge=1)
    local_threads: int = Field(0, ge=0)  # 0: one per core
    # Gradio's own variables name where the server listens (a Space sets 0.0.0.0).
    server_name: str = Field("127.0.0.1", validation_alias="GRADIO_SERVER_NAME")
    server_port: int = Field(7860, validation_alias="GRADIO_SERVER_PORT")
    hf_token: str = Field("", validation_alias="HF_TOKEN")

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
