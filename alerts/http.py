"""The one outbound HTTP client: every webhook (and test send) leaves the portal through here.

Subscribers are ordinary users, so a webhook URL is untrusted input. The guard works on the
address actually connected to, not on the name in the URL:

1. the host is resolved once; every address the resolver returns must be public (one private
   answer refuses the whole request, so a name that answers both ways cannot win a race);
2. the socket connects to exactly those checked addresses; the URL's host name only travels in
   the Host header and, for https, in SNI and certificate verification;
3. after connecting, the socket's peer address is checked again.

DNS rebinding between check and connect is impossible because nothing resolves twice. Redirects
are never followed (a 3xx is just an answer), the connect and total times are bounded, and only
the first MAX_RESPONSE_BYTES of an answer are read. Only WHALE_OUTBOUND_ALLOW_LOOPBACK relaxes the
guard, and only for loopback (tests and receivers on the same machine).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings

USER_AGENT = "WhaleWatch-Webhooks/1.0"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL_LENGTH = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Python's is_private/is_global miss or disagree on some of these between versions, so the list
# is explicit; `not is_global` below is a second net, not the first.
_BLOCKED_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches local services on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata at 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
]
_BLOCKED_V6 = [
    ipaddress.ip_network(n)
    for n in (
        "::/128",
        "::1/128",
        "::ffff:0:0/96",  # IPv4-mapped: judged by the embedded address, see below
        "64:ff9b::/96",  # NAT64 reaches any IPv4 address, private ones included
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # old site-local
        "ff00::/8",  # multicast
    )
]
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


class OutboundError(Exception):
    """The request could not be made or did not complete; the message is safe to show users."""


class BlockedDestination(OutboundError):
    """The URL leads to an address the portal must not call."""


class OutboundTimeout(OutboundError):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes  # at most MAX_RESPONSE_BYTES
    duration: float  # seconds, connect to last byte read
    peer: str = ""
    truncated: bool = field(default=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def blocked_reason(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why calling `ip` is refused, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip.teredo:
            embedded = ip.teredo[1]
        if embedded is not None:
            reason = blocked_reason(embedded, allow_loopback=allow_loopback)
            if reason:
                return f"{reason} (embedded in {ip})"
            if ip.ipv4_mapped:
                return None
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    for network in _BLOCKED_V4 if ip.version == 4 else _BLOCKED_V6:
        if ip in network:
            return f"non-public address ({network})"
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "non-public address"
    return None


def loopback_allowed() -> bool:
    return bool(getattr(settings, "WHALE_OUTBOUND_ALLOW_LOOPBACK", False))


_URL_SAFE = "/%:@!$&'()*+,;=-._~?"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def normalise_url(url: str) -> str:
    """The URL as it will be sent: IDNA host, percent-encoded path and query; or ValueError.

    A URL with spaces or a non-ASCII path used to be saved and fail only at send time.
    """
    url = url.strip()
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise ValueError("URL cannot contain spaces, tabs or line breaks; percent-encode them.")
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport, "", ""
    if not hostport.startswith("["):
        host, colon, port = hostport.partition(":")
    labels = []
    for label in host.split("."):
        try:
            if not label.isascii():
                label = label.encode("idna").decode("ascii")
            elif label.lower().startswith("xn--"):
                label.encode("ascii").decode("idna")  # raises on bad punycode
        except UnicodeError:
            raise ValueError("URL has a host name that is not valid IDNA.") from None
        labels.append(label.lower())
    netloc = f"{userinfo}{at}{'.'.join(labels)}{colon}{port}"
    path, query, fragment = (quote(p, safe=_URL_SAFE) for p in parts[2:5])
    if _BAD_PERCENT.search(path + query + fragment):
        raise ValueError("URL has a % that does not start a percent-encoded byte (%XX).")
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def check_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a webhook URL, or ValueError saying what is wrong with it.

    This is the save-time check (forms, API). It refuses literal addresses that are not public
    and numeric host spellings a resolver would read as an address ("2130706433", "0x7f.1");
    host names are judged at send time, on what they resolve to then.
    """
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("URL has a bad port (use 1 to 65535).") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("URL must start with http:// or https://.")
    if not parts.hostname:
        raise ValueError("URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "URLs with user:password@ are refused; verify our signature on your side instead."
        )
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if not 1 <= port <= 65535:
        raise ValueError("URL has a bad port (use 1 to 65535).")
    host = parts.hostname
    # Judge the host the way the resolver will read it: getaddrinfo applies IDNA (so
    # "１２７．０．０．１" and "127。0。0。1" are 127.0.0.1) and ignores the root dot ("127.0.0.1.").
    probe = _resolver_spelling(host)
    literal = _literal_address(probe)
    allow_loopback = loopback_allowed()
    if literal is not None:
        reason = blocked_reason(literal, allow_loopback=allow_loopback)
        if reason:
            raise ValueError(f"URL points at a {reason}; webhooks go to public addresses only.")
        if probe != host.strip("[]"):
            raise ValueError(
                "Write an IP address host in plain dotted form (four numbers, like 8.8.8.8)."
            )
    elif _is_loopback_name(probe) and not allow_loopback:
        raise ValueError("URL points at this machine (localhost); use a public address.")
    elif _looks_numeric(probe):
        raise ValueError(
            "Write an IP address host in plain dotted form (four numbers, like 8.8.8.8)."
        )
    return parts.scheme, host, port


