"""Every bad environment value stops start-up with ImproperlyConfigured naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from whaleproject.env import Env

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**overrides: str) -> subprocess.CompletedProcess:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "false",
        "SECRET_KEY": "x" * 40,
        "SITE_URL": "https://whales.example",
        "WHALE_VAR_DIR": str(ROOT / "var" / "test"),
    }
    environ.update(overrides)
    environ = {k: v for k, v in environ.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", "import whaleproject.settings"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_good_environment_loads():
    result = load_settings()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("WHALE_MIN_BTC", "lots", "WHALE_MIN_BTC='lots' is not a number"),
        ("WHALE_MIN_BTC", "-5", "WHALE_MIN_BTC=-5.0 is below the minimum"),
        ("WHALE_MIN_BTC", "nan", "WHALE_MIN_BTC='nan' is not a finite number"),
        ("EMAIL_PORT", "25x", "EMAIL_PORT='25x' is not a whole number"),
        ("EMAIL_PORT", "70000", "EMAIL_PORT=70000 is above the maximum"),
        ("DATABASE_URL", "mysql://db/whales", "DATABASE_URL='mysql://db/whales' must start with"),
        (
            "DATABASE_URL",
            "postgres://u:hunter2@db:99999/x",
            "DATABASE_URL='postgres://u:***@db:99999/x' has a bad port",
        ),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL='http://127.0.0.1:6379' must start with"),
        (
            "ALLOWED_HOSTS",
            "a.example,,b.example",
            "ALLOWED_HOSTS='a.example,,b.example' has an empty item",
        ),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not one of"),
        ("WHALE_MEMORY_WARNING_MB", "600", "WHALE_MEMORY_RECOVERY_MB < WHALE_MEMORY_WARNING_MB"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 32 characters"),
    ],
)
def test_bad_value_names_the_variable(variable, value, message):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.stderr  # a password in a URL never reaches the message


def test_secret_key_required_when_debug_is_off():
    result = load_settings(SECRET_KEY=None)
    assert "SECRET_KEY is required but not set" in result.stderr


def test_secret_key_optional_in_debug():
    result = load_settings(SECRET_KEY=None, DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_database_defaults_to_sqlite_under_var():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; django.setup();"
            "print(settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'],"
            " settings.REDIS_URL)",
        ],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "whaleproject.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    engine, name, redis_url = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert name == str(ROOT / "var" / "whalewatch.sqlite3")
    assert redis_url == "redis://127.0.0.1:6379/0"


def test_secret_file_is_read(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret-from-file\n")
    assert Env({"TOKEN_FILE": str(secret)}).str("TOKEN") == "s3cret-from-file"


def test_unreadable_secret_file_names_the_variable(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="TOKEN_FILE points at"):
        Env({"TOKEN_FILE": str(tmp_path / "missing")}).str("TOKEN")


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "on"])
def test_booleans_true(value):
    assert Env({"FLAG": value}).bool("FLAG", False) is True


@pytest.mark.parametrize("value", ["false", "0", "no", "Off"])
def test_booleans_false(value):
    assert Env({"FLAG": value}).bool("FLAG", True) is False


def test_every_variable_is_documented_in_the_env_example():
    import re

    source = (ROOT / "whaleproject" / "settings.py").read_text()
    used = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', source))
    documented = set(
        re.findall(
            r"^#?\s*([A-Z][A-Z0-9_]+)=",
            (ROOT / "deploy" / "whalewatch.env.example").read_text(),
            re.M,
        )
    )
    assert used, "the settings module reads no variables?"
    assert used - documented == set()
