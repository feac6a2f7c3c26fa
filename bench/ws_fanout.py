"""Dashboard fan-out: commit of a whale event → receipt on N logged-in dashboard sockets.

    .venv/bin/python bench/ws_fanout.py [--clients 500] [--events 40] [--interval 0.25]
                                        [--client-procs 4] [--burst 0]

Starts a real Daphne (subprocess, free port) on the real channels-redis layer, opens N WebSocket
clients with logged-in session cookies (spread over --client-procs processes so that the
measuring side is not the bottleneck), waits for every snapshot, then records whale events with
detection.recording.record_event — the Celery task's code: the row commits, on_commit pushes
event_summary to the group. Latency is receipt time minus the moment the commit returned (one
machine, one clock). Prints p50, p99 and max over every (client, event) pair, and losses.

Environment: DATABASE_URL (default: a `ww_ws_bench` PostgreSQL database, created and
migrated if missing), REDIS_URL (default redis://127.0.0.1:6379/9) and REDIS_KEY_PREFIX (default
ww-bench). Prints figures; not a test. Its rows are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_TXID_PREFIX = "be"  # every bench whale's txid starts with this, to clean up after

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ww_ws_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("REDIS_KEY_PREFIX", "ww-bench")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("SITE_URL", "http://127.0.0.1")
# The bench clients speak plain ws:// to a local daphne (docs/SECURITY.md).
os.environ.setdefault("ALLOW_INSECURE_HTTP", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whaleproject.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_argument  # noqa: E402

# --- clients (their own processes) ------------------------------------------------------------


def client_process(port, cookies, ready, results, done) -> None:
    asyncio.run(_clients(port, cookies, ready, results, done))


async def _clients(port, cookies, ready, results, done) -> None:
    import orjson
    from websockets.asyncio.client import connect

    received: list[tuple[str, float]] = []
    closed = 0

    async def one(cookie: str, connected: asyncio.Event) -> None:
        nonlocal closed
        async with connect(
            f"ws://127.0.0.1:{port}/ws/whales/",
            additional_headers={"Cookie": cookie},
            origin="http://127.0.0.1",
            max_size=None,
            open_timeout=60,
        ) as ws:
            async for raw in ws:
                arrived = time.time()  # before any parsing: the receipt time
                message = orjson.loads(raw)
                if message["type"] == "snapshot":
                    connected.set()
                elif message["type"] == "whale.event":
                    received.append((message["event"]["whale"]["txid"], arrived))
        closed += 1

    tasks, events = [], []
    for i in range(0, len(cookies), 25):  # open in small waves, like browsers arriving
        wave = []
        for cookie in cookies[i : i + 25]:
            connected = asyncio.Event()
            tasks.append(asyncio.create_task(one(cookie, connected)))
            wave.append(connected)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in wave)), timeout=120)
        events.extend(wave)
    ready.put(len(events))
    while not done.is_set():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the last pushes are in flight
    results.put({"received": received, "closed_early": closed})
    for task in tasks:
        task.cancel()


# --- the publishing side ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database() -> None:
    import django
    import psycopg
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=name
        ).close()
    except psycopg.OperationalError:
        with psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or 5432,
            user=db["USER"],
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_sessions(count: int) -> list[str]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    user, _ = get_user_model().objects.get_or_create(
        username="bench-viewer", defaults={"email": "bench@example.org"}
    )
    data = {
        "_auth_user_id": str(user.pk),
        "_auth_user_backend": "dashboard.auth.UsernameOrEmailBackend",
        "_auth_user_hash": user.get_session_auth_hash(),
    }
    store = SessionStore()
    expires = timezone.now() + timedelta(hours=2)
    rows = [
        Session(
            session_key=f"bench{uuid.uuid4().hex}",
            session_data=store.encode(data),
            expire_date=expires,
        )
        for _ in range(count)
    ]
    Session.objects.bulk_create(rows)
    return [f"{settings.SESSION_COOKIE_NAME}={row.session_key}" for row in rows]


def whale_payload(n: int) -> dict:
    from detection.txshape import TxInput, TxOutput, WhaleTx

    txid = f"{BENCH_TXID_PREFIX}{uuid.uuid4().hex}{n:030x}"[:64]
    tx = WhaleTx(
        txid=txid,
        inputs=(
            TxInput(
                prev_txid="ab" * 32,
                prev_vout=n,
                address=f"bc1qbenchin{n}",
                value=150 * 10**8 + 20_000,
            ),
        ),
        outputs=(TxOutput(value=150 * 10**8, address=f"bc1qbenchout{n}"),),
        weight=900,
        vsize=225,
        fee=20_000,
    )
    now = time.time()
    return {
        "event_id": str(uuid.uuid4()),
        "kind": "seen",
        "txid": txid,
        "chain_txid": txid,
        "seq": 1,
        "observed_at": now,
        "frame_received_at": now,
        "source": "bench",
        "tx": tx.to_json(),
        "projection": {
            "projected_block": 0,
            "fee_percentile": 0.9,
            "tip_height": 900_000,
            "next_block_median_fee_rate": 20.0,
            "made_at": now,
            "basis": "local",
        },
    }


def publish(payload: dict) -> float:
    """Record one event; return when its commit returned (before the push went out)."""
    from django.db import transaction

    from detection.recording import record_event

    committed: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs first after COMMIT: before record_event's push.
        transaction.on_commit(lambda: committed.append(time.time()))
        record_event(payload)
    return committed[0]


def cleanup() -> None:
    from django.contrib.sessions.models import Session

    from detection.models import WhaleTransaction

    WhaleTransaction.objects.filter(txid__startswith=BENCH_TXID_PREFIX).delete()
    Session.objects.filter(session_key__startswith="bench").delete()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between commits")
    parser.add_argument("--client-procs", type=int, default=4)
    add_json_argument(parser)
    args = parser.parse_args()
    report = Results("ws_fanout", "Dashboard fan-out")

    prepare_database()
    cleanup()
    cookies = make_sessions(args.clients)
    port = free_port()
    log_path = ROOT / "var" / "bench-ws-fanout-daphne.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    daphne = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--access-log",
            os.devnull,
            "whaleproject.asgi:application",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    ctx = mp.get_context("spawn")
    ready, results, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("daphne did not start; see " + str(log_path)) from None
                time.sleep(0.2)
        share = [cookies[i :: args.client_procs] for i in range(args.client_procs)]
        for part in share:
            proc = ctx.Process(target=client_process, args=(port, part, ready, results, done))
            proc.start()
            procs.append(proc)
        started = time.monotonic()
        connected = sum(ready.get(timeout=300) for _ in procs)
        connect_seconds = time.monotonic() - started
        print(
            f"{connected} dashboard clients connected with snapshots in "
            f"{time.monotonic() - started:.1f} s (Daphne: 1 process)"
        )

        committed: dict[str, float] = {}
        for n in range(args.events):
            payload = whale_payload(n)
            committed[payload["txid"]] = publish(payload)
            time.sleep(args.interval)
        done.set()
        received = []
        closed_early = 0
        for _ in procs:
            part = results.get(timeout=120)
            received.extend(part["received"])
            closed_early += part["closed_early"]
    finally:
        done.set()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        daphne.terminate()
        daphne.wait(timeout=15)
        cleanup()

    latencies_ms = [
        (arrived - committed[txid]) * 1000 for txid, arrived in received if txid in committed
    ]
    expected = args.clients * args.events
    print(
        f"events: {args.events} commits, one every {args.interval} s; "
        f"deliveries {len(latencies_ms)}/{expected} ({expected - len(latencies_ms)} lost), "
        f"sockets closed early: {closed_early}"
    )
    if not latencies_ms:
        return 1
    p50, p99 = percentile(latencies_ms, 50), percentile(latencies_ms, 99)
    print(
        f"commit → receipt over {len(latencies_ms)} deliveries: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(latencies_ms):.1f} ms, "
        f"mean {statistics.fmean(latencies_ms):.1f} ms"
    )
    lost = expected - len(latencies_ms)
    report.add(
        f"commit → receipt, {args.clients} clients, one event every {args.interval} s, p99",
        f"{p99:.0f} ms (p50 {p50:.0f} ms, max {max(latencies_ms):.0f} ms)",
        target="<= 250 ms",
        met=p99 <= 250 and lost == 0,
    )
    report.add("deliveries received / expected", f"{len(latencies_ms):,} / {expected:,}")
    report.add(
        f"{connected} clients connecting, each receiving its snapshot", f"{connect_seconds:.1f} s"
    )
    report.save(args.json)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
