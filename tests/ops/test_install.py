"""deploy/install.sh in a scratch prefix: it installs, it is safe to run twice, it never
overwrites the environment file, and --dry-run changes nothing."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "deploy" / "install.sh"
VENV = ROOT / ".venv"

pytestmark = pytest.mark.slow


def install(prefix: Path, *options: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--prefix", str(prefix), "--venv", str(VENV), "--skip-pip", *options],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "/opt/whalewatch/app" not in str(path)
    }


def test_dry_run_changes_nothing(tmp_path):
    result = install(tmp_path / "root", "--dry-run")
    assert not (tmp_path / "root").exists()
    assert "+ mkdir -p" in result.stdout
    assert "would write it from deploy/whalewatch.env.example" in result.stdout


def test_twice_without_django_steps_keeps_the_env_file(tmp_path):
    prefix = tmp_path / "root"
    first = install(prefix, "--skip-django")
    env_file = prefix / "etc/whalewatch/whalewatch.env"
    generated = env_file.read_text()
    secret = next(line for line in generated.splitlines() if line.startswith("SECRET_KEY="))
    assert len(secret) > len("SECRET_KEY=") + 50
    assert oct(env_file.stat().st_mode)[-3:] == "640"
    assert "WHALE_VAR_DIR=" + str(prefix / "var/lib/whalewatch") in generated
    assert "written with a new SECRET_KEY" in first.stdout
    for unit in ("web", "worker", "beat", "ingest"):
        assert (prefix / f"etc/systemd/system/whalewatch-{unit}.service").is_file()
    assert (prefix / "etc/systemd/system/whalewatch.target").is_file()
    assert (prefix / "etc/nginx/sites-available/whalewatch.conf").is_file()
    assert (prefix / "opt/whalewatch/app/manage.py").is_file()
    assert not (prefix / "opt/whalewatch/app/.venv").exists()

    env_file.write_text(generated + "# operator's edit\n")
    before = snapshot(prefix)
    second = install(prefix, "--skip-django")
    assert "exists: left as it is" in second.stdout
    assert second.stdout.count("unchanged") == 6  # five units and the manage wrapper
    assert snapshot(prefix) == before  # nothing outside the code folder changed
    assert (prefix / "opt/whalewatch/app.previous/manage.py").is_file()


@pytest.fixture
def scratch_database():
    db = connection.settings_dict
    name = f"ww_ops_install_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db(transaction=True)
def test_twice_with_migrate_and_collectstatic(tmp_path, scratch_database):
    prefix = tmp_path / "root"
    var_dir = prefix / "var/lib/whalewatch"
    env_file = prefix / "etc/whalewatch/whalewatch.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(
        "DEBUG=false\n"
        "SECRET_KEY=install-test-secret-key-0123456789abcdefghijklmnop\n"
        f"DATABASE_URL={scratch_database}\n"
        f"REDIS_URL={os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/6')}\n"
        "REDIS_KEY_PREFIX=ww-ops-install\n"
        f"WHALE_VAR_DIR={var_dir}\n"
        f"STATIC_ROOT={var_dir}/static\n"
        "ALLOWED_HOSTS=whales.example.org\n"
        "SITE_URL=http://whales.example.org\n"
        "ALLOW_INSECURE_HTTP=true\n"
        "DEFAULT_FROM_EMAIL=Whale Watch <whalewatch@example.org>\n"
    )
    first = install(prefix)
    assert "Applying detection.0001_initial... OK" in first.stdout
    assert (var_dir / "static/staticfiles.json").is_file()
    second = install(prefix)
    assert "No migrations to apply." in second.stdout
    assert "exists: left as it is" in second.stdout
