"""Soak: the whole stack for a while at a busy mempool rate; nothing lost, nothing doubled, and
memory flat.

    .venv/bin/python bench/soak.py [--duration 600] [--tx-per-s 50] [--whale-every-s 1]
                                   [--block-interval 60] [--warmup 120] [--database-url URL]
                                   [--json PATH]

Runs bench/stack.py's Stack (every process real: Redis, Daphne, Celery worker and beat, the
ingest on its live WebSocket client, a local mempool.space-protocol feed, a Standard Webhooks
receiver with two subscribed endpoints, a logged-in dashboard socket) at 50 tx/s with one whale
a second, and prints the RSS of every process (children included) once a minute.

Blocks come every 60 s on average (not mempool.space's 600 s): at 50 tx/s a 600 s block
interval would grow the mempool without bound, so every process that mirrors it would grow too
and "flat memory" would mean nothing; 60 s keeps the mempool at a steady state, as real blocks
do at real rates, and gives whales confirmations to check.

At the end (Stack.check, with up to 60 s for retries and the 10 s drop grace to settle):

* every whale the feed sent is in PostgreSQL exactly once with the lifecycle the feed gave it
  (pending, confirmed at the right height, replaced by the right txid, dropped);
* every subscribed endpoint got exactly one successful, correctly signed delivery per alerting
  event (deduplicated by webhook-id; duplicates counted);
* the dashboard got every whale;
* RSS is flat: warm-up is the first ``--warmup`` seconds (2 minutes: imports, connection pools,
  the feed's and the ingest's mempool filling up to its steady size); each process's RSS at the
  end must be within 10 % of its RSS when warm-up ended, and no process may have restarted
  (judged for the stack's processes: redis, web, worker, beat, ingest; the harness's own peers
  are printed only).

Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_argument  # noqa: E402
from bench.stack import Stack  # noqa: E402

RSS_TOLERANCE = 0.10
# The harness's own peers (feed generator, webhook receiver, dashboard client) are printed but not
# judged: they are test apparatus, and the feed's generator keeps an address pool that fills up
# to 200,000 entries by design.
PEERS = ("feed", "receiver", "dashboard")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def mb(size: int) -> str:
    return f"{size / 2**20:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds, warm-up included")
    parser.add_argument("--tx-per-s", type=float, default=50.0)
    parser.add_argument("--whale-every-s", type=float, default=1.0)
    parser.add_argument("--block-interval", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=120.0)
    parser.add_argument("--sample-every", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workdir", default=None)
    add_json_argument(parser)
    args = parser.parse_args()
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    report = Results("soak", "Soak (full stack)")

    stack = Stack(
        database_url=args.database_url,
        workdir=args.workdir,
        seed=args.seed,
        tx_per_s=args.tx_per_s,
        whale_every_s=args.whale_every_s,
        block_interval=args.block_interval,
    )
    samples: list[tuple[float, dict[str, int]]] = []
    with stack:
        started = time.time()
        names = stack.names()
        print(f"{'min':>5} " + " ".join(f"{n:>9}" for n in names) + "   (RSS MB)")

        def sample() -> None:
            rss = stack.rss()
            elapsed = time.time() - started
            samples.append((elapsed, rss))
            cells = " ".join(f"{mb(rss[n]) if n in rss else '-':>9}" for n in names)
            print(f"{elapsed / 60:5.1f} {cells}   {load()}", flush=True)

        sample()
        baseline: dict[str, int] | None = None
        next_sample = started + args.sample_every
        warm_at = started + args.warmup
        end = started + args.duration
        while time.time() < end:
            now = time.time()
            if baseline is None and now >= warm_at:
                sample()
                baseline = samples[-1][1]
                print(f"      warm-up over: RSS baseline taken at {args.warmup / 60:.1f} min")
                if next_sample <= now + 1:
                    next_sample += args.sample_every
                continue
            if now >= next_sample:
                sample()
                next_sample += args.sample_every
                continue
            time.sleep(
                min(1.0, max(0.0, min(next_sample, warm_at if baseline is None else end) - now))
            )
        sample()
        final = samples[-1][1]
        window_end = time.time()
        load_end = load()
        print("checking PostgreSQL, webhooks and the dashboard (up to 60 s to settle) ...")
        check = stack.check(settle=60, before=window_end - 5)
        restarts = {n: stack.restarts(n) for n in names if stack.restarts(n)}
        feed = stack.feed_stats()

    print(f"feed: {feed.get('frames')} frames, {feed.get('whales')} whales; {load_end}")
    for key, value in check.figures.items():
        print(f"  {key}: {value}")
    for problem in check.problems:
        print(f"  problem: {problem}")

    growth: dict[str, float] = {}
    peak: dict[str, int] = {}
    assert baseline is not None
    for name in names:
        if name in baseline and name in final:
            growth[name] = (final[name] - baseline[name]) / baseline[name]
            peak[name] = max(s[1].get(name, 0) for s in samples if s[0] >= args.warmup)
    judged = {n: g for n, g in growth.items() if n not in PEERS}
    rss_ok = all(abs(g) <= RSS_TOLERANCE for g in judged.values()) and not restarts
    print("RSS after warm-up → end (peak):")
    for name, g in growth.items():
        flag = "ok" if abs(g) <= RSS_TOLERANCE else "NOT FLAT"
        if name in PEERS:
            flag = "(harness peer, not judged)"
        print(
            f"  {name:>9}: {mb(baseline[name])} → {mb(final[name])} MB ({g:+.1%}; peak "
            f"{mb(peak[name])} MB) {flag}"
        )
    if restarts:
        print(f"  processes restarted during the soak: {restarts}")

    minutes = args.duration / 60
    rate = f"{args.tx_per_s:g} tx/s, a whale every {args.whale_every_s:g} s, {minutes:.0f} min"
    report.add(
        f"whales in PostgreSQL exactly once with the feed's lifecycle ({rate})",
        f"{check.figures.get('whales_checked', 0)} checked, "
        f"{check.figures.get('whales_missing', 0)} missing, "
        f"{check.figures.get('whales_wrong_lifecycle', 0)} wrong, "
        f"{check.figures.get('whales_duplicated', 0)} duplicated",
        target="0 missing / wrong / duplicated",
        met=not any(
            check.figures.get(k, 1)
            for k in ("whales_missing", "whales_wrong_lifecycle", "whales_duplicated")
        ),
    )
    report.add(
        "webhook deliveries: exactly one per event per endpoint",
        f"{check.figures.get('webhook_events', 0)} events × "
        f"{check.figures.get('webhook_endpoints', 0)} endpoints, "
        f"{check.figures.get('webhook_missing', 0)} missing, "
        f"{check.figures.get('webhook_duplicate_events', 0)} duplicate events, "
        f"{check.figures.get('webhook_redeliveries', 0)} re-deliveries of a webhook-id",
        # No process dies in the soak, so not even an at-least-once re-delivery is expected.
        target="0 missing, 0 duplicate events, 0 re-deliveries",
        met=not check.figures.get("webhook_missing", 1)
        and not check.figures.get("webhook_duplicate_events", 1)
        and not check.figures.get("webhook_redeliveries", 1),
    )
    report.add(
        "dashboard got every whale",
        f"{check.figures.get('dashboard_expected', 0) - check.figures.get('dashboard_missing', 0)}"
        f" / {check.figures.get('dashboard_expected', 0)}",
        target="all",
        met=not check.figures.get("dashboard_missing", 1),
    )
    for name, g in judged.items():
        report.add(
            f"RSS {name}, after {args.warmup / 60:.0f} min warm-up → end",
            f"{mb(baseline[name])} → {mb(final[name])} MB ({g:+.1%})",
            target="within ±10 %",
            met=abs(g) <= RSS_TOLERANCE,
        )
    report.note(f"{load_end} at the end, on {os.cpu_count()} CPUs shared with other work.")
    report.save(args.json)
    return 0 if (check.ok and rss_ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