_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _resolver_spelling(host: str) -> str:
    return unicodedata.normalize("NFKC", host).translate(_IDNA_DOTS).rstrip(".")


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _looks_numeric(host: str) -> bool:
    """Hosts like 2130706433, 0x7f.1 or 127.1 that inet_aton (and so getaddrinfo) reads as IPs."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _is_loopback_name(host: str) -> bool:
    # RFC 6761: localhost and *.localhost are loopback whatever a resolver says, with or
    # without the trailing root dot.
    name = host.lower().rstrip(".")
    return name in _LOOPBACK_NAMES or name.endswith(".localhost")


def resolve_public(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, all checked; BlockedDestination if any is refused."""
    allow_loopback = loopback_allowed()
    if _is_loopback_name(host) and not allow_loopback:
        raise BlockedDestination(f"{host} is this machine (loopback); refused")
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundError(f"{host} resolves to no address")
    for address in addresses:
        reason = blocked_reason(address, allow_loopback=allow_loopback)
        if reason:
            raise BlockedDestination(f"{host} resolves to {address}, a {reason}; refused")
    return addresses


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTPConnection whose socket was opened (and checked) before it was handed over."""

    def __init__(self, host: str, port: int, sock: socket.socket, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.sock = sock

    def connect(self):  # pragma: no cover - the socket is always set; never dial again
        raise OutboundError("connection closed before the request was sent")


def _connect(addresses, port: int, connect_timeout: float, deadline: float) -> socket.socket:
    last_error: Exception | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(min(connect_timeout, remaining))
        try:
            sock.connect((str(address), port))
        except TimeoutError as exc:
            sock.close()
            last_error = OutboundTimeout(f"connect to {address} timed out")
            last_error.__cause__ = exc
            continue
        except OSError as exc:
            sock.close()
            last_error = OutboundError(f"cannot connect to {address}: {exc.strerror or exc}")
            continue
        peer = ipaddress.ip_address(sock.getpeername()[0])
        reason = blocked_reason(peer, allow_loopback=loopback_allowed())
        if reason:  # belt and braces: the kernel connected somewhere we did not check
            sock.close()
            raise BlockedDestination(f"connected peer {peer} is a {reason}; refused")
        return sock
    raise last_error or OutboundTimeout("connect timed out")


# --- connection reuse ----------------------------------------------------------------------
#
# A worker sends many deliveries to the same few hosts, so a connection that the receiver keeps
# open is kept for the next POST to the same (scheme, host, port), per thread. It was opened
# through the guard above, so reusing it resolves nothing and reaches only the checked peer.

IDLE_SECONDS = 30.0  # below common server keep-alive timeouts, so we rarely meet a closed socket
_idle = threading.local()


@dataclass
class _Open:
    connection: _PinnedConnection
    peer: str
    idle_since: float


def _take_idle(key: tuple[str, str, int]) -> _Open | None:
    pool: dict = getattr(_idle, "pool", None) or {}
    held = pool.pop(key, None)
    if held is not None and time.monotonic() - held.idle_since > IDLE_SECONDS:
        held.connection.close()
        return None
    return held


def _keep_idle(key: tuple[str, str, int], held: _Open) -> None:
    pool = getattr(_idle, "pool", None)
    if pool is None:
        pool = _idle.pool = {}
    old = pool.pop(key, None)
    if old is not None:
        old.connection.close()
    held.idle_since = time.monotonic()
    pool[key] = held


def close_idle_connections() -> None:
    """Close this thread's kept connections (tests, worker shutdown)."""
    for held in (getattr(_idle, "pool", None) or {}).values():
        held.connection.close()
    _idle.pool = {}


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url` through the guard. Raises OutboundError (or a subclass)."""
    connect_timeout = float(settings.WHALE_OUTBOUND_CONNECT_TIMEOUT)
    total_timeout = float(settings.WHALE_OUTBOUND_TOTAL_TIMEOUT)
    try:
        scheme, host, port = check_url(url)
    except ValueError as exc:
        raise BlockedDestination(str(exc)) from None
    parts = urlsplit(url.strip())
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    key = (scheme, host, port)
    started = time.monotonic()
    held = _take_idle(key)
    if held is not None:
        try:
            return _exchange(held, key, target, body, headers, started, total_timeout)
        except _StaleConnection:
            # The receiver closed the kept connection before reading our request; a webhook
            # carries its webhook-id, so sending it again on a fresh connection is safe.
            started = time.monotonic()
    deadline = started + total_timeout
    addresses = resolve_public(host, port)
    sock = _connect(addresses, port, connect_timeout, deadline)
    peer = sock.getpeername()[0]
    try:
        if scheme == "https":
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLError as exc:
        sock.close()
        raise OutboundError(f"TLS error: {exc.reason or exc}") from None
    except OSError as exc:
        sock.close()
        raise OutboundError(f"connection failed: {exc.__class__.__name__}: {exc}") from None
    held = _Open(_PinnedConnection(host, port, sock, timeout=total_timeout), peer, started)
    try:
        return _exchange(held, key, target, body, headers, started, total_timeout)
    except _StaleConnection as exc:
        cause = exc.__cause__
        raise OutboundError(f"connection failed: {cause.__class__.__name__}: {cause}") from None


class _StaleConnection(Exception):
    """A kept connection failed before any answer byte arrived."""


def _exchange(
    held: _Open,
    key: tuple[str, str, int],
    target: str,
    body: bytes,
    headers: dict[str, str],
    started: float,
    total_timeout: float,
) -> Response:
    deadline = started + total_timeout
    connection = held.connection
    sock = connection.sock
    # A slow-drip server could keep each read under the per-read timeout for ever; the watchdog
    # closes the socket when the total time is up, whatever the server does.
    timed_out = threading.Event()

    def _expire():
        timed_out.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _expire)
    watchdog.daemon = True
    watchdog.start()
    keep = False
    try:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        send_headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            **headers,
        }
        try:
            connection.request("POST", target, body=body, headers=send_headers)
            answer = connection.getresponse()
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
            if not timed_out.is_set():
                raise _StaleConnection() from exc
            raise
        content = answer.read(MAX_RESPONSE_BYTES + 1)
        if time.monotonic() > deadline or timed_out.is_set():
            raise OutboundTimeout(f"no complete answer within {total_timeout:g} s")
        truncated = len(content) > MAX_RESPONSE_BYTES
        keep = not truncated and not answer.will_close and answer.isclosed()
        return Response(
            status=answer.status,
            headers={k.lower(): v for k, v in answer.getheaders()},
            body=content[:MAX_RESPONSE_BYTES],
            duration=time.monotonic() - started,
            peer=held.peer,
            truncated=truncated,
        )
    except (OutboundError, _StaleConnection):
        raise
    except ssl.SSLError as exc:
        raise OutboundError(f"TLS error: {exc.reason or exc}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        if timed_out.is_set() or time.monotonic() >= deadline or isinstance(exc, TimeoutError):
            raise OutboundTimeout(f"no complete answer within {total_timeout:g} s") from None
        raise OutboundError(f"connection failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        if keep and not timed_out.is_set():
            _keep_idle(key, held)
        else:
            connection.close()
