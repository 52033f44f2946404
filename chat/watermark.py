"""Watermarked answers, and the check that finds the watermark (Kirchenbauer et al., "A
Watermark for Large Language Models", ICML 2023).

Marking: before each token is sampled, a secret key and the token before it seed a
pseudo-random split of the vocabulary: each token is "green" with probability gamma, and
`delta` is added to the green tokens' logits (`Marker`, a llama.cpp logits processor in the
embedded model's process). A text the model wrote so holds far more green tokens than the
gamma share any other text holds.

Checking: the text is tokenised again with the model's own tokenizer (the same GGUF, loaded
vocabulary-only), each (previous token, token) pair is counted once (a repeated phrase would
otherwise count again and again), and the green count gives a z-score against the gamma share
(`score`). Without the key nobody can tell green from red: it never leaves the server.

The green list is one numpy draw per token (`green_mask`): the key and the previous token go
through HMAC-SHA256 into the seed of numpy's PCG64 generator, which draws one uniform number
per vocabulary entry; those below gamma are green (~0.2 ms for SmolLM2's 49,152 tokens).

    python -m chat.watermark check FILE [--model ID] [--threshold Z]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import math
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the embedded model's process imports this module: numpy only
    from .catalog import Catalog, Model

THRESHOLD = 4.0  # z-score from which a text is called watermarked (p ≈ 3e-5)
MIN_TOKENS = 25  # scored tokens below which no verdict is given
MAX_CHECK_CHARS = 20_000  # what one check reads (a long answer; ~5,000 tokens)
# What copying an answer on the page appends when PARLOR_LABEL_ON_COPY is on.
COPY_LABEL = "(Written by an AI model, on Parlor.)"
MEANING = (
    "A z-score of {threshold:g} or more means this many green tokens would come by chance "
    "less than once in {odds:,} texts not written with this server's key; editing, "
    "paraphrasing or translating a text weakens the mark, a short text cannot be judged, and "
    "a low score never proves that a person wrote it."
)


def green_mask(key: bytes, previous: int, vocab: int, gamma: float) -> np.ndarray:
    """Which of the `vocab` tokens are green after the token `previous` (a bool array)."""
    digest = hmac.new(key, int(previous).to_bytes(8, "little", signed=True), hashlib.sha256)
    seed = int.from_bytes(digest.digest()[:16], "little")
    draws = np.random.Generator(np.random.PCG64(seed)).random(vocab, dtype=np.float32)
    return draws < np.float32(gamma)


class Marker:
    """A llama.cpp logits processor adding `delta` to the green tokens' logits."""

    def __init__(self, key: bytes, gamma: float, delta: float) -> None:
        self.key, self.gamma, self.delta = key, gamma, np.float32(delta)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        green = green_mask(self.key, int(input_ids[-1]), len(scores), self.gamma)
        np.add(scores, self.delta, out=scores, where=green)
        return scores


@dataclass(frozen=True)
class Score:
    """What a check found: `tokens` scored (distinct pairs), how many `green`, the z-score
    and one-sided p-value, and `watermarked` (None: too short to judge)."""

    tokens: int
    green: int
    z: float
    p_value: float
    threshold: float
    watermarked: bool | None

    @property
    def verdict(self) -> str:
        if self.watermarked is None:
            return (
                f"Cannot judge: only {self.tokens} tokens could be scored, and at least "
                f"{MIN_TOKENS} are needed."
            )
        if self.watermarked:
            return "Watermarked: this model very likely wrote this text here."
        return "No watermark found."


def score(
    ids: Sequence[int],
    key: bytes,
    vocab: int,
    gamma: float,
    *,
    threshold: float = THRESHOLD,
    min_tokens: int = MIN_TOKENS,
) -> Score:
    """Score token ids: every distinct (previous, token) pair once, its token green or not."""
    pairs = list(dict.fromkeys(itertools.pairwise(ids)))  # in order, repeats dropped
    by_previous: dict[int, list[int]] = {}
    for previous, token in pairs:
        by_previous.setdefault(previous, []).append(token)
    green = 0
    for previous, tokens in by_previous.items():
        mask = green_mask(key, previous, vocab, gamma)
        green += int(mask[[t for t in tokens if 0 <= t < vocab]].sum())
    count = len(pairs)
    spread = math.sqrt(count * gamma * (1 - gamma)) if count else 1.0
    z = (green - gamma * count) / spread
    p_value = 0.5 * math.erfc(z / math.sqrt(2))
    verdict = (z >= threshold) if count >= min_tokens else None
    return Score(count, green, round(z, 3), p_value, threshold, verdict)


