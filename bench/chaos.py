"""Chaos drill: the whole stack under a steady whale stream, one fault after another.

    python bench/chaos.py [--json PATH] [--webhook-seconds 120] [--pg-seconds 10]

The stack (bench/stack.py: feed, ingest, Celery worker and beat, Daphne, a webhook receiver, a
dashboard client, a private redis-server) runs against a private PostgreSQL cluster
(tests/support/pgcluster.py), so that PostgreSQL can be stopped without touching the shared server. A
process that dies is started again after RESTART_SEC seconds, as the systemd units do
(Restart=on-failure, RestartSec=5; SIGKILL counts as a failure).

Faults, in turn, each followed by a quiet spell in which recovery is measured:

    kill -9 ingest | kill -9 worker | kill -9 daphne (web) | restart Redis |
    stop PostgreSQL (10 s) | source closes the connection | source connection cut (abort) |
    webhook receiver answers 500 (2 min)

For each fault: the recovery time, from the end of the fault (the kill; Redis or PostgreSQL
back; the source's close; the receiver healthy again) to the first whale the feed emitted after
it reaching PostgreSQL, the dashboard and the webhook receiver; the whales emitted during the
fault; and how many of those were lost or duplicated in each place. At the end one check over
the whole run (Stack.check): every whale the feed sent is in PostgreSQL once with the right
lifecycle, every alerting event reached each subscription's endpoint exactly once (2xx, by
webhook-id), and the dashboard saw every whale. Exit status 1 on any failure.

Whales the feed emitted while no ingest was connected (the ingest killed, or reconnecting) were
sent to nobody: the source never told us about them (mempool.space does not replay), so they are
counted apart as "unseen", not as lost.

Webhook retries (alerts/delivery.py RETRY_DELAYS, ±10 % jitter): 5 s, 5 min, 30 min, ... A
delivery first tried during a 2-minute run of 500s fails at once and again ~5 s later, and
succeeds on its third try ~5 min (270-330 s) after the second; a wait over 300 s is not a Celery
countdown but a next_attempt_at the sweeper (beat, every 60 s) queues. So the run waits up to
120 + 5.5 + 330 + 60 s (plus slack) after the 500s start for deliveries to catch up.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_argument  # noqa: E402
from bench.stack import Stack  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402 - needs the path above

# As the systemd units: Restart=on-failure, RestartSec=5.
RESTART_SEC = 5.0
# How long a spell of normal running after each fault lasts: recovery is measured in it.
OBSERVE_S = 35.0
# A fault's whales include those emitted this long after it ended (still feeling it).
AFTER_S = 5.0
SOURCE_RESUME_TARGET_S = 30.0
# Recovery is the first post-fault whale reaching a place; more than this means trouble.
RECOVERY_TARGET_S = 30.0
# Webhook retries: the third try comes ~5 min after the second, via the sweeper if over 300 s.
RETRY_CATCH_UP_S = 5.5 + 330 + 60 + 30


@dataclass
class Fault:
    name: str
    started: float
    ended: float = 0.0
    # Places whose recovery is measured, with the fault's own target if it differs.
    notes: list[str] = field(default_factory=list)
    source_resumed_s: float | None = None


def seen_in_postgres(stack: Stack) -> dict[str, float]:
    """txid -> when its "seen" event was committed (epoch)."""
    rows = stack.psql(
        "SELECT w.txid, min(e.created_at) FROM detection_whaleevent e "
        "JOIN detection_whaletransaction w ON w.id = e.whale_id WHERE e.kind = 'seen' GROUP BY 1"
    )
    return {txid: created.timestamp() for txid, created in rows}


def seen_counts(stack: Stack) -> dict[str, int]:
    rows = stack.psql(
        "SELECT w.txid, count(*) FROM detection_whaleevent e "
        "JOIN detection_whaletransaction w ON w.id = e.whale_id WHERE e.kind = 'seen' GROUP BY 1"
    )
    return dict(rows)


def on_dashboard(stack: Stack) -> tuple[dict[str, float], dict[str, int]]:
    """txid -> first time the dashboard had it (a "seen" push or a snapshot), and how many
    "seen" pushes it got."""
    first: dict[str, float] = {}
    pushes: dict[str, int] = {}
    for message in stack.dashboard_messages():
        if message["type"] == "whale.event" and message["kind"] == "seen":
            first.setdefault(message["txid"], message["t"])
            pushes[message["txid"]] = pushes.get(message["txid"], 0) + 1
        elif message["type"] == "snapshot":
            for txid in message["txids"]:
                first.setdefault(txid, message["t"])
    return first, pushes


def webhooks_by_txid(stack: Stack) -> tuple[dict[str, float], dict[tuple[str, str], int]]:
    """txid -> first 2xx "seen" delivery, and (endpoint path, webhook-id) -> 2xx count."""
    first: dict[str, float] = {}
    ok: dict[tuple[str, str], int] = {}
    for delivery in stack.deliveries():
        if not (delivery["verified"] and 200 <= delivery["status"] < 300):
            continue
        key = (delivery["path"], delivery["webhook_id"])
        ok[key] = ok.get(key, 0) + 1
        if delivery.get("kind") == "seen" and delivery.get("txid"):
            first.setdefault(delivery["txid"], delivery["t"])
    return first, ok


def wait_source_resumed(stack: Stack, since: float, timeout: float = 60.0) -> float | None:
    """Seconds from ``since`` until the ingest tracks the feed again and a frame reached it
    (a whale added after ``since`` was sent to a client)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stack.feed_stats().get("tracking", 0) >= 1:
            sent_after = [
                w["added_at"]
                for w in stack.emitted_whales().values()
                if w["sent"] and w["added_at"] >= since
            ]
            if sent_after:
                return min(sent_after) - since
        time.sleep(0.2)
    return None


