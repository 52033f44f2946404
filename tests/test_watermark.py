"""`chat.watermark`: the green lists, the score, the marker, the key, and the check on the
embedded model's own tokenizer."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from chat.catalog import CatalogError, parse_catalog
from chat.settings import Settings, SettingsError
from chat.watermark import MIN_TOKENS, Detector, Marker, green_mask, score

KEY = b"a-test-key-for-the-watermark-0123"
VOCAB = 49_152
GAMMA = 0.25


def test_a_green_list_is_the_gamma_share_and_depends_on_the_key_and_the_previous_token():
    mask = green_mask(KEY, 17, VOCAB, GAMMA)
    assert mask.dtype == bool and mask.shape == (VOCAB,)
    assert abs(mask.mean() - GAMMA) < 0.01
    assert np.array_equal(mask, green_mask(KEY, 17, VOCAB, GAMMA)), "the same each time"
    for other in (green_mask(KEY, 18, VOCAB, GAMMA), green_mask(b"another key", 17, VOCAB, GAMMA)):
        overlap = (mask & other).sum() / mask.sum()
        assert abs(overlap - GAMMA) < 0.02, "independent of each other"


def all_green(length: int, *, seed: int = 0) -> list[int]:
    """Token ids each in the green list of the one before it."""
    rng = np.random.default_rng(seed)
    ids = [int(rng.integers(VOCAB))]
    while len(ids) < length:
        ids.append(int(rng.choice(np.flatnonzero(green_mask(KEY, ids[-1], VOCAB, GAMMA)))))
    return ids


def test_a_text_all_green_scores_high_and_plain_text_near_zero():
    marked = score(all_green(60), KEY, VOCAB, GAMMA)
    assert marked.tokens == 59 and marked.green == 59
    assert marked.z > 10 and marked.p_value < 1e-20 and marked.watermarked is True
    assert marked.verdict.startswith("Watermarked")
    plain = [
        score(list(np.random.default_rng(s).integers(VOCAB, size=300)), KEY, VOCAB, GAMMA)
        for s in range(20)
    ]
    assert all(abs(p.z) < 4 and p.watermarked is False for p in plain)
    assert abs(np.mean([p.z for p in plain])) < 1
    other_key = score(all_green(60), b"not the key that marked it", VOCAB, GAMMA)
    assert other_key.watermarked is False, "without the key, the mark is not there"


def test_repeated_pairs_count_once_and_short_texts_are_not_judged():
    looped = all_green(3) * 100  # the same three tokens over and over
    found = score(looped, KEY, VOCAB, GAMMA)
    assert found.tokens == 3 and found.watermarked is None
    assert found.verdict.startswith("Cannot judge") and str(MIN_TOKENS) in found.verdict


def test_the_marker_adds_delta_to_the_green_logits_only():
    scores = np.zeros(VOCAB, dtype=np.float32)
    out = Marker(KEY, GAMMA, 2.0)(np.array([5, 42], dtype=np.intc), scores)
    green = green_mask(KEY, 42, VOCAB, GAMMA)
    assert np.all(out[green] == 2.0) and np.all(out[~green] == 0.0)


def test_a_watermark_needs_local_endpoints_and_has_the_papers_defaults():
    catalog = parse_catalog(
        {"models": [{"id": "m", "name": "M", "endpoints": [{"type": "local"}], "watermark": {}}]}
    )
    assert catalog.models[0].watermark.gamma == 0.25 and catalog.models[0].watermark.delta == 2.0
    with pytest.raises(CatalogError, match=r"model 'm'.*watermark.*type local"):
        parse_catalog(
            {
                "models": [
                    {
                        "id": "m",
                        "name": "M",
                        "endpoints": [{"type": "openai", "base_url": "http://127.0.0.1:1/v1"}],
                        "watermark": {"gamma": 0.5},
                    }
                ]
            }
        )


def test_the_key_is_generated_once_readable_by_its_owner_only(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", watermark_key="")
    key = settings.watermark_secret()
    path = tmp_path / "data" / "watermark.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == key
    assert Settings(data_dir=tmp_path / "data").watermark_secret() == key
    assert (
        Settings(data_dir=tmp_path / "data", watermark_key="k" * 20).watermark_secret() == "k" * 20
    )
    path.write_text("short")
    with pytest.raises(SettingsError, match="PARLOR_WATERMARK_KEY"):
        Settings(data_dir=tmp_path / "data").watermark_secret()
    assert path.read_text() == "short", "a damaged key is left for its owner to restore"


HUMAN = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it "
    "was the season of Light, it was the season of Darkness, it was the spring of hope, it was "
    "the winter of despair, we had everything before us, we had nothing before us."
)


def test_the_detector_reads_text_with_the_models_tokenizer(tmp_path):
    catalog = parse_catalog(
        {"models": [{"id": "m", "name": "M", "endpoints": [{"type": "local"}], "watermark": {}}]}
    )
    detector = Detector(catalog, "k" * 32)
    found = detector.check(HUMAN)
    assert found["model"] == "m" and found["tokens"] >= MIN_TOKENS
    assert found["watermarked"] is False and found["verdict"] == "No watermark found."
    assert "z-score of 4" in found["meaning"]


def test_the_command_line_checks_a_file(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(HUMAN)
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - {id: m, name: M, endpoints: [{type: local}], watermark: {gamma: 0.25}}\n"
    )
    env = {**os.environ, "PARLOR_DATA_DIR": str(tmp_path / "data"), "PARLOR_MODELS": str(models)}
    run = subprocess.run(
        [sys.executable, "-m", "chat.watermark", "check", str(text)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "verdict: No watermark found." in run.stdout and "z: " in run.stdout


def test_the_page_marks_watermarked_answers_beside_their_text():
    from chat.ui_tree import kept, layout

    mark = {"model": "m", "gamma": 0.25, "delta": 2.0}
    messages = [
        {"id": "q", "role": "user", "content": "Hi"},
        {"id": "a", "role": "assistant", "content": "Hello", "watermark": mark},
        {"id": "q2", "role": "user", "content": "And?"},
        {"id": "b", "role": "assistant", "content": "Plain", "watermark": None},
    ]
    drawn = layout(messages)
    assert drawn.marks == [[1, "m"]]
    assert json.loads(drawn.switchers())["marks"] == [[1, "m"]]
    assert all("watermarked" not in row["content"] for row in drawn.chat), "not in what Copy takes"
    assert kept(drawn.state(), 2).marks == [[1, "m"]] and kept(drawn.state(), 1).marks == []
