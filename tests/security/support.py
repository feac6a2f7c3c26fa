"""Run Django in a fresh interpreter with a chosen environment: settings are read at start-up,
so a setting's parsing can only be tested through its environment variable this way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

BASE_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 40,
    "SITE_URL": "https://whales.example",
    "ALLOWED_HOSTS": "testserver,whales.example",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
}
PASSED_THROUGH = ("PATH", "DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "WHALE_VAR_DIR")


def run_django(code: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """Runs `code` after django.setup() in a subprocess; None removes a variable."""
    environ = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    environ.setdefault("WHALE_VAR_DIR", str(ROOT / "var" / "test"))
    environ["DJANGO_SETTINGS_MODULE"] = "whaleproject.settings"
    environ.update(BASE_ENV)
    environ.update(overrides)
    environ = {k: v for k, v in environ.items() if v is not None}
    script = "import django\ndjango.setup()\n" + code
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
