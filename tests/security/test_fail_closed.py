"""Production fails closed: DEBUG=false needs an https SITE_URL, or start-up stops naming it.

Without SITE_URL the portal used to start on http://127.0.0.1:8000 with insecure cookies and no
HSTS. Plain http stays possible behind an explicit ALLOW_INSECURE_HTTP=true.
"""

from tests.security.support import run_django

SECURE = "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.SITE_URL)"


def test_production_without_site_url_refuses_to_start():
    result = run_django("", SITE_URL=None)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SITE_URL" in result.stderr


def test_production_with_http_site_url_refuses_to_start():
    result = run_django("", SITE_URL="http://whales.example")
    assert result.returncode != 0
    assert "SITE_URL" in result.stderr
    assert "ALLOW_INSECURE_HTTP" in result.stderr


def test_http_is_allowed_only_when_asked_for():
    result = run_django(SECURE, SITE_URL="http://whales.example", ALLOW_INSECURE_HTTP="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "http://whales.example"]


def test_https_site_url_starts_with_secure_cookies():
    result = run_django(SECURE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "https://whales.example"]


def test_debug_runs_still_start_without_site_url():
    result = run_django(SECURE, DEBUG="true", SITE_URL=None, SECRET_KEY=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "http://127.0.0.1:8000"]
