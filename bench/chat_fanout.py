"""Chat fan-out: one whale event to 1,000 subscriptions spread over the five alert channels.

    .venv/bin/python bench/chat_fanout.py [--subscriptions 1000] [--workers 2] [--threads 8]

A fifth each: e-mail (to aiosmtpd), a signed webhook, a Telegram chat, a Discord hook and a Slack
hook. Everything is real but local: PostgreSQL (database ww_chat_bench, created and migrated if missing), Redis as the
broker and for pacing, `celery worker` subprocesses, one threaded HTTP server on 127.0.0.1 that
answers as the Telegram Bot API (sendMessage envelope), Discord (204) and Slack (200 "ok") do, and
an aiosmtpd server. The event is recorded through detection.recording.record_event, so fan-out
runs from its on-commit hook as in production. Telegram is paced under its limit (30 messages a
second per bot, TELEGRAM_MESSAGES_PER_SECOND), so its rate is the ceiling by design. Prints
deliveries per second per channel and overall; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "ww_chat_bench"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")
os.environ.setdefault("REDIS_KEY_PREFIX", "ww-chat-bench")

# alert_fanout sets the Redis db and the other settings defaults on import.
from bench import alert_fanout  # noqa: E402
from bench.alert_fanout import record_whale, start_workers, stop_workers  # noqa: E402
from bench.results import Results, add_json_argument  # noqa: E402

BOT_TOKEN = "123456789:bench-token-local-only"  # noqa: S105 - a local fake
CHANNELS = ("email", "webhook", "telegram", "discord", "slack")


class Receipts:
    def __init__(self):
        self.times: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        self.all_in = threading.Event()
        self.expected = 0

    def add(self, channel: str) -> None:
        with self.lock:
            self.times[channel].append(time.time())
            if sum(len(v) for v in self.times.values()) >= self.expected:
                self.all_in.set()


def start_peers(receipts: Receipts) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith(f"/bot{BOT_TOKEN}/sendMessage"):
                chat_id = json.loads(body)["chat_id"]
                answer = json.dumps(
                    {"ok": True, "result": {"message_id": 1, "chat": {"id": chat_id}}}
                ).encode()
                status, channel = 200, "telegram"
            elif self.path.startswith("/discord/"):
                answer, status, channel = b"", 204, "discord"
            elif self.path.startswith("/slack/"):
                answer, status, channel = b"ok", 200, "slack"
            else:
                answer, status, channel = b"", 204, "webhook"
            receipts.add(channel)
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    add_json_argument(parser)
    args = parser.parse_args()
    report = Results("chat_fanout", "Chat fan-out (five channels)")

    receipts = Receipts()
    peers = start_peers(receipts)
    base = f"http://127.0.0.1:{peers.server_address[1]}"
    os.environ.update(
        TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_API_URL=base, TELEGRAM_MESSAGES_PER_SECOND="30"
    )
    alert_fanout.BENCH_DB = BENCH_DB
    alert_fanout.ensure_database()
    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from alerts.models import ChatEndpoint, Delivery, DeliveryStatus, Subscription, WebhookEndpoint
    from detection.domain.esplora import whale_tx_from_esplora
    from detection.models import WhaleTransaction
    from whaleproject.redis_client import get_redis, key

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    user_model.objects.filter(username__startswith="bench-").delete()
    with open(ROOT / "tests/fixtures/blocks/whales_block_277647.esplora_txs.json") as handle:
        tx = whale_tx_from_esplora(json.load(handle)[2])
    WhaleTransaction.objects.filter(txid=tx.txid).delete()
    for name in get_redis().scan_iter(key("pace", "*")):
        get_redis().delete(name)

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            receipts.add("email")
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    environ = dict(os.environ, EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend")
    environ.update(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_port), LOG_LEVEL="WARNING")
    workers = start_workers(args.workers, args.threads, environ)
    try:
        n = args.subscriptions
        users = user_model.objects.bulk_create(
            [user_model(username=f"bench-{i}", email=f"bench-{i}@example.org") for i in range(n)]
        )
        channel_of = {u.pk: CHANNELS[i % len(CHANNELS)] for i, u in enumerate(users)}
        subscriptions = Subscription.objects.bulk_create(
            [
                # On the total: this whale's moved amount (change excluded) is under 100 BTC.
                Subscription(
                    owner=u,
                    name="bench",
                    min_sats=100 * 10**8,
                    amount_basis="total",
                    email=channel_of[u.pk] == "email",
                )
                for u in users
            ]
        )
        hooks = WebhookEndpoint.objects.bulk_create(
            [
                WebhookEndpoint(owner=s.owner, url=f"{base}/hook?n={i}")
                for i, s in enumerate(subscriptions)
                if channel_of[s.owner_id] == "webhook"
            ]
        )
        Subscription.webhooks.through.objects.bulk_create(
            [
                Subscription.webhooks.through(subscription=s, webhookendpoint=h)
                for s, h in zip(
                    [s for s in subscriptions if channel_of[s.owner_id] == "webhook"],
                    hooks,
                    strict=True,
                )
            ]
        )
        chats = []
        for i, s in enumerate(subscriptions):
            service = channel_of[s.owner_id]
            if service == "telegram":
                chats.append(
                    ChatEndpoint(owner=s.owner, service=service, telegram_chat_id=10**9 + i)
                )
            elif service in ("discord", "slack"):
                chats.append(
                    ChatEndpoint(owner=s.owner, service=service, url=f"{base}/{service}/{i}")
                )
        chats = ChatEndpoint.objects.bulk_create(chats)
        by_owner = {c.owner_id: c for c in chats}
        Subscription.chats.through.objects.bulk_create(
            [
                Subscription.chats.through(subscription=s, chatendpoint=by_owner[s.owner_id])
                for s in subscriptions
                if s.owner_id in by_owner
            ]
        )
        receipts.expected = n
        committed = record_whale(tx)
        if not receipts.all_in.wait(180):
            print("not everything arrived within 180 s", file=sys.stderr)
        counts = {c: len(receipts.times[c]) for c in CHANNELS}
        if not any(counts.values()):
            raise SystemExit("no delivery arrived: nothing to measure")
        last = max(max(v) for v in receipts.times.values() if v)
        deadline = time.time() + 30
        while time.time() < deadline:  # the last rows are written just after their receipt
            delivered = Delivery.objects.filter(
                event__whale__txid=tx.txid, status=DeliveryStatus.DELIVERED
            ).count()
            if delivered >= n:
                break
            time.sleep(0.05)
        print(
            f"{n} subscriptions over {len(CHANNELS)} channels, {args.workers} workers x {args.threads} threads"
        )
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        total_rate = sum(counts.values()) / (last - committed)
        print(
            f"  all channels: {sum(counts.values())} received, {delivered} delivered rows, "
            f"{total_rate:.0f} deliveries/s (commit to last receipt)"
        )
        report.add(
            f"deliveries/s, {n} subscriptions over 5 channels, {args.workers} workers x "
            f"{args.threads} threads (commit to last receipt)",
            f"{total_rate:.0f}/s",
        )
        for channel in CHANNELS:
            times = receipts.times[channel]
            if not times:
                print(f"  {channel}: nothing received")
                continue
            rate = len(times) / max(1e-6, max(times) - committed)
            print(
                f"  {channel}: {len(times)} received, {rate:.0f}/s, last after {max(times) - committed:.2f} s"
            )
            report.add(
                f"{channel}: received / expected, deliveries/s",
                f"{len(times)} / {n // len(CHANNELS)}, {rate:.0f}/s",
            )
        report.add("delivered rows / expected", f"{delivered} / {n}")
        report.note(
            "Telegram is paced to at most 30 messages a second per bot (Telegram's limit), so its "
            "share takes about 200 / 30 s whatever the hardware."
        )
        report.save(args.json)
    finally:
        stop_workers(workers)
        smtp.stop()
        peers.shutdown()
        user_model.objects.filter(username__startswith="bench-").delete()


if __name__ == "__main__":
    main()
