"""Response headers: a Content-Security-Policy without inline script, Referrer-Policy and
Permissions-Policy on every page; no page carries an inline <script>."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES = ["/accounts/login/", "/", "/stats/", "/alerts/", "/api/docs/", "/api/redoc/"]
# Data blocks (json_script, type="application/json") are not executed; CSP allows them.
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.I)


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_the_security_headers(client, alice, path):
    if path != "/accounts/login/":
        client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    body = b"".join(response) if response.streaming else response.content
    assert not INLINE_SCRIPT.search(body), path


def test_api_responses_carry_the_policy_too(client, alice):
    client.force_login(alice)
    assert "default-src" in client.get("/api/v1/whales/")["Content-Security-Policy"]


def test_stats_js_never_falls_back_to_unescaped_text():
    source = (ROOT / "static" / "js" / "stats.js").read_text()
    assert ": String" not in source
    assert "escapeHtml" in source
