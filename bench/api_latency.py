"""REST API latency on a million whales (docs/PERFORMANCE.md, "REST API").

Creates a scratch database (default whalewatch_bench) next to DATABASE_URL's, migrates it, loads
N whales (default 1,000,000, spread over 90 days, ids rising with time as in production) and one
prediction per whale with PostgreSQL COPY, then times whole API requests in-process (Django test
client, JWT auth, serialisation included) and prints p50/p95 per query with the EXPLAIN ANALYZE
plans of the SQL each request ran. The database is dropped at the end unless --keep.

    .venv/bin/python bench/api_latency.py [--rows N] [--runs N] [--keep] [--skip-load] [--json PATH]

Targets: list queries p95 <= 50 ms, stats <= 200 ms, also when nothing is cached (the first
request after the cache expired, or beat not running).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_argument  # noqa: E402

BENCH_DB = "whalewatch_bench"
SATS = 100_000_000
DAYS = 90
EXCHANGES = [f"Exchange{i:02d}" for i in range(38)] + ["Binance", "Kraken"]
FLOWS = (
    ("unknown", 0.55),
    ("exchange_inflow", 0.15),
    ("exchange_outflow", 0.15),
    ("inter_exchange", 0.10),
    ("exchange_internal", 0.05),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per query")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--skip-load", action="store_true", help="reuse a kept database")
    parser.add_argument("--database", default=BENCH_DB)
    add_json_argument(parser)
    return parser.parse_args()


def configure_django(database: str) -> str:
    """Point the settings at the scratch database; returns the server's admin URL."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/whalewatch")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SITE_URL", "http://testserver")
    os.environ.setdefault("ALLOW_INSECURE_HTTP", "true")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    # Redis db 6 under its own prefix: db 0 and 1 belong to the dev server and the test suite.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
    os.environ.setdefault("REDIS_KEY_PREFIX", "ww-api-bench")
    os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])
    os.environ.setdefault("WHALE_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ["RATELIMIT_ENABLE"] = "false"  # measuring the queries, not the limiter
    os.environ["DATABASE_CONN_MAX_AGE"] = "600"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whaleproject.settings")
    return urlunsplit(parts._replace(path="/postgres"))


def recreate_database(admin_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def drop_database(admin_url: str, database: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# --- data -------------------------------------------------------------------------------------


def whale_rows(count: int, now: datetime, rng: random.Random):
    """Whale rows, oldest first (so ids rise with first_seen_at, as ingest writes them)."""
    span = DAYS * 86400
    offsets = sorted((rng.random() * span for _ in range(count)), reverse=True)
    flows, weights = zip(*FLOWS, strict=True)
    for offset in offsets:
        seen = now - timedelta(seconds=offset)
        flow = rng.choices(flows, weights)[0]
        value = min(int(100 * SATS / (rng.random() ** (1 / 1.5) or 1e-9)), 200_000 * SATS)
        transfer = value - rng.randrange(0, SATS)
        vsize = rng.randrange(150, 20_000)
        fee = vsize * rng.randrange(1, 200)
        from_entity = (
            rng.choice(EXCHANGES) if flow != "exchange_inflow" and flow != "unknown" else ""
        )
        to_entity = rng.choice(EXCHANGES) if flow not in ("exchange_outflow", "unknown") else ""
        if offset < 3600:
            status = "pending"
        else:
            status = rng.choices(["confirmed", "replaced", "dropped"], [90, 5, 5])[0]
        confirmed = status == "confirmed"
        confirmed_at = seen + timedelta(minutes=rng.randrange(1, 120)) if confirmed else None
        urgency = None if rng.random() < 0.05 else rng.random()
        io = json.dumps(
            [{"address": f"bc1q{rng.getrandbits(80):020x}", "value": value // 2, "label": None}] * 2
        )
        yield (
            rng.getrandbits(256).to_bytes(32, "big").hex(),  # txid
            status,
            value,
            transfer,
            fee,
            vsize,
            vsize * 4,
            fee / vsize,
            None,
            True,
            io,
            io,
            flow,
            from_entity,
            to_entity,
            "[]",
            False,
            None,
            seen,
            rng.random() > 0.03,
            "bench",
            seen,
            seen,
            urgency,
            800_000 + int((span - offset) / 600) if confirmed else None,
            "",
            confirmed_at,
            rng.randrange(1, 12) if confirmed else None,
            transfer,  # moved: no fiat, as for a source without prices
            "[]",
            "[]",
            "{}",
            False,  # watch_only: every row is a whale
        )


WHALE_COLUMNS = (
    "txid, status, value, transfer, fee, vsize, weight, fee_rate, effective_fee_rate, "
    "has_prevouts, inputs, outputs, flow, from_entity, to_entity, shape_tags, conflict, "
    "conflict_winner, first_seen_at, seen_in_mempool, source, updated_at, status_at, "
    "latest_urgency, confirmed_height, confirmed_hash, confirmed_at, blocks_waited, "
    "moved, change_outputs, change_methods, fiat, watch_only"
)
PREDICTION_COLUMNS = (
    "whale_id, made_at, tip_height, fee_rate, projected_block, predicted_blocks, fee_percentile, "
    "urgency, band, eta_seconds, may_not_confirm_soon, may_be_purged, scored, fee_spike, basis, "
    "outcome, resolved_at, resolved_height, resolved_block_hash, actual_blocks, hit, abs_error"
)


def load(count: int, now: datetime) -> None:
    from django.db import connection

    rng = random.Random(20260301)
    started = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY detection_whaletransaction ({WHALE_COLUMNS}) FROM STDIN") as copy:
            for row in whale_rows(count, now, rng):
                copy.write_row(row)
        print(f"  whales copied in {time.perf_counter() - started:.0f} s", flush=True)
        cur.execute(
            "SELECT id, first_seen_at, status, latest_urgency, confirmed_height "
            "FROM detection_whaletransaction ORDER BY id"
        )
        whales = cur.fetchall()
        mark = time.perf_counter()
        with cur.copy(f"COPY detection_prediction ({PREDICTION_COLUMNS}) FROM STDIN") as copy:
            for pk, seen, status, urgency, height in whales:
                band = (
                    ""
                    if urgency is None
                    else "high"
                    if urgency >= 0.8
                    else "medium"
                    if urgency >= 0.4
                    else "low"
                )
                predicted = rng.choice([1, 1, 2, 3, 6])
                outcome = {"pending": "open"}.get(status, status)
                actual = rng.choice([1, 1, 2, 3, 5, 9]) if outcome == "confirmed" else None
                resolved = None if outcome == "open" else seen + timedelta(minutes=30)
                copy.write_row(
                    (
                        pk,
                        seen,
                        (height or 900_000) - (actual or 1),
                        12.5,
                        predicted - 1,
                        predicted,
                        0.5,
                        urgency,
                        band,
                        predicted * 600,
                        False,  # may_not_confirm_soon
                        False,  # may_be_purged
                        True,  # scored
                        False,  # fee_spike
                        "local",
                        outcome,
                        resolved,
                        height,
                        "",
                        actual,
                        None if actual is None else actual <= predicted,
                        None if actual is None else abs(actual - predicted),
                    )
                )
        print(f"  predictions copied in {time.perf_counter() - mark:.0f} s", flush=True)
    raw.commit()
    raw.autocommit = True
    with raw.cursor() as cur:
        cur.execute("VACUUM ANALYZE detection_whaletransaction")
        cur.execute("VACUUM ANALYZE detection_prediction")
    print(f"  loaded and analysed in {time.perf_counter() - started:.0f} s", flush=True)


# --- timing -----------------------------------------------------------------------------------


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def explain(sql_list: list[str]) -> None:
    from django.db import connection

    for sql in sql_list:
        if "detection_" not in sql or not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
            plan = "\n".join("      " + row[0] for row in cur.fetchall())
        print("    SQL: " + (sql if len(sql) < 600 else sql[:600] + " …"))
        print(plan)


def time_query(client, name: str, make_url, runs: int, before=None) -> tuple[float, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches and the connection
        if before:
            before()
        response = client.get(make_url())
        assert response.status_code == 200, (name, response.status_code, response.content[:300])
    samples = []
    for _ in range(runs):
        if before:
            before()
        url = make_url()
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (name, response.status_code)
    p50, p95 = statistics.median(samples), percentile(samples, 0.95)
    print(f"\n== {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms  ({runs} runs)  e.g. {url}")
    if before:
        before()
    with CaptureQueriesContext(connection) as queries:
        client.get(make_url())
    explain([q["sql"] for q in queries.captured_queries])
    return p50, p95


def time_csv(client) -> tuple[int, float, float]:
    import psutil

    process = psutil.Process()
    baseline = process.memory_info().rss
    peak, rows = baseline, 0
    started = time.perf_counter()
    response = client.get("/api/v1/whales/?format=csv")
    for chunk in response.streaming_content:
        rows += chunk.count(b"\n")
        peak = max(peak, process.memory_info().rss)
    elapsed = time.perf_counter() - started
    grew = (peak - baseline) / 2**20
    print(
        f"\n== CSV export, every row: {rows - 1:,} rows in {elapsed:.1f} s, "
        f"RSS {baseline / 2**20:.0f} MB before, peak +{grew:.1f} MB"
    )
    return rows - 1, elapsed, grew


LIST_TARGET_MS = 50.0
STATS_TARGET_MS = 200.0


def main() -> None:
    args = parse_args()
    admin_url = configure_django(args.database)
    if not args.skip_load:
        recreate_database(admin_url, args.database)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from detection.api.pagination import FORWARD, encode_cursor
    from detection.api.stats import ACCURACY_CACHE_KEY, refresh_accuracy_cache
    from detection.stats import rebuild_rollups

    results = Results("api", "REST API latency")
    now = datetime.now(tz=UTC)
    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)  # a kept database also gets new tables and backfills
        migrated = time.perf_counter() - started
        if args.skip_load:
            print(f"migrated in {migrated:.1f} s (a pending rollup backfill runs here)")
        else:
            print(f"loading {args.rows:,} whales into {args.database} …", flush=True)
            load(args.rows, now)
            # COPY bypasses detection.recording, so the rollups are built the way migration
            # 0004 backfills an existing database.
            started = time.perf_counter()
            volume_rows, outcome_rows = rebuild_rollups()
            backfill_s = time.perf_counter() - started
            with connection.cursor() as cur:
                cur.execute("ANALYZE detection_whalehourlyvolume")
                cur.execute("ANALYZE detection_predictionhourlyoutcome")
            print(
                f"  rollups backfilled in {backfill_s:.1f} s "
                f"({volume_rows:,} volume rows, {outcome_rows:,} outcome rows)"
            )
            results.add(
                f"rollup backfill (migration 0004's function), {args.rows:,} whales",
                f"{backfill_s:.1f} s",
            )
        user, _ = get_user_model().objects.get_or_create(username="bench")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM detection_whaletransaction")
            total = cur.fetchone()[0]
            cur.execute(
                "SELECT first_seen_at, id FROM detection_whaletransaction "
                "ORDER BY first_seen_at DESC, id DESC OFFSET %s LIMIT 1",
                [total // 2],
            )
            middle = cur.fetchone()
            cur.execute("SELECT max(first_seen_at) FROM detection_whaletransaction")
            newest = cur.fetchone()[0]
        print(f"{total:,} whales in the table")
        rng = random.Random(1)
        deep = [
            encode_cursor(
                middle[0] - timedelta(seconds=rng.randrange(0, 40 * 86400)), 2**62, FORWARD
            )
            for _ in range(args.runs + 5)
        ]
        # relative to the data, so a kept database (--skip-load) queries the same week
        since = (newest - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
        until = (newest - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def beat_down():
            # Nothing in Redis: as after the cache expired with beat not running. The volumes
            # have no cache at all any more; this empties the accuracy figures' too.
            cache.delete(ACCURACY_CACHE_KEY)

        def url(**query):
            return lambda: "/api/v1/whales/?" + urlencode(query)

        cases = [
            ("newest page (50 rows)", url(), None, LIST_TARGET_MS),
            (
                "min_btc=1000 + flow=exchange_inflow",
                url(min_btc="1000", flow="exchange_inflow"),
                None,
                LIST_TARGET_MS,
            ),
            (
                "entity=Binance + one-week since/until",
                url(entity="Binance", since=since, until=until),
                None,
                LIST_TARGET_MS,
            ),
            (
                "deep cursor pages (~45-85 days back)",
                lambda: f"/api/v1/whales/?cursor={deep.pop()}",
                None,
                LIST_TARGET_MS,
            ),
            (
                "stats days=30, daily: accuracy from beat's cache",
                lambda: "/api/v1/stats/?days=30",
                None,
                STATS_TARGET_MS,
            ),
            (
                "stats days=30, daily: nothing cached (cache expired, beat down)",
                lambda: "/api/v1/stats/?days=30",
                beat_down,
                STATS_TARGET_MS,
            ),
            (
                "stats days=30, hourly (720 buckets): accuracy from beat's cache",
                lambda: "/api/v1/stats/?days=30&bucket=hour",
                None,
                STATS_TARGET_MS,
            ),
            (
                "stats days=30, hourly (720 buckets): nothing cached",
                lambda: "/api/v1/stats/?days=30&bucket=hour",
                beat_down,
                STATS_TARGET_MS,
            ),
            (
                "stats days=90, daily: nothing cached",
                lambda: "/api/v1/stats/?days=90",
                beat_down,
                STATS_TARGET_MS,
            ),
        ]
        timings = {}
        for name, make_url, before, target in cases:
            p50, p95 = time_query(client, name, make_url, args.runs, before=before)
            timings[name] = (p50, p95)
            results.add(
                name,
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
                target=f"p95 <= {target:.0f} ms",
                met=p95 <= target,
            )
        refresh_samples = []
        for _ in range(5):
            started = time.perf_counter()
            refresh_accuracy_cache()
            refresh_samples.append((time.perf_counter() - started) * 1000)
        refresh_ms = statistics.median(refresh_samples)
        print(f"\n== beat task refresh_api_accuracy (rollup + edge rows): p50 {refresh_ms:.1f} ms")
        results.add("beat task refresh_api_accuracy, p50 of 5", f"{refresh_ms:.1f} ms")
        rows, seconds, grew = time_csv(client)
        results.add(
            f"CSV export of all {rows:,} rows",
            f"{seconds:.0f} s, RSS +{grew:.1f} MB while streaming",
        )
        load_average = os.getloadavg()
        print("\n| query | p50 ms | p95 ms | target |\n|---|---:|---:|---|")
        for name, _url, _before, target in cases:
            p50, p95 = timings[name]
            verdict = "met" if p95 <= target else "NOT met"
            print(f"| {name} | {p50:.1f} | {p95:.1f} | p95 <= {target:.0f} ms: {verdict} |")
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in load_average)}")
        results.note(
            f"{total:,} whales, {args.runs} timed requests per case after 3 warm-ups, "
            "in-process through Django's test client (JWT auth and rendering included); "
            "load average at the end "
            f"{', '.join(f'{x:.2f}' for x in load_average)} on {os.cpu_count()} cores."
        )
        results.note(
            "'Nothing cached' deletes the accuracy figures from Redis before every timed request, "
            "so each computes them from the rollup; volumes have no cache. PostgreSQL's and the "
            "OS's buffers stay warm in every case."
        )
        results.save(args.json)
    finally:
        if not args.keep:
            drop_database(admin_url, args.database)


if __name__ == "__main__":
    main()
