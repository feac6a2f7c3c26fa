"""The outbound client's SSRF guard, timeouts and redirect policy, against real sockets."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest

from alerts import http

BLOCKED_URLS = [
    "http://localhost:{port}/",
    "http://localhost.:{port}/",
    "http://LOCALHOST:{port}/",
    "http://api.localhost:{port}/",
    "http://127.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://2130706433:{port}/",  # decimal 127.0.0.1
    "http://0x7f.1:{port}/",  # hex
    "http://0177.0.0.1:{port}/",  # octal
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://192.0.0.8/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[::]/",
    "http://[2002:7f00:1::1]/",  # 6to4 embedding 127.0.0.1
    "http://[2002:c0a8:101::1]/",  # 6to4 embedding 192.168.1.1
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
]


@pytest.fixture
def listener():
    """A socket on 127.0.0.1 that counts connections: a refused request must never reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


@pytest.mark.parametrize("template", BLOCKED_URLS)
def test_refused_without_connecting(template, listener, settings):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = False
    port, accepted = listener
    with pytest.raises(http.BlockedDestination):
        http.post(template.format(port=port), b"{}", {})
    time.sleep(0.05)
    assert accepted == []


def test_a_name_resolving_to_loopback_is_judged_by_its_address(settings, listener):
    """ "vm" and "runsc" are in /etc/hosts as 127.0.0.1 here: the resolved IP decides."""
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = False
    port, accepted = listener
    name = next(
        (n for n in ("vm", "runsc", socket.gethostname()) if _resolves_to_loopback(n)), None
    )
    if name is None:
        pytest.skip("no non-localhost name resolves to loopback on this machine")
    with pytest.raises(http.BlockedDestination, match="127.0.0.1"):
        http.post(f"http://{name}:{port}/", b"{}", {})
    assert accepted == []


def _resolves_to_loopback(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"],
)
def test_public_addresses_pass(address):
    assert http.blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "::ffff:127.0.0.1", "2002:7f00:1::1"],
)
def test_the_loopback_setting_allows_loopback_only(address):
    assert http.blocked_reason(ipaddress.ip_address(address), allow_loopback=False)
    assert http.blocked_reason(ipaddress.ip_address(address), allow_loopback=True) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1", "fc00::1"])
def test_the_loopback_setting_still_blocks_private(address):
    assert http.blocked_reason(ipaddress.ip_address(address), allow_loopback=True)


def test_loopback_allowed_by_setting(settings, receiver):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    response = http.post(receiver.url, b'{"a":1}', {"webhook-id": "x"})
    assert response.status == 200 and response.body == b"ok"
    assert response.peer == "127.0.0.1"
    [received] = receiver.wait_for(1)
    assert received.body == b'{"a":1}'
    assert received.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_redirects_are_not_followed(settings, receiver):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    receiver.script = [(302, {"Location": "http://169.254.169.254/"}, b"")]
    response = http.post(receiver.url, b"{}", {})
    assert response.status == 302
    assert len(receiver.requests) == 1


def test_response_is_read_up_to_a_bound(settings, receiver):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    receiver.script = [(200, {}, b"x" * (http.MAX_RESPONSE_BYTES * 3))]
    response = http.post(receiver.url, b"{}", {})
    assert len(response.body) == http.MAX_RESPONSE_BYTES and response.truncated


@pytest.mark.alone  # times itself
def test_hanging_server_hits_the_total_timeout(settings, receiver):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    settings.WHALE_OUTBOUND_TOTAL_TIMEOUT = 0.5
    receiver.script = ["hang"]
    started = time.monotonic()
    with pytest.raises(http.OutboundTimeout):
        http.post(receiver.url, b"{}", {})
    assert time.monotonic() - started < 2


@pytest.mark.alone  # times itself
def test_slow_drip_server_cannot_outlast_the_total_timeout(settings):
    """A server that sends one byte every 0.2 s keeps every read alive; the total still holds."""
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    settings.WHALE_OUTBOUND_TOTAL_TIMEOUT = 1.0
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drip():
        conn, _ = server.accept()
        conn.recv(65536)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(50):
                conn.sendall(b"X-Drip: 1\r\n")
                time.sleep(0.2)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(http.OutboundTimeout):
        http.post(f"http://127.0.0.1:{server.getsockname()[1]}/", b"{}", {})
    assert time.monotonic() - started < 2.5
    server.close()


def test_connect_timeout_defaults():
    from django.conf import settings

    assert settings.WHALE_OUTBOUND_CONNECT_TIMEOUT == 2.0
    assert settings.WHALE_OUTBOUND_TOTAL_TIMEOUT == 10.0


def test_closed_port_is_a_retryable_error(settings):
    from tests.conftest import closed_port

    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    with pytest.raises(http.OutboundError) as caught:
        http.post(f"http://127.0.0.1:{closed_port()}/", b"{}", {})
    assert not isinstance(caught.value, http.BlockedDestination)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pass@example.org/", "user:password@"),
        ("https://token@example.org/", "user:password@"),
        ("https://example.org:0/", "bad port"),
        ("https://example.org:70000/", "bad port"),
        ("https:///nohost", "no host"),
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost/", "localhost"),
        ("http://10.1.2.3/", "non-public"),
        ("http://[fe80::1]/", "non-public"),
        ("http://2130706433/", "dotted form"),
        ("http://0x7f.1/", "dotted form"),
        ("https://example.org/" + "a" * 2000, "longer than"),
    ],
)
def test_bad_webhook_urls_are_refused_at_save_time(url, message, settings):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(ValueError, match=message):
        http.check_url(url)


def test_good_webhook_url_passes():
    assert http.check_url("https://hooks.example.org:8443/whales?x=1") == (
        "https",
        "hooks.example.org",
        8443,
    )
