"""A Starlette app served by uvicorn from a background thread on 127.0.0.1 (for test servers)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route


class LoopbackServer:
    """`with Server() as s:` serves `routes` on a free port of 127.0.0.1 until the block ends."""

    name = "test server"

    def __init__(self, routes: list[Route]) -> None:
        self._lock = threading.Lock()  # guards the log, and any state a subclass keeps
        self._log: list[dict[str, Any]] = []
        config = uvicorn.Config(
            Starlette(routes=routes),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request the server received (each subclass says what it records); a copy."""
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    def _remember(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    @property
    def port(self) -> int:
        assert self._sock is not None, f"{self.name} not started"
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle delay
        self._sock.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        return self

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        assert self._sock is not None
        await self._server.serve(sockets=[self._sock])

    def _before_exit(self) -> None:
        """Runs on the server's loop just before it is asked to stop."""

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._before_exit)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
