"""Real servers for alert tests: an aiosmtpd SMTP server, an HTTP receiver, Celery workers.

Nothing here mocks the database, the broker, SMTP or HTTP: mail goes over a socket to aiosmtpd,
webhooks over a socket to http.server, tasks through Redis to a real worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from alerts.models import Subscription, WebhookEndpoint, sats_from_btc
from detection.models import AddressLabel, WhaleEvent
from detection.recording import record_event
from tests.alerts.chat_support import bot_api  # noqa: F401 - the local Telegram Bot API fixture
from tests.records.helpers import event, load_esplora, projection

ROOT = Path(__file__).resolve().parents[2]

CONSOLIDATION_103 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
ZERO_FEE_927 = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
ZERO_FEE_133 = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- whales -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def whales():
    return load_esplora("whales_block_277647.esplora_txs.json")


def record(kind: str, tx, *, seq: int = 0, tip: int = 277646, **extra) -> WhaleEvent:
    """Record a lifecycle event the way the ingest task does; returns the event row."""
    payload = event(kind, tx, seq=seq, projection=projection(tip=tip), **extra)
    result = record_event(payload)
    assert result.created, result.reason
    return WhaleEvent.objects.get(pk=result.event_id)


def label_as_inflow(tx, entity: str = "Binance") -> None:
    """Label the whale's recipients as an exchange and its sender as someone else."""
    for output in tx.outputs:
        if output.address:
            AddressLabel.objects.create(
                address=output.address, entity=entity, kind="exchange", source="test"
            )
    for tx_input in tx.inputs:
        if tx_input.address:
            AddressLabel.objects.get_or_create(
                address=tx_input.address,
                source="test",
                defaults={"entity": "Satoshi Fund", "kind": "other"},
            )


def make_subscription(owner, *, endpoints=(), email=True, min_btc=100, **fields) -> Subscription:
    # These tests were written for matching on the total, as migrated subscriptions still do;
    # the "moved" basis has its own tests.
    fields.setdefault("amount_basis", "total")
    subscription = Subscription.objects.create(
        owner=owner,
        name=fields.pop("name", f"{owner.username}'s whales"),
        min_sats=sats_from_btc(min_btc),
        email=email,
        **fields,
    )
    if endpoints:
        subscription.webhooks.set(endpoints)
    return subscription


def make_endpoint(owner, url: str, **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(owner=owner, url=url, **fields)


# --- SMTP -------------------------------------------------------------------------------------


class MailSink:
    def __init__(self):
        self.messages: list[Message] = []
        self.envelopes = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        with self.arrived:
            self.envelopes.append(envelope)
            self.messages.append(
                message_from_bytes(
                    envelope.original_content or envelope.content, policy=policy.default
                )
            )
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 15) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.messages)} of {count} e-mails arrived")
                self.arrived.wait(left)
        return list(self.messages)


@pytest.fixture
def smtp_server(settings):
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    sink.port = port
    yield sink
    controller.stop()


# --- HTTP receiver ----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1. `script` answers requests in order; then `default`.

    An answer is (status, headers, body) or "hang" (hold the request until release()).
    Like a careful real receiver it deduplicates by webhook-id: `processed` holds each id once.
    """

    port: int = 0
    script: list = field(default_factory=list)
    default: tuple = (200, {}, b"ok")
    requests: list[Received] = field(default_factory=list)
    processed: dict[str, bytes] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    got_request: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def release(self) -> None:
        self.released.set()

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.got_request:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
                self.got_request.wait(left)
        return list(self.requests)


def _handler_for(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_POST(self):  # noqa: N802 - http.server hook name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                answer = receiver.script.pop(0) if receiver.script else receiver.default
            with receiver.got_request:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                receiver.got_request.notify_all()
            if answer == "hang":
                receiver.released.wait(60)
                return  # drop the connection without an answer
            status, headers, content = answer
            if 200 <= status < 300:
                receiver.processed.setdefault(self.headers.get("webhook-id", ""), body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(content)

    return Handler


@pytest.fixture
def receiver():
    target = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(target))
    server.daemon_threads = True
    target.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield target
    target.release()
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_loopback(settings):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    return settings


# --- Celery worker subprocess -----------------------------------------------------------------


def worker_environment(**extra: str) -> dict[str, str]:
    """The test process's settings for a subprocess: same test database, same Redis db."""
    from django.db import connection

    db = connection.settings_dict
    environ = dict(os.environ)
    environ.update(
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        WHALE_OUTBOUND_ALLOW_LOOPBACK="true",
        PYTHONUNBUFFERED="1",
    )
    environ.update(extra)
    return environ


class WorkerProcess:
    """A real `celery worker` subprocess; kill() is kill -9."""

    def __init__(
        self,
        name: str,
        *,
        concurrency: int = 1,
        pool: str = "solo",
        beat_schedule: Path | None = None,
        **env: str,
    ):
        # With beat_schedule, the worker runs beat too (-B): retries wait in the database until
        # the beat's alert sweep queues them (issue 20), as in production.
        beat = ["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []
        command = [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "whaleproject",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
            "-n",
            f"{name}-{os.getpid()}@%h",
            *beat,
        ]
        self.log: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=worker_environment(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.kill()
            raise AssertionError("worker did not start:\n" + "".join(self.log[-40:]))

    def _read(self):
        for line in self.process.stdout:
            self.log.append(line)
            if " ready." in line:
                self.ready.set()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_factory(transactional_db):
    started: list[WorkerProcess] = []

    def start(name: str = "alerts-test", **kwargs) -> WorkerProcess:
        worker = WorkerProcess(name, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def json_body(received: Received) -> dict:
    return json.loads(received.body)
