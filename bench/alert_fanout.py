"""Alert fan-out: one whale event to 1,000 webhook subscriptions, then e-mail to aiosmtpd.

    .venv/bin/python bench/alert_fanout.py [--subscriptions 1000] [--workers 2] [--threads 8]
                                           [--emails 200]

Everything is real: PostgreSQL (database ww_alerts_bench, created and migrated if missing),
Redis as the Celery broker (REDIS_URL, default db 8), `celery worker` subprocesses, an HTTP
receiver (http.server, threaded) on 127.0.0.1 and an aiosmtpd server. The event is recorded
through detection.recording.record_event, so fan-out runs from its on-commit hook as in
production. Prints deliveries per second, the p95 time from the event's commit to receipt, and
e-mails per second. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_argument  # noqa: E402

BENCH_DB = "ww_alerts_bench"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
os.environ.setdefault("REDIS_KEY_PREFIX", "ww-alerts-bench")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SITE_URL", "http://testserver")
os.environ.setdefault("ALLOW_INSECURE_HTTP", "true")
os.environ.setdefault("WHALE_VAR_DIR", str(ROOT / "var" / "bench"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["WHALE_OUTBOUND_ALLOW_LOOPBACK"] = "true"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whaleproject.settings")


def ensure_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone()
        if not exists:
            db.execute(f'CREATE DATABASE "{BENCH_DB}"')


class Receipts:
    def __init__(self):
        self.times: list[float] = []
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expected = 0


def start_receiver(receipts: Receipts, *, closes: bool = False) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            with receipts.lock:
                receipts.times.append(now)
                receipts.ids.add(self.path)
                if len(receipts.times) >= receipts.expected:
                    receipts.done.set()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            if closes:  # A/B: a receiver that refuses keep-alive (the client before issue 19)
                self.send_header("Connection", "close")
            self.end_headers()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # the listen backlog; the default 5 drops bursts of SYNs

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_workers(count: int, threads: int, environ: dict[str, str]) -> list[subprocess.Popen]:
    workers = []
    for number in range(count):
        process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "whaleproject",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(threads),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
                "-n",
                f"bench{number}-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        workers.append(process)
    for process in workers:
        for line in process.stdout:
            if " ready." in line:
                break
        threading.Thread(target=lambda p=process: [None for _ in p.stdout], daemon=True).start()
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def record_whale(tx, kind: str = "seen") -> float:
    """Record an event the way the ingest task does; returns the wall time of its commit."""
    from django.db import transaction

    from detection.recording import record_event

    committed = {}
    payload = {
        "event_id": str(uuid.uuid4()),
        "kind": kind,
        "txid": tx.txid,
        "chain_txid": tx.txid,
        "seq": 0,
        "observed_at": time.time(),
        "source": "bench",
        "tx": tx.to_json(),
        "projection": {
            "projected_block": 0,
            "tip_height": 900_000,
            "next_block_median_fee_rate": 5.0,
        },
    }
    # Registered before record_event's own hook, so it runs first, right after the commit.
    with transaction.atomic():
        transaction.on_commit(lambda: committed.setdefault("at", time.time()))
        assert record_event(payload).created
    return committed["at"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument(
        "--receiver-closes",
        action="store_true",
        help="the receiver answers Connection: close, so every delivery opens a connection",
    )
    add_json_argument(parser)
    args = parser.parse_args()
    report = Results("alert_fanout", "Alert fan-out")

    ensure_database()
    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from alerts.models import Delivery, DeliveryStatus, Subscription, WebhookEndpoint
    from detection.domain.esplora import whale_tx_from_esplora
    from detection.models import WhaleTransaction

    call_command("migrate", verbosity=0)
    User = get_user_model()  # noqa: N806
    User.objects.filter(username__startswith="bench-").delete()
    WhaleTransaction.objects.filter(source="bench").delete()
    with open(ROOT / "tests/fixtures/blocks/whales_block_277647.esplora_txs.json") as handle:
        txs = [whale_tx_from_esplora(tx) for tx in json.load(handle)]
    for tx in txs:
        WhaleTransaction.objects.filter(txid=tx.txid).delete()

    receipts = Receipts()
    receiver = start_receiver(receipts, closes=args.receiver_closes)
    mail_times: list[float] = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            mail_times.append(time.time())
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()

    environ = dict(os.environ, EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend")
    environ.update(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_port), LOG_LEVEL="WARNING")
    workers = start_workers(args.workers, args.threads, environ)
    try:
        # --- webhooks ----------------------------------------------------------------------
        n = args.subscriptions
        users = User.objects.bulk_create(
            [User(username=f"bench-{i}", email=f"bench-{i}@example.org") for i in range(n)]
        )
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        endpoints = WebhookEndpoint.objects.bulk_create(
            [WebhookEndpoint(owner=u, url=f"{url}?n={i}") for i, u in enumerate(users)]
        )
        subscriptions = Subscription.objects.bulk_create(
            [
                Subscription(
                    owner=u, name="bench", min_sats=100 * 10**8, email=False, amount_basis="total"
                )
                for u in users
            ]
        )
        Subscription.webhooks.through.objects.bulk_create(
            [
                Subscription.webhooks.through(subscription=s, webhookendpoint=e)
                for s, e in zip(subscriptions, endpoints, strict=True)
            ]
        )
        receipts.expected = n
        import psutil

        cpu_before = [psutil.Process(p.pid).cpu_times() for p in workers]
        bench_cpu_before = psutil.Process().cpu_times()
        committed = committed_webhooks = record_whale(txs[0])
        queued = time.time()
        if not receipts.done.wait(120):
            print(f"only {len(receipts.times)} of {n} webhooks arrived", file=sys.stderr)
        last = max(receipts.times)
        latencies = [t - committed for t in receipts.times]
        deadline = time.time() + 30
        while time.time() < deadline:
            delivered = Delivery.objects.filter(
                event__whale__txid=txs[0].txid, status=DeliveryStatus.DELIVERED
            ).count()
            if delivered >= n:
                break
            time.sleep(0.05)
        cpu_after = [psutil.Process(p.pid).cpu_times() for p in workers]
        worker_cpu = sum(
            (a.user + a.system) - (b.user + b.system)
            for a, b in zip(cpu_after, cpu_before, strict=True)
        )
        own = psutil.Process().cpu_times()
        bench_cpu = (own.user + own.system) - (bench_cpu_before.user + bench_cpu_before.system)
        print(f"webhooks: {n} subscriptions, {args.workers} workers x {args.threads} threads")
        print(f"  received {len(receipts.times)} (distinct endpoints {len(receipts.ids)}),")
        print(f"  delivered rows {delivered}; fan-out and queueing took {queued - committed:.2f} s")
        print(
            f"  CPU: workers {worker_cpu:.1f} s ({worker_cpu / n * 1000:.1f} ms per delivery), "
            f"this process (fan-out + receiver) {bench_cpu:.1f} s; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(
            f"  deliveries/s (commit to last receipt): {len(receipts.times) / (last - committed):.0f}"
        )
        print(
            f"  commit-to-receipt p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )

        # --- e-mail ------------------------------------------------------------------------
        Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(active=False)
        mailers = users[: args.emails]
        Subscription.objects.bulk_create(
            [
                Subscription(
                    owner=u,
                    name="bench mail",
                    min_sats=100 * 10**8,
                    email=True,
                    amount_basis="total",
                )
                for u in mailers
            ]
        )
        committed = record_whale(txs[1])
        deadline = time.time() + 120
        while len(mail_times) < len(mailers) and time.time() < deadline:
            time.sleep(0.02)
        mail_latencies = [t - committed for t in mail_times]
        print(f"e-mail: {len(mailers)} subscriptions to aiosmtpd")
        print(f"  received {len(mail_times)}")
        print(
            f"  e-mails/s (commit to last receipt): {len(mail_times) / (max(mail_times) - committed):.0f}"
        )
        print(f"  commit-to-receipt p95 {percentile(mail_latencies, 0.95) * 1000:.0f} ms")

        rate = len(receipts.times) / (last - committed_webhooks)
        report.add(
            f"webhook deliveries/s, {n} subscriptions, {args.workers} workers x "
            f"{args.threads} threads (commit to last receipt)",
            f"{rate:.0f}/s",
            target=">= 300/s",
            met=rate >= 300 and len(receipts.times) == n,
        )
        report.add("webhooks received / expected", f"{len(receipts.times)} / {n}")
        report.add(
            "commit → receipt p50 / p95",
            f"{statistics.median(latencies):.2f} s / {percentile(latencies, 0.95):.2f} s",
        )
        report.add("fan-out + queueing", f"{queued - committed_webhooks:.2f} s")
        cpu_ms = worker_cpu / n * 1000
        report.add(
            "worker CPU per delivery", f"{cpu_ms:.1f} ms", target="<= 2.5 ms", met=cpu_ms <= 2.5
        )
        report.add(
            f"e-mails/s to aiosmtpd ({len(mailers)} subscriptions)",
            f"{len(mail_times) / (max(mail_times) - committed):.0f}/s ({len(mail_times)} received)",
        )
        report.add("e-mail commit → receipt p95", f"{percentile(mail_latencies, 0.95):.2f} s")
        report.save(args.json)
    finally:
        stop_workers(workers)
        smtp.stop()
        receiver.shutdown()
        User.objects.filter(username__startswith="bench-").delete()


if __name__ == "__main__":
    main()
