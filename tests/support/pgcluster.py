"""A private, throwaway PostgreSQL cluster: something a fault test or chaos run may stop.

The shared server on 127.0.0.1:5432 belongs to everybody on the machine; stopping it to see
whether Whale Watch survives would break every other engineer's tests. This starts a cluster of
its own (``initdb`` into a temporary folder, a free port, trust authentication, no fsync) that
can be stopped and started again at will:

    with PgCluster() as cluster:          # initdb + start
        cluster.create_database("chaos")
        url = cluster.url("chaos")        # postgres://postgres@127.0.0.1:PORT/chaos
        cluster.stop()                    # pg_ctl stop -m fast: clients see the server go away
        cluster.start()                   # same folder, same port: clients reconnect
    # stopped and deleted

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` OS user
(``runuser``); as anyone else it runs as that user.

    python -m tests.support.pgcluster     # start one, print its URL, stop on Ctrl-C
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVICE_USER = "postgres"
# Durability is pointless for a scratch cluster and fsync is what makes initdb and commits slow.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not on PATH (PostgreSQL server binaries are needed)")
    return path


class PgCluster:
    def __init__(self, *, port: int | None = None, base_dir: str | os.PathLike | None = None):
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ww-pgcluster-", dir=base_dir))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.running = False
        self._as_root = os.geteuid() == 0
        if self._as_root:
            owner = pwd.getpwnam(SERVICE_USER)
            # mkdtemp is 0700 root: the service user must be able to reach its own folder.
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def user(self) -> str:
        return SERVICE_USER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle ---------------------------------------------------------------------------

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        if self._as_root:
            command = ("runuser", "-u", SERVICE_USER, "--", *command)
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{self.log_tail()}"
            )
        return result

    def init(self) -> None:
        self._run(
            _binary("initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            self.user,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        )
        lines = [f"{key} = '{value}'" for key, value in SETTINGS.items()]
        lines += [f"port = {self.port}", f"unix_socket_directories = '{self.root}'"]
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/support/pgcluster.py\n" + "\n".join(lines) + "\n")

    def start(self, timeout: float = 60) -> None:
        """Start (again): same folder and port, so clients' URLs stay valid across a stop."""
        if not self.data.exists():
            self.init()
        self._run(
            _binary("pg_ctl"),
            "start",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log_path),
            "--wait",
            "--timeout",
            str(int(timeout)),
            timeout=timeout + 10,
        )
        self.running = True
        self._wait_accepting(timeout)

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """``fast``: sessions are cut at once, as in a crash or restart seen from a client."""
        if not self.running:
            return
        self._run(
            _binary("pg_ctl"),
            "stop",
            "--pgdata",
            str(self.data),
            "--mode",
            mode,
            "--wait",
            "--timeout",
            str(int(timeout)),
            timeout=timeout + 10,
        )
        self.running = False

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash, not a shutdown); the next start runs recovery."""
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)
        self.running = False

    def cleanup(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.cleanup()

    # -- databases ---------------------------------------------------------------------------

    def _wait_accepting(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping a leftover of that name); returns its URL."""
        quoted = '"' + name.replace('"', '""') + '"'
        self.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        self.execute(f"CREATE DATABASE {quoted}")
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


if __name__ == "__main__":
    with PgCluster() as cluster:
        print(f"PostgreSQL running: {cluster.url()}  (data in {cluster.root}; Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
