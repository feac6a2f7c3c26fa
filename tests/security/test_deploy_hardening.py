"""deploy/: nginx hides its version and rate-limits the ways in; the worker (the process that
sends webhooks) cannot reach private, link-local or cloud-metadata addresses even if the SSRF
guard were bypassed. tests/ops checks the files with nginx -t and systemd-analyze verify."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
NGINX = (ROOT / "deploy" / "nginx" / "whalewatch.conf").read_text()
WORKER = (ROOT / "deploy" / "systemd" / "whalewatch-worker.service").read_text()
THROTTLED_PATHS = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/admin/login/",
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
]


def test_nginx_hides_its_version():
    assert re.search(r"^\s*server_tokens off;", NGINX, re.M)


def limited_locations() -> list[str]:
    """The regex of every location block that has a limit_req."""
    blocks = re.findall(r"location ~ (\S+) \{(.*?)\n    \}", NGINX, re.S)
    return [pattern for pattern, body in blocks if "limit_req zone=" in body]


@pytest.mark.parametrize("path", THROTTLED_PATHS)
def test_nginx_limits_requests_to_the_ways_in(path):
    assert re.search(
        r"^limit_req_zone \$binary_remote_addr zone=\w+:\d+m rate=\d+r/m;", NGINX, re.M
    )
    assert any(re.search(pattern, path) for pattern in limited_locations()), path


def test_nginx_does_not_limit_the_feed():
    assert not any(re.search(p, "/api/v1/whales/") for p in limited_locations())


def test_worker_cannot_reach_private_link_local_or_metadata_addresses():
    denied = " ".join(re.findall(r"^IPAddressDeny=(.*)$", WORKER, re.M)).split()
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
    ):
        assert network in denied
    # Loopback stays open: PostgreSQL and Redis listen there.
    assert re.search(r"^IPAddressAllow=.*\blocalhost\b", WORKER, re.M)


def test_worker_sandbox_filters_system_calls_and_hides_processes():
    assert re.search(r"^SystemCallFilter=@system-service$", WORKER, re.M)
    assert re.search(r"^ProtectProc=invisible$", WORKER, re.M)
