"""`tests/scripted_server.py` in a process of its own, so its CPU is nobody's measurement.

    python -m bench.scripted '{"default": ["tokens", {"tokens": ["a", "b"], "delay": 0.01}]}'

prints `ready <port>` and serves until its standard input closes. The JSON may also hold
"models": {model: [scenario, options]}.

Two changes to how it serves, both so that the harness does not charge its own delays to
the app under test:
- TCP_NODELAY on its connections. ScriptedServer binds a socket made without IPPROTO_TCP,
  so asyncio never sets TCP_NODELAY on what it accepts, and Nagle holds each small SSE
  write until the client's delayed ACK (~40 ms). Accepted sockets inherit the listener's.
- Tokens on a schedule: token n leaves at start + n × delay, where `asyncio.sleep(delay)`
  between tokens would add each oversleep of a loaded loop to all later tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.common import ScriptedServer


class PacedScriptedServer(ScriptedServer):
    def __init__(self) -> None:
        super().__init__()
        self.starts: list[float] = []  # when each stream began (time.monotonic)

    async def _stream(
        self,
        scenario: str,
        tokens: list[str],
        meta: dict[str, Any],
        delay: float,
        client: Any,
        *more: Any,
    ) -> AsyncIterator[bytes]:
        start = time.monotonic()
        self.starts.append(start)
        parts = super()._stream(scenario, tokens, meta, 0, client, *more)
        number = 0
        async for part in parts:
            if delay and 0 < number < len(tokens):
                await asyncio.sleep(max(0.0, start + number * delay - time.monotonic()))
            number += 1
            yield part


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    with PacedScriptedServer() as server:
        server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if "default" in config:
            scenario, options = config["default"]
            server.script(scenario, **options)
        for model, (scenario, options) in config.get("models", {}).items():
            server.script_model(model, scenario, **options)
        print(f"ready {server.port}", flush=True)
        sys.stdin.read()  # returns at EOF: the benchmark is done with us
        if log := os.environ.get("BENCH_SCRIPTED_LOG"):  # stream start times, one a line
            Path(log).write_text("".join(f"{t:.6f}\n" for t in server.starts))


if __name__ == "__main__":
    main()