def wait_alive(stack: Stack, name: str, timeout: float = 60.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stack.alive(name):
            return time.time()
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not come back within {timeout} s")


def say(text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", flush=True)


def run_faults(stack: Stack, cluster: PgCluster, args) -> list[Fault]:
    faults: list[Fault] = []

    def observe(fault: Fault) -> None:
        faults.append(fault)
        say(f"{fault.name}: fault over; observing {OBSERVE_S:.0f} s")
        time.sleep(OBSERVE_S)

    for name in ("ingest", "worker", "web"):
        fault = Fault(f"kill -9 {'daphne' if name == 'web' else name}", time.time())
        restarts = stack.restarts(name)
        stack.kill(name, signal.SIGKILL)
        fault.ended = time.time()
        deadline = time.time() + 60
        while stack.restarts(name) == restarts or not stack.alive(name):
            if time.time() > deadline:
                raise RuntimeError(f"{name} was not restarted")
            time.sleep(0.1)
        fault.notes.append(f"{name} restarted after {time.time() - fault.ended:.1f} s")
        if name == "ingest":
            fault.source_resumed_s = wait_source_resumed(stack, fault.ended)
        observe(fault)

    fault = Fault("restart Redis", time.time())
    stack.restart("redis")
    fault.ended = time.time()
    observe(fault)

    fault = Fault(f"stop PostgreSQL {args.pg_seconds:.0f} s", time.time())
    cluster.stop(mode="fast")
    time.sleep(args.pg_seconds)
    cluster.start()
    fault.ended = time.time()
    observe(fault)

    for mode in ("close", "abort"):
        fault = Fault(f"source connection {'closed' if mode == 'close' else 'cut (abort)'}",
                      time.time())  # fmt: skip
        dropped = stack.drop_source_connections(mode)
        fault.ended = time.time()
        fault.notes.append(f"{dropped} connection(s) dropped")
        fault.source_resumed_s = wait_source_resumed(stack, fault.ended)
        observe(fault)

    fault = Fault(f"webhook receiver answers 500 for {args.webhook_seconds:.0f} s", time.time())
    stack.webhook_status(500, args.webhook_seconds)
    time.sleep(args.webhook_seconds)
    fault.ended = time.time()
    faults.append(fault)
    say(f"{fault.name}: over; deliveries catch up through the retry schedule")
    return faults


def measure(stack: Stack, faults: list[Fault], results: Results) -> bool:
    """Per fault: recovery times and what was lost or duplicated. True when all targets met."""
    ok = True
    emitted = stack.emitted_whales()
    in_pg = seen_in_postgres(stack)
    counts = seen_counts(stack)
    dash_first, dash_pushes = on_dashboard(stack)
    hook_first, hook_ok = webhooks_by_txid(stack)
    # webhook-id of each whale's "seen" event, to count deliveries per endpoint
    seen_uid = dict(
        stack.psql(
            "SELECT w.txid, e.uid::text FROM detection_whaleevent e "
            "JOIN detection_whaletransaction w ON w.id = e.whale_id WHERE e.kind = 'seen'"
        )
    )
    endpoints = list(stack.secrets)
    whales = sorted(
        ((t, w) for t, w in emitted.items() if w["role"] == "whale"),
        key=lambda item: item[1]["added_at"],
    )

    for index, fault in enumerate(faults):
        window_end = fault.ended + AFTER_S
        during = [(t, w) for t, w in whales if fault.started <= w["added_at"] <= window_end]
        sent = [t for t, w in during if w["sent"]]
        unseen = len(during) - len(sent)
        lost_pg = [t for t in sent if t not in in_pg]
        dup_pg = [t for t in sent if counts.get(t, 0) > 1]
        lost_dash = [t for t in sent if t not in dash_first]
        dup_dash = [t for t in sent if dash_pushes.get(t, 0) > 1]
        lost_hook = dup_hook = 0
        for txid in sent:
            uid = seen_uid.get(txid)
            for path in endpoints:
                n = hook_ok.get((path, uid), 0) if uid else 0
                lost_hook += n == 0
                dup_hook += max(0, n - 1)
        after = [t for t, w in whales if w["added_at"] >= fault.ended and w["sent"]]
        label = f"{index + 1}. {fault.name}"
        print(f"\n{label}  ({', '.join(fault.notes) or 'no notes'})")
        print(
            f"   whales emitted during the fault (+{AFTER_S:.0f} s): {len(during)}, "
            f"sent by the source: {len(sent)}, unseen (no client connected): {unseen}"
        )
        results.add(f"{label}: whales emitted during the fault", str(len(during)))
        results.add(f"{label}: whales emitted while no ingest was connected", str(unseen))
        for place, first_at in (
            ("PostgreSQL", in_pg),
            ("dashboard", dash_first),
            ("webhook receiver", hook_first),
        ):
            first = next((t for t in after if t in first_at), None)
            recovery = (first_at[first] - fault.ended) if first else None
            limit = RECOVERY_TARGET_S
            if place == "webhook receiver" and "webhook" in fault.name:
                limit = 10.0  # the receiver is healthy again: the next new event goes at once
            met = recovery is not None and recovery <= limit
            ok &= met
            shown = f"{recovery:.1f} s" if recovery is not None else "never"
            print(f"   recovery to {place}: {shown} (target <= {limit:.0f} s)")
            results.add(f"{label}: recovery to {place}", shown, target=f"<= {limit:.0f} s", met=met)
        for place, lost, dup in (
            ("PostgreSQL", len(lost_pg), len(dup_pg)),
            ("dashboard", len(lost_dash), len(dup_dash)),
            ("webhooks", lost_hook, dup_hook),
        ):
            met = lost == 0 and dup == 0
            ok &= met
            print(f"   {place}: lost {lost}, duplicated {dup}")
            results.add(f"{label}: {place} lost / duplicated", f"{lost} / {dup}",
                        target="0 / 0", met=met)  # fmt: skip
        if lost_pg:
            print(f"      lost in PostgreSQL: {[t[:12] for t in lost_pg[:5]]}")
        if fault.source_resumed_s is not None or "source" in fault.name or "ingest" in fault.name:
            resumed = fault.source_resumed_s
            met = resumed is not None and resumed <= SOURCE_RESUME_TARGET_S
            ok &= met
            shown = f"{resumed:.1f} s" if resumed is not None else "never"
            print(f"   source resumed (reconnected, frames flowing): {shown} (target <= 30 s)")
            results.add(f"{label}: source resumed", shown, target="<= 30 s", met=met)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhook-seconds", type=float, default=120.0)
    parser.add_argument("--pg-seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    add_json_argument(parser)
    args = parser.parse_args()
    results = Results("chaos", "Chaos drill: faults in turn under a steady whale stream")
    results.note(
        f"Processes are restarted {RESTART_SEC:.0f} s after they die (systemd Restart=on-failure, "
        "RestartSec=5). Recovery: from the end of the fault to the first whale emitted after it "
        "reaching each place. Webhook retries after a failure: 5 s, then 5 min (±10 %; over "
        "300 s the sweeper queues it, every 60 s)."
    )
    ok = True
    with PgCluster() as cluster:
        say(f"private PostgreSQL on port {cluster.port} ({cluster.root})")
        stack = Stack(
            database_url=cluster.url("whalewatch_chaos"),
            seed=args.seed,
            whale_every_s=1.0,
            restart_delay=RESTART_SEC,
        )
        with stack:
            say(f"stack up; warming up {args.warmup:.0f} s")
            stack.wait_for_whales(5, timeout=120)
            time.sleep(args.warmup)
            faults = run_faults(stack, cluster, args)
            settle_until = faults[-1].started + args.webhook_seconds + RETRY_CATCH_UP_S
            say(
                f"waiting up to {settle_until - time.time():.0f} s for deliveries to catch up "
                "(retry schedule)"
            )
            final = None
            while time.time() < settle_until:
                final = stack.check(settle=0, before=faults[-1].ended + 60)
                if final.ok:
                    break
                time.sleep(15)
            caught_up = time.time()
            say(f"caught up after {caught_up - faults[-1].ended:.0f} s" if final and final.ok
                else "not caught up in time")  # fmt: skip
            # Whales up to a few seconds ago are in flight; everything before must be settled.
            final = stack.check(settle=60)
            ok &= measure(stack, faults, results)
            print("\nWhole run:")
            for key, value in sorted(final.figures.items()):
                print(f"   {key}: {value}")
            for problem in final.problems:
                print(f"   PROBLEM: {problem}")
            figures = final.figures
            results.add(
                "whole run: whales in PostgreSQL exactly once, right lifecycle",
                f"{figures.get('whales_checked')} checked, {figures.get('whales_missing')} "
                f"missing, {figures.get('whales_duplicated')} duplicated, "
                f"{figures.get('whales_wrong_lifecycle')} wrong lifecycle",
                target="0 missing, 0 duplicated, 0 wrong",
                met=final.ok or not any(p.startswith("whales") for p in final.problems),
            )
            results.add(
                "whole run: one 2xx webhook per event per subscription",
                f"{figures.get('webhook_events')} events x {figures.get('webhook_endpoints')} "
                f"endpoints, {figures.get('webhook_missing')} missing, "
                f"{figures.get('webhook_duplicates')} duplicates",
                target="0 missing, 0 duplicates",
                met=not any(p.startswith("webhooks") for p in final.problems),
            )
            results.add(
                "whole run: dashboard saw every whale",
                f"{figures.get('dashboard_missing')} missing, "
                f"{figures.get('dashboard_repeated')} pushed twice",
                target="0 / 0",
                met=not any(p.startswith("dashboard") for p in final.problems),
            )
            ok &= final.ok
            load = os.getloadavg()
            print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                  f"({os.cpu_count()} cores); stack logs in {stack.logs}")  # fmt: skip
            results.add("load average (1, 5, 15 min) at the end",
                        " ".join(f"{x:.2f}" for x in load))  # fmt: skip
    results.save(args.json)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
