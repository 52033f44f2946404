"""A real Redis server for the tests (Debian's `redis-server` package, no mock): one per
session, on a free loopback port, keeping nothing on disk. As root (CI, this machine) it
runs as `nobody`, as PostgreSQL does (tests/pg.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from apprunner import free_port


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server not found: install Debian's redis-server (.ci/run does)"
        self.folder = Path(tempfile.mkdtemp(prefix="parlor-redis-"))
        self.port = free_port()
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder)]
        if os.geteuid() == 0:
            shutil.chown(self.folder, "nobody")
            args = ["runuser", "-u", "nobody", "--", *args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        while True:  # ready once it answers
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "no Redis"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()
