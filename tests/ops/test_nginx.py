"""The nginx site: WebSocket upgrade, headers Django may trust, and nginx's own syntax check."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SITE = ROOT / "deploy" / "nginx" / "whalewatch.conf"


def location(text: str, prefix: str) -> str:
    """The HTTPS server's block for ``prefix`` (the last one: port 80 only redirects)."""
    blocks = re.findall(r"location " + re.escape(prefix) + r" \{(.*?)\n    \}", text, re.S)
    assert blocks, f"no location {prefix}"
    return blocks[-1]


def test_websocket_location_upgrades_the_connection():
    ws = location(SITE.read_text(), "/ws/")
    assert "proxy_http_version 1.1;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $whalewatch_connection;" in ws


def test_forwarded_headers_are_overwritten_not_appended():
    text = SITE.read_text()
    for prefix in ("/ws/", "/"):
        block = location(text, prefix)
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in block
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block
    # Appending would let a client choose the address daphne reports (--proxy-headers).
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for" not in text


def test_static_files_are_served_from_static_root():
    assert "alias /var/lib/whalewatch/static/;" in location(SITE.read_text(), "/static/")


@pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("openssl") is None,
    reason="nginx (and openssl) not installed: apt-get install nginx to run nginx -t",
)
def test_site_passes_nginx_t(tmp_path):
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=whales.example.org",
            "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    site = (
        SITE.read_text()
        .replace("/etc/ssl/certs/ssl-cert-snakeoil.pem", str(tmp_path / "cert.pem"))
        .replace("/etc/ssl/private/ssl-cert-snakeoil.key", str(tmp_path / "key.pem"))
        .replace("/var/log/nginx/", f"{tmp_path}/")
    )
    (tmp_path / "site.conf").write_text(site)
    mime_types = Path("/etc/nginx/mime.types")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        "http {\n"
        + (f"    include {mime_types};\n" if mime_types.exists() else "")
        + f"    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
