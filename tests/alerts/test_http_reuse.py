"""Connection reuse in alerts.http: one connection per receiver host while it stays open."""

from __future__ import annotations

import socket
import threading

import pytest

from alerts import http

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class KeepAliveReceiver:
    """A raw HTTP/1.1 server that counts connections; `answers_per_connection` then it hangs up
    without saying so (no Connection: close), like a receiver whose keep-alive timer ran out."""

    def __init__(self, answers_per_connection: int):
        self.answers_per_connection = answers_per_connection
        self.connections = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket):
        with conn:
            buffer = b""
            for _ in range(self.answers_per_connection):
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":", 1)[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(rest[:length])
                buffer = rest[length:]
                conn.sendall(ANSWER)

    def close(self):
        self.listener.close()


@pytest.fixture
def loopback(settings):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    http.close_idle_connections()
    yield
    http.close_idle_connections()


def test_deliveries_to_one_host_share_a_connection(loopback):
    receiver = KeepAliveReceiver(answers_per_connection=100)
    try:
        for n in range(5):
            assert http.post(receiver.url, b'{"n":%d}' % n, {"webhook-id": str(n)}).status == 204
    finally:
        receiver.close()
    assert receiver.connections == 1
    assert receiver.requests == [b'{"n":%d}' % n for n in range(5)]


def test_a_kept_connection_closed_by_the_receiver_is_replaced_once(loopback):
    receiver = KeepAliveReceiver(answers_per_connection=1)
    try:
        for n in range(3):
            assert http.post(receiver.url, b'{"n":%d}' % n, {"webhook-id": str(n)}).status == 204
    finally:
        receiver.close()
    # Each request after the first meets a closed kept connection and goes out again on a new
    # one: every body arrives exactly once.
    assert receiver.connections == 3
    assert receiver.requests == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
