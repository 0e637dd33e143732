"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a fresh cluster in a temporary
folder, listening on 127.0.0.1 only (no Unix socket), password authentication over TCP. PostgreSQL refuses
to run as root, so as root the cluster belongs to the ``postgres`` user the package creates. The server
dies with the process that started it (PR_SET_PDEATHSIG), so a crashed session leaves nothing behind."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

PG_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60
USER = "docqa"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder, or None when the binaries are absent."""
    found = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "postgres").exists()), key=lambda p: p.parent.name)
    return found[-1] if found else None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    bin: Path

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database (a test's own); returns its DSN."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG: a fast shutdown


@contextmanager
def postgres_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """initdb, start, yield, stop (fast shutdown), delete the cluster."""
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="docqa-pg-"))
    data = root / "data"
    password = secrets.token_urlsafe(12)
    (root / "pw").write_text(password)
    if owner:
        shutil.chown(root, owner)
        shutil.chown(root / "pw", owner)
    as_owner = {"user": owner, "group": owner, "extra_groups": []} if owner else {}
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D", str(data),
            "-U", USER,
            f"--pwfile={root / 'pw'}",
            "--auth-host=scram-sha-256",
            "--auth-local=reject",
            "-E", "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        cwd=root,
        **as_owner,
    )
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115  (closed below, after the server)
    process = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D", str(data),
            "-h", "127.0.0.1",
            "-p", str(port),
            "-k", "",  # no Unix socket
            "-c", "fsync=off",  # a throw-away cluster: durability costs time and buys nothing
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        preexec_fn=_die_with_parent,
        **as_owner,
    )
    server = PostgresServer("127.0.0.1", port, USER, password, bin_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", USER], capture_output=True
            )
            if ready.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