class Tokenizer:
    """The embedded model's tokenizer: its GGUF loaded vocabulary-only, once, on first use."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._llm: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            from .local_model import gguf_path

            path = self._path or gguf_path()
            self._llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        return self._llm

    def encode(self, text: str) -> tuple[list[int], int]:
        """The text's token ids (no BOS, special tokens as plain text), and the vocab size."""
        with self._lock:  # llama.cpp's tokenizer is not for two threads at once
            llm = self._loaded()
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False), llm.n_vocab()


class CheckError(ValueError):
    """A check that cannot be made; the message says why, for the person asking."""


class Detector:
    """Checks texts against the models of a catalog that watermark, with the server's key."""

    def __init__(self, catalog: Catalog, key: str, tokenizer: Tokenizer | None = None) -> None:
        self._key = key.encode("utf-8")
        self._catalog = catalog
        self._tokenizer = tokenizer or Tokenizer()

    def models(self) -> list[Model]:
        """The models whose answers carry this server's watermark."""
        return watermarking(self._catalog)

    def check(self, text: str, model_id: str = "", *, threshold: float = THRESHOLD) -> dict:
        """Score `text` for `model_id`'s watermark (default: the first model that marks)."""
        model = self._model(model_id)
        if not text.strip():
            raise CheckError("Paste the text to check.")
        if len(text) > MAX_CHECK_CHARS:
            raise CheckError(
                f"The text is too long to check here: at most {MAX_CHECK_CHARS:,} characters."
            )
        ids, vocab = self._tokenizer.encode(text)
        found = score(ids, self._key, vocab, model.watermark.gamma, threshold=threshold)
        return {
            "model": model.id,
            **asdict(found),
            "verdict": found.verdict,
            "meaning": meaning(threshold),
        }

    def _model(self, model_id: str) -> Model:
        models = self.models()
        if not models:
            raise CheckError("No model of this server watermarks its answers.")
        if not model_id:
            return models[0]
        for model in models:
            if model.id == model_id:
                return model
        names = ", ".join(m.id for m in models)
        raise CheckError(f"{model_id!r} does not watermark its answers here; these do: {names}.")


def watermarking(catalog: Catalog) -> list[Model]:
    """The models of `catalog` that watermark their answers (retired ones too: their old
    answers can still be checked)."""
    return [m for m in catalog.models if m.watermark is not None]


def meaning(threshold: float) -> str:
    """One sentence on what the verdict means, and its limits."""
    odds = round(1 / (0.5 * math.erfc(threshold / math.sqrt(2))), -3)
    return MEANING.format(threshold=threshold, odds=int(odds))


def stamp(model: Model) -> dict | None:
    """What an answer of `model` keeps of its watermark (None: it has none)."""
    if model.watermark is None:
        return None
    return {"model": model.id, "gamma": model.watermark.gamma, "delta": model.watermark.delta}


def main(argv: list[str] | None = None) -> int:
    """`python -m chat.watermark check FILE`: the check of /check, on the command line, with
    the key of this server's settings (PARLOR_WATERMARK_KEY, or the data directory's)."""
    from .catalog import CatalogError, load_catalog
    from .settings import Settings, SettingsError

    parser = argparse.ArgumentParser(prog="python -m chat.watermark")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="is FILE (or - for stdin) watermarked?")
    check.add_argument("file")
    check.add_argument("--model", default="", help="a model that watermarks (default: the first)")
    check.add_argument("--threshold", type=float, default=THRESHOLD)
    args = parser.parse_args(argv)
    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with source:
            text = source.read()
        settings = Settings()
        detector = Detector(load_catalog(settings.models), settings.watermark_secret())
        result = detector.check(text, args.model, threshold=args.threshold)
    except (OSError, UnicodeDecodeError, CatalogError, SettingsError, CheckError) as e:
        print(f"cannot check: {e}", file=sys.stderr)
        return 2
    for name in ("model", "tokens", "green", "z", "p_value", "threshold"):
        print(f"{name}: {result[name]}")
    print(f"verdict: {result['verdict']}\n{result['meaning']}")
    return 0 if result["watermarked"] else 1


if __name__ == "__main__":
    sys.exit(main())
