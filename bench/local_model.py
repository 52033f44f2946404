"""Target 5: the embedded model's speed through the app vs llama.cpp called in-process.

The same GGUF file (chat.local_model.gguf_path()), the same messages (the catalog's system
prompt and one user turn), sampling and seed. Through the app: /chat over raw SSE, from
the request to the last update. In-process: llama_cpp.Llama.create_chat_completion with
stream=True, from the call to the last chunk. Tokens: the answer re-tokenized by the
model's own tokenizer, on both sides alike. Target: app tokens/s ≥ 0.97 × in-process (with
the app's default threads). Also: n_threads 1 vs all cores, in-process and in the app
(PARLOR_LOCAL_THREADS), to say which is best on this machine.

    python -m bench.local_model
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from bench.common import (
    Figure,
    Report,
    RunningApp,
    bench_main,
    call_api,
    http_client,
    median,
    workdir,
)
from chat import local_model
from chat.local_model import gguf_path
from chat.prompt import build_messages

RUNS = 9  # the rates vary by ±5% from run to run on this machine
MAX_TOKENS = 256
PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."
SYSTEM = "You are a helpful assistant."
SEED = 1234
PARAMS = {"temperature": 0.7, "top_p": 0.9, "max_tokens": MAX_TOKENS, "seed": SEED}


def catalog(path: Path) -> Path:
    path.write_text(
        "models:\n"
        "  - id: smollm2-135m\n"
        "    name: SmolLM2 135M\n"
        f"    system_prompt: {SYSTEM}\n"
        "    context_window: 8192\n"
        f"    parameters: {{temperature: {PARAMS['temperature']}, top_p: {PARAMS['top_p']}, "
        f"max_tokens: {MAX_TOKENS}, seed: {SEED}}}\n"
        "    endpoints:\n"
        "      - type: local\n"
    )
    return path


def messages() -> list[dict]:
    return build_messages(
        [{"role": "user", "content": PROMPT}],
        system_prompt=SYSTEM,
        context_window=8192,
        max_tokens=MAX_TOKENS,
    )


class InProcess:
    def __init__(self, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(**local_model.llama_options(threads))  # as the app's child does
        self.llm.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=4)

    def run(self) -> tuple[str, float]:
        start = time.perf_counter()
        parts = []
        for chunk in self.llm.create_chat_completion(messages(), stream=True, **PARAMS):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                parts.append(piece)
        return "".join(parts), time.perf_counter() - start


async def through_app(url: str) -> tuple[str, float]:
    async with http_client() as client:
        s = await call_api(client, url, "chat", [PROMPT, "", ""], marker="\x00")
    if not s.ok or s.duration is None:
        raise RuntimeError(f"the app's /chat failed: {s.error}")
    return s.final[0][1], s.duration  # the one output: [conversation_id, answer]


def launch(tmp: Path, threads: int) -> RunningApp:
    data = tmp / f"data-{threads}"
    env = {"PARLOR_LOCAL_THREADS": str(threads)}
    return RunningApp(data, models=catalog(tmp / "models-local.yaml"), env=env).wait_ready()


def run(report: Report) -> None:
    from llama_cpp import Llama

    tokenizer = Llama(model_path=str(gguf_path()), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(tokenizer.tokenize(text.encode(), add_bos=False, special=False))

    cores = os.cpu_count() or 1
    # The app's default (PARLOR_LOCAL_THREADS=0); one per core in the first versions.
    default = getattr(local_model, "default_threads", lambda: cores)()
    thread_counts = sorted({1, cores, default})
    rates: dict[str, list[float]] = {}

    def record(label: str, text: str, seconds: float) -> None:
        rate = count(text) / seconds
        rates.setdefault(label, []).append(rate)
        print(f"    {label}: {count(text)} tokens in {seconds:.2f} s = {rate:.1f} tokens/s")

    inproc = {t: InProcess(t) for t in thread_counts}
    with workdir() as tmp:
        for threads in thread_counts:
            app = launch(tmp, threads)
            try:
                asyncio.run(through_app(app.url))  # warm-up: first request, caches
                for _ in range(RUNS):
                    record(f"app, {threads} threads", *asyncio.run(through_app(app.url)))
                    record(f"in-process, {threads} threads", *inproc[threads].run())
            finally:
                app.stop()
    ours = median(rates[f"app, {default} threads"])
    theirs = median(rates[f"in-process, {default} threads"])
    report.add(
        Figure(
            f"embedded model through the app (/chat), {default} threads (the default)",
            ours,
            "tokens/s",
            baseline=theirs,
            baseline_name=f"llama.cpp in-process, {default} threads",
            target="ratio ≥ 0.97",
            met=ours / theirs >= 0.97,
            note=f"median of {RUNS} runs, max_tokens {MAX_TOKENS}",
        )
    )
    for threads in thread_counts:
        if threads == default:
            continue
        ours = median(rates[f"app, {threads} threads"])
        theirs = median(rates[f"in-process, {threads} threads"])
        report.add(
            Figure(
                f"embedded model through the app (/chat), {threads} thread(s)",
                ours,
                "tokens/s",
                baseline=theirs,
                baseline_name=f"llama.cpp in-process, {threads} thread(s)",
                note=f"median of {RUNS} runs",
            )
        )
    best_in = max(thread_counts, key=lambda t: median(rates[f"in-process, {t} threads"]))
    best_app = max(thread_counts, key=lambda t: median(rates[f"app, {t} threads"]))
    one, many = thread_counts[0], thread_counts[-1]
    report.add(
        Figure(
            f"in-process n_threads {many} vs {one}",
            median(rates[f"in-process, {many} threads"]),
            "tokens/s",
            baseline=median(rates[f"in-process, {one} threads"]),
            baseline_name=f"n_threads {one}",
            note=f"best in-process: {best_in}; best through the app: {best_app}",
        )
    )
    report.note(
        f"best n_threads: {best_in} in-process, {best_app} through the app "
        f"(PARLOR_LOCAL_THREADS={best_app})"
    )


def main() -> None:
    bench_main(__doc__, "local_model", "embedded model tokens/s (target 5)", run)


if __name__ == "__main__":
    main()
