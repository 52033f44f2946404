"""A real PostgreSQL server for the tests (Debian's `postgresql` package, no mock): one per
session, made by initdb in a temporary folder and listening on a free loopback port; each
test gets a database of its own (`pg_url`), and `store` gives the store tests both
implementations (TinyDB files, PostgreSQL).

PostgreSQL refuses to run as root: as root (CI, this machine), initdb and the server run as
`nobody`, in a folder given to it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from apprunner import free_port

from chat.history import History


def _bin(name: str) -> str:
    """A PostgreSQL program, from the newest version installed (Debian keeps them off PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    assert on_path, f"{name} not found: install Debian's postgresql package (.ci/run does)"
    return on_path


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *args] if os.geteuid() == 0 else args


class Postgres:
    """One server: `url(db)` for a database on it. Not `durable` (the tests): no fsync, as
    nothing must outlive the session; durable (bench.store_pg): PostgreSQL's defaults."""

    def __init__(self, *, durable: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="parlor-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "nobody")
        self.port = free_port()
        data = self.folder / "data"
        subprocess.run(
            _as_server_user(
                [
                    _bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "parlor",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    *(() if durable else ("--no-sync",)),
                ]
            ),
            check=True,
            capture_output=True,
            cwd=self.folder,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            _as_server_user(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(self.folder / "log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            cwd=self.folder,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://parlor@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run(
            _as_server_user(
                [_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "stop"]
            ),
            capture_output=True,
            cwd=self.folder,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def another(store):
    """A second store on the same data: another process, or the app after a restart."""
    if not isinstance(store, History):
        from chat.history_pg import PgHistory  # psycopg_pool only where PostgreSQL is tested

        return PgHistory(store.pool.conninfo, pool_size=2)
    return History(store.root.parent)


def stored_text(store) -> str:
    """Everything the store keeps, as text: its files, or every row of every table."""
    if isinstance(store, History):
        return "".join(p.read_text() for p in store.root.parent.rglob("*") if p.is_file())
    with store.pool.connection() as conn:
        tables = [
            r["tablename"]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return "".join(str(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: Postgres) -> Iterator[str]:
    """A fresh, empty database of the session's server."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=["tinydb", "postgresql"])
def store(request, tmp_path):
    """The store under test: TinyDB files in `tmp_path`, or PostgreSQL in a fresh database."""
    if request.param == "tinydb":
        yield History(tmp_path)
        return
    from chat.history_pg import PgHistory

    history = PgHistory(request.getfixturevalue("pg_url"), pool_size=4)
    yield history
    history.close()
