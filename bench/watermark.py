"""Evidence for the watermark (chat/watermark.py): detection, false positives, robustness to
edits, speed and quality, on the embedded model.

The embedded model (its GGUF loaded as its process loads it, chat/local_model.py) answers the
prompts of bench/data/watermark_prompts.txt twice each, with the same seed and the shipped
sampling (temperature 0.7, top_p 0.9): once through the watermark's `Marker` (gamma 0.25,
delta 2, a new random key each run), once without, the order alternating so that neither
gains from llama.cpp's prompt cache. Answers of at least MIN_ANSWER tokens are kept until
there are `--answers` of each. Each text is checked as /check checks it (the model's
tokenizer, repeated pairs once, z ≥ 4), and so are the 50 public-domain paragraphs of
bench/data/human_paragraphs.jsonl. Robustness: a share of the words of each watermarked
answer replaced by words drawn from those paragraphs. Speed: tokens per CPU second (and per
second) over every pair generated, with vs without. Quality: each answer's perplexity under the
same model without the watermark, given the same prompt (the paper's measure, with the model
as its own judge).

    python -m bench.watermark                # 50 of each (~15 minutes on 2 cores)
    python -m bench.watermark --answers 10   # a trial
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import ROOT, Figure, Report
from chat.local_model import chat_formatter, default_threads, gguf_path, llama_options
from chat.watermark import THRESHOLD, Marker, Tokenizer, green_mask, score

DATA = ROOT / "bench" / "data"
GAMMA, DELTA = 0.25, 2.0  # the shipped models.yaml's
SYSTEM = "You are a helpful assistant."
SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 320}
MIN_ANSWER = 150  # tokens: shorter answers are generated but not counted
SEED = 20
EDITS = (0.10, 0.25)


@dataclass
class Answer:
    text: str
    tokens: int
    seconds: float  # wall clock
    cpu: float  # this process's CPU time: what other work on these shared cores changes least
    prompt: str


def prompts() -> list[str]:
    lines = (DATA / "watermark_prompts.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def human() -> list[str]:
    rows = (DATA / "human_paragraphs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(row)["text"] for row in rows if row.strip()]


def messages(prompt: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def generate(llm, prompt: str, seed: int, marker: Marker | None) -> Answer:
    processors = [marker] if marker is not None else None
    start, cpu = time.perf_counter(), time.process_time()
    out = llm.create_chat_completion(
        messages(prompt), seed=seed, logits_processor=processors, **SAMPLING
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    text = out["choices"][0]["message"]["content"]
    return Answer(text, out["usage"]["completion_tokens"], seconds, cpu, prompt)


def answer_pairs(llm, key: bytes, wanted: int) -> tuple[list[Answer], list[Answer], dict]:
    """`wanted` long answers with the watermark and without, and the tokens per CPU second
    and per second of each over every pair generated (short answers included)."""
    marked, plain = [], []
    totals = {"marked": [0, 0.0, 0.0], "plain": [0, 0.0, 0.0]}
    asked = prompts()
    i = 0
    while (len(marked) < wanted or len(plain) < wanted) and i < 4 * wanted:
        prompt, seed = asked[i % len(asked)], SEED + i
        order = ("marked", "plain") if i % 2 == 0 else ("plain", "marked")
        for kind in order:
            a = generate(llm, prompt, seed, Marker(key, GAMMA, DELTA) if kind == "marked" else None)
            totals[kind][0] += a.tokens
            totals[kind][1] += a.cpu
            totals[kind][2] += a.seconds
            kept = marked if kind == "marked" else plain
            if a.tokens >= MIN_ANSWER and len(kept) < wanted:
                kept.append(a)
        i += 1
        print(f"    pair {i}: {len(marked)} watermarked, {len(plain)} plain kept", flush=True)
    rates = {kind: tokens / cpu for kind, (tokens, cpu, _) in totals.items()}
    rates |= {f"{kind} wall": tokens / wall for kind, (tokens, _, wall) in totals.items()}
    return marked, plain, rates


def replaced(text: str, share: float, words: list[str], rng: random.Random) -> str:
    """`text` with `share` of its words replaced by words drawn from `words`."""
    parts = text.split()
    for at in rng.sample(range(len(parts)), round(share * len(parts))):
        parts[at] = rng.choice(words)
    return " ".join(parts)


class Perplexity:
    """Perplexity of an answer under the model without the watermark, given its prompt."""

    def __init__(self, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(gguf_path()),
            n_ctx=1024,
            n_threads=threads,
            logits_all=True,
            verbose=False,
        )
        self.formatter = chat_formatter(self.llm)

    def __call__(self, answer: Answer) -> float:
        rendered = self.formatter(messages=messages(answer.prompt))
        prompt = self.llm.tokenize(
            rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
        )
        text = self.llm.tokenize(answer.text.encode(), add_bos=False, special=False)
        self.llm.reset()
        self.llm.eval(prompt + text)
        logits = np.asarray(self.llm.scores[len(prompt) - 1 : len(prompt) + len(text) - 1])
        top = logits.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
        nll = logsum - logits[np.arange(len(text)), text]
        return float(np.exp(nll.mean()))


def rate(found: list[bool]) -> float:
    return 100.0 * sum(found) / len(found) if found else 0.0


def run(report: Report, wanted: int) -> None:
    from llama_cpp import Llama

    threads = default_threads()
    llm = Llama(**llama_options(threads))
    llm.create_chat_completion(messages("Hi"), max_tokens=4)  # warm up
    key = secrets.token_bytes(32)
    tokenizer = Tokenizer()

    def z(text: str) -> float:
        ids, vocab = tokenizer.encode(text)
        return score(ids, key, vocab, GAMMA).z

    def judged(text: str) -> bool:
        ids, vocab = tokenizer.encode(text)
        return bool(score(ids, key, vocab, GAMMA).watermarked)

    marked, plain, rates = answer_pairs(llm, key, wanted)
    paragraphs = human()
    n = len(marked)
    detected = [judged(a.text) for a in marked]
    report.add(
        Figure(
            f"watermarked answers found at z ≥ {THRESHOLD:g} ({n} of ≥ {MIN_ANSWER} tokens)",
            rate(detected),
            "%",
            target="≥ 95%",
            met=rate(detected) >= 95,
            note=f"median z {statistics.median(z(a.text) for a in marked):.1f}",
        )
    )
    false_plain = [judged(a.text) for a in plain]
    false_human = [judged(t) for t in paragraphs]
    for name, found, zs in (
        (f"plain answers of the same model ({len(plain)})", false_plain, [a.text for a in plain]),
        (f"public-domain human paragraphs ({len(paragraphs)})", false_human, paragraphs),
    ):
        report.add(
            Figure(
                f"false positives at z ≥ {THRESHOLD:g}, {name}",
                rate(found),
                "%",
                target="0",
                met=not any(found),
                note=f"highest z {max(z(t) for t in zs):.2f}",
            )
        )
    words = [w for t in paragraphs for w in t.split() if w.isalpha()]
    rng = random.Random(SEED)
    for share in EDITS:
        edited = [replaced(a.text, share, words, rng) for a in marked]
        report.add(
            Figure(
                f"watermarked answers found after {share:.0%} of their words replaced at random",
                rate([judged(t) for t in edited]),
                "%",
                note=f"median z {statistics.median(z(t) for t in edited):.1f}",
            )
        )
    report.add(
        Figure(
            "generation speed with the watermark, tokens per CPU second (every pair, interleaved)",
            rates["marked"],
            "tokens/s",
            baseline=rates["plain"],
            baseline_name="without",
            target="ratio ≥ 0.95",
            met=rates["marked"] / rates["plain"] >= 0.95,
            note=f"wall clock: {rates['marked wall']:.1f} vs {rates['plain wall']:.1f} tokens/s",
        )
    )
    perplexity = Perplexity(threads)
    ppl_marked = statistics.median(perplexity(a) for a in marked)
    ppl_plain = statistics.median(perplexity(a) for a in plain)
    report.add(
        Figure(
            "perplexity of watermarked answers under the model without it (median)",
            ppl_marked,
            "",
            baseline=ppl_plain,
            baseline_name="plain answers",
            target="ratio ≤ 1.5",
            met=ppl_marked / ppl_plain <= 1.5,
        )
    )
    start = time.perf_counter()
    for previous in range(1000):
        green_mask(key, previous, llm.n_vocab(), GAMMA)
    cost = (time.perf_counter() - start) * 1000
    report.note(
        f"one green list of {llm.n_vocab():,} tokens costs {cost:.0f} µs; llama.cpp "
        f"{threads} thread(s); gamma {GAMMA}, delta {DELTA}, max_tokens {SAMPLING['max_tokens']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=50, help="long answers of each kind")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    report = Report("watermark", "watermark: detection, false positives, robustness, cost")
    run(report, args.answers)
    report.save(args.json)


if __name__ == "__main__":
    main()
