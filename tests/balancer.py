"""HAProxy from Debian with deploy/haproxy.cfg (sticky sessions) in front of Parlor replicas,
on a free loopback port: for tests/test_replicas.py and bench/replicas.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence

import httpx
from apprunner import ROOT, RunningApp, free_port


@contextlib.contextmanager
def haproxy(
    replicas: Sequence[RunningApp], timeout: float = 60
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Its URL and process, once it answers /healthz for a replica; stopped on leaving."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy not found: install Debian's haproxy (.ci/run does)")
    port = free_port()
    env = {**os.environ, "PARLOR_BALANCER": f"127.0.0.1:{port}"}
    for n, app in enumerate(replicas, 1):
        env[f"PARLOR_REPLICA_{n}"] = f"127.0.0.1:{app.port}"
    config = str(ROOT / "deploy" / "haproxy.cfg")
    proxy = subprocess.Popen([binary, "-db", "-f", config], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:  # ready once it answers for a replica
            if proxy.poll() is not None:
                raise RuntimeError("haproxy exited")
            try:
                if httpx.get(url + "healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy never answered for a replica")
            time.sleep(0.1)
        yield url, proxy
    finally:
        proxy.terminate()
        proxy.wait(timeout=15)
