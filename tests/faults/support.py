"""Real processes for the fault tests that the older helpers (tests/support/processes.py) lack:
Daphne, a private PostgreSQL cluster holding a copy of the test schema, a dashboard socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.db import connection

from tests.support.pgcluster import PgCluster
from tests.support.processes import ROOT, free_port, kill, wait_for_port


def clone_test_database(cluster: PgCluster, name: str) -> str:
    """Copy the migrated test database into ``cluster``; returns the copy's URL.

    pg_dump of the already migrated schema takes about a second where `migrate` takes seven,
    which keeps a fault test inside its time budget.
    """
    db = connection.settings_dict
    url = cluster.create_database(name)
    dump = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            "--no-privileges",
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"],
            db["NAME"],
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(
        ["psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", url],
        input=dump.stdout,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return url


class Daphne:
    """`daphne whaleproject.asgi:application` on a free port, as the web unit runs it."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/whales/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "whaleproject.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            kill(self.process)
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
