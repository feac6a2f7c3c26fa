"""The backup and restore commands of docs/OPERATIONS.md ("Backup and restore"), run for real
against scratch databases: dump, drop, recreate, restore, and the rows are back."""

import shutil
import subprocess
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from detection.models import WhaleTransaction

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("pg_dump", "pg_restore", "createdb", "dropdb")),
        reason="PostgreSQL client tools are not installed (apt-get install postgresql-client)",
    ),
]


def connection_options() -> tuple[list[str], dict]:
    db = connection.settings_dict
    options = ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
    if db["USER"]:
        options += ["-U", db["USER"]]
    environment = {"PGPASSWORD": db["PASSWORD"]} if db["PASSWORD"] else {}
    return options, environment


def run(*command: str, environment: dict) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        command,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def whale_count(database: str) -> int:
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname=database,
    ) as scratch:
        return scratch.execute("SELECT count(*) FROM detection_whaletransaction").fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_documented_dump_and_restore_bring_the_rows_back(tmp_path):
    now = datetime.now(tz=UTC)
    for index in range(3):
        WhaleTransaction.objects.create(
            txid=f"{index:064x}",
            first_seen_at=now,
            value=100 * 10**8,
            transfer=100 * 10**8,
            vsize=250,
            weight=1000,
        )
    options, environment = connection_options()
    source = connection.settings_dict["NAME"]
    scratch = f"ww_ops_backup_{uuid.uuid4().hex[:8]}"
    first_dump = tmp_path / "whalewatch-1.dump"
    second_dump = tmp_path / "whalewatch-2.dump"
    try:
        # Backup, as documented: custom format, compressed, restorable table by table.
        run("pg_dump", *options, "-Fc", "-f", str(first_dump), source, environment=environment)
        # Restore into a new, empty database, as documented.
        run("createdb", *options, scratch, environment=environment)
        run(
            "pg_restore", *options, "--no-owner", "--exit-on-error", "-d", scratch,
            str(first_dump), environment=environment,
        )  # fmt: skip
        assert whale_count(scratch) == 3
        # The disaster drill: dump the scratch copy, drop it, recreate it, restore it.
        run("pg_dump", *options, "-Fc", "-f", str(second_dump), scratch, environment=environment)
        run("dropdb", *options, scratch, environment=environment)
        run("createdb", *options, scratch, environment=environment)
        run(
            "pg_restore", *options, "--no-owner", "--exit-on-error", "-d", scratch,
            str(second_dump), environment=environment,
        )  # fmt: skip
        assert whale_count(scratch) == 3
        listing = run("pg_restore", "--list", str(second_dump), environment=environment).stdout
        assert "TABLE DATA public detection_whaleevent" in listing
    finally:
        run("dropdb", *options, "--if-exists", scratch, environment=environment)
