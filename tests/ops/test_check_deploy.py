"""`manage.py check --deploy` is clean for a production environment written as the env example
documents it (only SECRET_KEY filled in, as deploy/install.sh does)."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "deploy" / "whalewatch.env.example"


def example_environment(tmp_path: Path) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import envfile
    finally:
        sys.path.pop(0)
    variables = envfile.parse(EXAMPLE.read_text())
    variables.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        WHALE_VAR_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    return {"PATH": os.environ.get("PATH", ""), **variables}


def test_documented_production_environment_passes_check_deploy(tmp_path):
    environment = example_environment(tmp_path)
    assert environment["DEBUG"] == "false"
    assert environment["SITE_URL"].startswith("https://")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert not re.search(r"\(security\.[WE]\d+\)", output)


def test_production_settings_are_the_secure_ones(tmp_path):
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS, "
        "s.SESSION_COOKIE_AGE, s.LOG_FORMAT)"
    )
    environment = example_environment(tmp_path)
    environment["DJANGO_SETTINGS_MODULE"] = "whaleproject.settings"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "False True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') "
        "['https://whales.example.org'] 1209600 json"
    )
