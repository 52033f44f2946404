"""Launch the real app (`python app.py`) on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEST_MODELS = Path(__file__).resolve().parent / "models-test.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """Pids of the processes whose parent is `pid` (read from /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(stat.parent.name))
    return pids


class RunningApp:
    """One `python app.py` process; `url` once `/healthz` answers 200."""

    def __init__(
        self, data_dir: Path, *, models: Path = TEST_MODELS, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = data_dir.parent / f"app-{self.port}.log"
        full_env = {
            **os.environ,
            "PARLOR_DATA_DIR": str(data_dir),
            "PARLOR_MODELS": str(models),
            "PARLOR_SECRET": "test-secret-for-the-suite-0123456789",
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            # Titles by the model change what the sidebar shows once an answer ends: tests
            # that look for a conversation by its first words turn them off (tests/test_titles.py
            # checks titles on the service).
            "PARLOR_MODEL_TITLES": "false",
            **(env or {}),
        }
        if "HF_TOKEN" not in (env or {}):
            full_env.pop("HF_TOKEN", None)  # the app gets a server token only when a test says
        self._log = open(self.log_path, "w")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120) -> RunningApp:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"app not ready in {timeout}s:\n{self.log()}")

    def children(self) -> list[int]:
        """Pids of processes whose parent is the app (the embedded model)."""
        return children_of(self.proc.pid)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
