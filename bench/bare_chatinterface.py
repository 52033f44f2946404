"""The baseline: a bare `gr.ChatInterface` streaming from an OpenAI-compatible server.

What a Gradio user writes first: `InferenceClient` on the server's base URL, one yield per
token, `concurrency_limit=None` and `launch(max_threads=...)` raised so that neither caps
the load. huggingface_hub shares one httpx client across threads, whose pool stops at 100
connections; it is raised too, so the baseline measures Gradio, not the pool.

    BENCH_BASE_URL=http://127.0.0.1:PORT/v1 GRADIO_SERVER_PORT=7861 \
        python bench/bare_chatinterface.py
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import httpx2
from huggingface_hub import InferenceClient, set_client_factory

BASE_URL = os.environ["BENCH_BASE_URL"]
MODEL = os.environ.get("BENCH_MODEL", "scripted")
MAX_THREADS = int(os.environ.get("BENCH_MAX_THREADS", "1000"))
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "1024"))

set_client_factory(
    lambda: httpx2.Client(
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=MAX_THREADS),
        follow_redirects=True,
        timeout=None,
    )
)
client = InferenceClient(base_url=BASE_URL, api_key="none")


def respond(message: str, history: list[dict]):
    messages = [{"role": m["role"], "content": m["content"]} for m in history]
    messages.append({"role": "user", "content": message})
    text = ""
    for chunk in client.chat_completion(messages, model=MODEL, stream=True, max_tokens=MAX_TOKENS):
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            text += piece
            yield text


demo = gr.ChatInterface(respond, concurrency_limit=None)

if __name__ == "__main__":
    demo.launch(
        server_name="127.0.0.1",
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_threads=MAX_THREADS,
    )
