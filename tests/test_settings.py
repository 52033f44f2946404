"""Settings from the environment, and what a Space changes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

import chat.settings as settings_module
from chat.settings import Settings


@pytest.fixture
def volume(tmp_path, monkeypatch) -> Path:
    mount = tmp_path / "bucket"
    mount.mkdir()
    monkeypatch.setattr(settings_module, "SPACE_VOLUME", mount)
    for var in ("SPACE_ID", "SPACE_HOST", "PARLOR_DATA_DIR", "SYSTEM"):
        monkeypatch.delenv(var, raising=False)
    return mount


def test_a_space_keeps_history_on_its_mounted_volume(volume, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/parlor")
    monkeypatch.setenv("SPACE_HOST", "someone-parlor.hf.space")
    s = Settings()
    assert s.data_dir == volume and not s.ephemeral_storage
    assert s.public_urls == ["https://someone-parlor.hf.space"]
    assert s.feedback_link == "https://huggingface.co/spaces/someone/parlor/discussions"


def test_a_space_with_a_custom_domain_has_two_addresses(volume, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/parlor")
    monkeypatch.setenv("SPACE_HOST", "someone-parlor.hf.space,chat.example.org")
    s = Settings()
    assert s.public_urls == ["https://someone-parlor.hf.space", "https://chat.example.org"]


def test_a_space_without_a_volume_is_ephemeral(volume, monkeypatch, tmp_path):
    monkeypatch.setenv("SPACE_ID", "someone/parlor")
    volume.rmdir()
    assert Settings().ephemeral_storage
    monkeypatch.setenv("PARLOR_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Settings().ephemeral_storage, "a data dir off the volume is wiped too"


def test_not_a_space(volume):
    s = Settings()
    assert s.data_dir == Path("data") and not s.ephemeral_storage and not s.login_enabled


def test_the_generated_secret_is_created_readable_by_its_owner_only(tmp_path, monkeypatch):
    """Created 0600, not created world-readable then narrowed: a chmod after the write
    leaves a moment when anyone on the machine can read the key that signs every cookie."""
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)  # no narrowing after
    monkeypatch.setattr(Path, "chmod", lambda *args, **kwargs: None)
    previous = os.umask(0o022)
    try:
        secret = Settings(data_dir=tmp_path / "data", secret="").signing_secret()
    finally:
        os.umask(previous)
    key = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == secret and len(secret) >= 64
    assert Settings(data_dir=tmp_path / "data", secret="").signing_secret() == secret
    assert [p.name for p in key.parent.iterdir()] == ["secret.key"], "no temporary file left"


def test_the_inference_providers_router_is_hugging_faces_or_this_machines_only():
    """HF_TOKEN and people's own tokens go out with these requests (chat/quota.py)."""
    for elsewhere in ("https://router.example.com", "http://router.huggingface.co"):
        with pytest.raises(ValidationError, match="tokens go out"):
            Settings(inference_providers_url=elsewhere)
    for fine in ("https://router.huggingface.co", "http://127.0.0.1:8123", "http://localhost:9"):
        assert Settings(inference_providers_url=fine).inference_providers_url == fine
