"""Chaos drill: the whole stack under a steady whale stream, one fault after another.

    python bench/chaos.py [--json PATH] [--webhook-seconds 120] [--pg-seconds 10]
                          [--faults worker-holding,ingest,...]

The stack (bench/stack.py: feed, ingest, Celery worker and beat, Daphne, a webhook receiver, a
dashboard client, a private redis-server) runs against a private PostgreSQL cluster
(tests/support/pgcluster.py), so that PostgreSQL can be stopped without touching the shared server. A
process that dies is started again after RESTART_SEC seconds, as the systemd units do
(Restart=on-failure, RestartSec=5; SIGKILL counts as a failure).

Faults, in turn, each followed by a quiet spell in which recovery is measured:

    kill -9 ingest | kill -9 worker | kill -9 worker holding tasks | kill -9 daphne (web) |
    restart Redis | stop PostgreSQL (10 s) | source closes the connection |
    source connection cut (abort) | webhook receiver answers 500 (2 min)

(--faults picks some: ingest, worker, worker-holding, web, redis, postgres, source-close,
source-abort, webhook.)

"kill -9 worker holding tasks" is the one that counts the events in flight: PostgreSQL holds the
worker's recordings inside their insert (the drill locks the events table, as a slow disk or a
lock would), and the worker's whole process group is killed while both pool processes hold one
(tasks in progress, not yet acknowledged). For those in-flight events it reports the time from the
kill until the row exists and until the webhook arrives: the other faults measure the first whale
emitted after the fault, which says nothing about the ones a dead process held.

For each fault: the recovery time, from the end of the fault (the kill; Redis or PostgreSQL
back; the source's close; the receiver healthy again) to the first whale the feed emitted after
it reaching PostgreSQL, the dashboard and the webhook receiver; the whales emitted during the
fault; and how many of those were lost or duplicated in each place. At the end one check over
the whole run (Stack.check): every whale the feed sent is in PostgreSQL once with the right
lifecycle, every alerting event reached each subscription's endpoint under one webhook-id
("duplicate events", two webhook-ids for one event, must be 0), and the dashboard saw every
whale. A second 2xx of the same webhook-id is a re-delivery: webhook delivery is at least once
(a worker killed between the receiver's 2xx and recording it sends it again, with the same
webhook-id, which Standard Webhooks receivers use as the idempotency key). Re-deliveries are
counted and each is shown with its time; one outside a fault that kills a process fails the
run. Exit status 1 on any failure.

Whales the feed emitted while no ingest was connected (the ingest killed, or reconnecting) were
sent to nobody: the source never told us about them (mempool.space does not replay), so they are
counted apart as "unseen", not as lost.

Webhook retries (alerts/delivery.py RETRY_DELAYS, ±10 % jitter): 5 s, 5 min, 30 min, ... A
delivery first tried during a 2-minute run of 500s fails at once and again ~5 s later; its third
try is not left at ~5 min: the endpoint's first 2xx after the outage makes every waiting retry
due (alerts.delivery.send_backlog_now) and the next sweep (beat, every 5 s) queues them, behind
new alerts. The drill reports when the last delivery of the fault's whales arrived ("backlog
drained", target <= BACKLOG_TARGET_S after the receiver is healthy).
"""

from __future__ import annotations

import argparse
import contextlib
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

FAULTS = (
    "ingest",
    "worker",
    "worker-holding",
    "web",
    "redis",
    "postgres",
    "source-close",
    "source-abort",
    "webhook",
)

# As the systemd units: Restart=on-failure, RestartSec=5.
RESTART_SEC = 5.0
# How long a spell of normal running after each fault lasts: recovery is measured in it.
OBSERVE_S = 35.0
# A fault's whales include those emitted this long after it ended (still feeling it).
AFTER_S = 5.0
SOURCE_RESUME_TARGET_S = 30.0
# Recovery is the first post-fault whale reaching a place; more than this means trouble.
RECOVERY_TARGET_S = 30.0
# A receiver healthy again has every delivery it missed within this long (its first 2xx makes
# the waiting retries due; the sweep, every 5 s, queues them behind new alerts).
BACKLOG_TARGET_S = 60.0
# Faults that kill a process: the only place a re-delivery of a webhook-id is expected.
KILLS = "kill -9"


@dataclass
class Fault:
    name: str
    started: float
    ended: float = 0.0
    # Places whose recovery is measured, with the fault's own target if it differs.
    notes: list[str] = field(default_factory=list)
    source_resumed_s: float | None = None
    # Whales whose "seen" event was in flight (published, not recorded) when the process died.
    in_flight: list[str] = field(default_factory=list)


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


@dataclass
class SeenWebhooks:
    """The receiver's 2xx "seen" deliveries."""

    first: dict[str, float] = field(default_factory=dict)  # txid -> first receipt, any endpoint
    # (endpoint path, txid) -> first receipt there, and the webhook-ids it came under
    first_at: dict[tuple[str, str], float] = field(default_factory=dict)
    ids: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # (endpoint path, webhook-id) -> 2xx count
    ok: dict[tuple[str, str], int] = field(default_factory=dict)


def seen_webhooks(stack: Stack) -> SeenWebhooks:
    seen = SeenWebhooks()
    for delivery in sorted(stack.deliveries(), key=lambda d: d["t"]):
        if not (delivery["verified"] and 200 <= delivery["status"] < 300):
            continue
        key = (delivery["path"], delivery["webhook_id"])
        seen.ok[key] = seen.ok.get(key, 0) + 1
        if delivery.get("kind") == "seen" and delivery.get("txid"):
            txid = delivery["txid"]
            seen.first.setdefault(txid, delivery["t"])
            seen.first_at.setdefault((delivery["path"], txid), delivery["t"])
            seen.ids.setdefault((delivery["path"], txid), set()).add(delivery["webhook_id"])
    return seen


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

    chosen = set(args.faults)
    for name in ("ingest", "worker", "worker-holding", "web"):
        if name not in chosen:
            continue
        if name == "worker-holding":
            observe(kill_worker_holding_tasks(stack))
            continue
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

    if "redis" in chosen:
        fault = Fault("restart Redis", time.time())
        stack.restart("redis")
        fault.ended = time.time()
        observe(fault)

    if "postgres" in chosen:
        fault = Fault(f"stop PostgreSQL {args.pg_seconds:.0f} s", time.time())
        cluster.stop(mode="fast")
        time.sleep(args.pg_seconds)
        cluster.start()
        fault.ended = time.time()
        observe(fault)

    for mode in ("close", "abort"):
        if f"source-{mode}" not in chosen:
            continue
        fault = Fault(f"source connection {'closed' if mode == 'close' else 'cut (abort)'}",
                      time.time())  # fmt: skip
        dropped = stack.drop_source_connections(mode)
        fault.ended = time.time()
        fault.notes.append(f"{dropped} connection(s) dropped")
        fault.source_resumed_s = wait_source_resumed(stack, fault.ended)
        observe(fault)

    if "webhook" in chosen:
        fault = Fault(f"webhook receiver answers 500 for {args.webhook_seconds:.0f} s", time.time())
        stack.webhook_status(500, args.webhook_seconds)
        time.sleep(args.webhook_seconds)
        fault.ended = time.time()
        faults.append(fault)
        say(f"{fault.name}: over; deliveries catch up through the retry schedule")
    return faults


HELD_INSERTS_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
    "AND query LIKE 'INSERT INTO \"detection_whaleevent\"%%'"
)


def kill_worker_holding_tasks(stack: Stack, hold_timeout: float = 30.0) -> Fault:
    """kill -9 the worker's process group while its pool processes are inside recordings."""
    import psycopg

    fault = Fault("kill -9 worker holding tasks", time.time())
    with (
        psycopg.connect(stack.database_url) as barrier,
        psycopg.connect(stack.database_url, autocommit=True) as watcher,
    ):
        barrier.execute("LOCK TABLE detection_whaleevent IN EXCLUSIVE MODE")
        deadline = time.time() + hold_timeout
        held = 0
        while time.time() < deadline:
            watcher.execute("SELECT pg_stat_clear_snapshot()")
            held = watcher.execute(HELD_INSERTS_SQL).fetchone()[0]
            if held >= stack.concurrency:
                break
            time.sleep(0.1)
        recorded = set(seen_in_postgres(stack))
        restarts = stack.restarts("worker")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.pid("worker"), signal.SIGKILL)  # the pool dies with it, as on OOM
        stack.kill("worker", signal.SIGKILL)
        fault.ended = time.time()
        fault.in_flight = sorted(
            txid
            for txid, whale in stack.emitted_whales().items()
            if whale["role"] == "whale"
            and whale["sent"]
            and fault.started - 5 <= whale["added_at"] <= fault.ended
            and txid not in recorded
        )
        barrier.rollback()  # the lock goes; recording can go on without the dead worker
    fault.notes.append(f"{held} recording(s) held by the pool at the kill")
    fault.notes.append(f"{len(fault.in_flight)} whale(s) in flight")
    deadline = time.time() + 60
    while stack.restarts("worker") == restarts or not stack.alive("worker"):
        if time.time() > deadline:
            raise RuntimeError("the worker was not restarted")
        time.sleep(0.1)
    fault.notes.append(f"worker restarted after {time.time() - fault.ended:.1f} s")
    return fault


def measure(stack: Stack, faults: list[Fault], results: Results) -> bool:
    """Per fault: recovery times and what was lost or duplicated. True when all targets met."""
    ok = True
    emitted = stack.emitted_whales()
    in_pg = seen_in_postgres(stack)
    counts = seen_counts(stack)
    dash_first, dash_pushes = on_dashboard(stack)
    hooks = seen_webhooks(stack)
    hook_first = hooks.first
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
        lost_hook = dup_events = redelivered = 0
        for txid in sent:
            for path in endpoints:
                ids = hooks.ids.get((path, txid), set())
                lost_hook += not ids
                dup_events += max(0, len(ids) - 1)
                redelivered += sum(hooks.ok[(path, uid)] - 1 for uid in ids)
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
            ("webhooks", lost_hook, dup_events),
        ):
            met = lost == 0 and dup == 0
            ok &= met
            what = "duplicate events" if place == "webhooks" else "duplicated"
            print(f"   {place}: lost {lost}, {what} {dup}")
            results.add(f"{label}: {place} lost / {what}", f"{lost} / {dup}",
                        target="0 / 0", met=met)  # fmt: skip
        if redelivered:
            print(f"   webhooks: {redelivered} re-delivery(ies) of the same webhook-id")
            results.add(f"{label}: re-deliveries of the same webhook-id", str(redelivered))
        if "webhook" in fault.name:
            ok &= report_backlog(fault, label, sent, endpoints, hooks, results)
        if fault.in_flight:
            ok &= report_in_flight(fault, label, in_pg, hook_first, results)
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


def report_backlog(fault: Fault, label: str, sent, endpoints, hooks: SeenWebhooks, results) -> bool:
    """The receiver healthy again: when did the last delivery it missed arrive?"""
    arrivals = [hooks.first_at.get((path, txid)) for txid in sent for path in endpoints]
    missing = sum(1 for t in arrivals if t is None)
    last = max((t for t in arrivals if t is not None), default=None)
    drained = None if last is None else max(0.0, last - fault.ended)
    met = missing == 0 and drained is not None and drained <= BACKLOG_TARGET_S
    shown = "never" if drained is None else f"{drained:.1f} s"
    if missing:
        shown += f" ({missing} never)"
    print(f"   backlog drained (last delivery of the fault's whales after the receiver is "
          f"healthy): {shown} (target <= {BACKLOG_TARGET_S:.0f} s)")  # fmt: skip
    results.add(f"{label}: backlog drained (receiver healthy to the fault's last whale delivered)",
                shown, target=f"<= {BACKLOG_TARGET_S:.0f} s", met=met)  # fmt: skip
    return met


def report_redeliveries(stack: Stack, faults: list[Fault], results: Results) -> bool:
    """Every re-delivery of a webhook-id, with the fault it came from. At least once is the
    contract, but a repeat is expected only where a process was killed mid-send."""
    repeats = stack.redeliveries()
    explained = 0
    print(f"\nRe-deliveries of the same webhook-id (at least once): {len(repeats)}")
    for repeat in repeats:
        during = next(
            (f for f in faults if f.started - 1 <= repeat["first"] <= f.ended + OBSERVE_S), None
        )
        killed = during is not None and during.name.startswith(KILLS)
        explained += killed
        print(f"   {repeat['path']} {repeat['webhook_id'][:8]}: 2xx at "
              f"{time.strftime('%H:%M:%S', time.localtime(repeat['first']))}"
              f".{int(repeat['first'] % 1 * 100):02d}, sent again "
              f"{repeat['again'] - repeat['first']:.1f} s later"
              f" ({'after ' + during.name if during else 'no fault'})")  # fmt: skip
    met = explained == len(repeats)
    results.add(
        "whole run: re-deliveries of the same webhook-id (at least once)",
        f"{len(repeats)}, {explained} of them after a kill -9",
        target="only after a kill -9",
        met=met,
    )
    return met


def report_in_flight(fault: Fault, label: str, in_pg, hook_first, results: Results) -> bool:
    """The events the dead process held: time from the kill to their row and their webhook."""
    ok = True
    for place, first_at in (("row in PostgreSQL", in_pg), ("webhook", hook_first)):
        delays = [first_at[t] - fault.ended for t in fault.in_flight if t in first_at]
        missing = len(fault.in_flight) - len(delays)
        worst = max(delays) if delays else None
        met = missing == 0 and worst is not None and worst <= RECOVERY_TARGET_S
        ok &= met
        shown = f"{worst:.1f} s" if worst is not None else "never"
        if missing:
            shown += f" ({missing} of {len(fault.in_flight)} never)"
        print(f"   in-flight events ({len(fault.in_flight)}), kill to {place}: {shown} (worst; "
              f"target <= {RECOVERY_TARGET_S:.0f} s)")  # fmt: skip
        results.add(f"{label}: in-flight events, kill to {place} (worst)", shown,
                    target=f"<= {RECOVERY_TARGET_S:.0f} s", met=met)  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhook-seconds", type=float, default=120.0)
    parser.add_argument("--pg-seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--faults",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=list(FAULTS),
        help=f"comma-separated, in the drill's order: {','.join(FAULTS)} (default all)",
    )
    add_json_argument(parser)
    args = parser.parse_args()
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    results = Results("chaos", "Chaos drill: faults in turn under a steady whale stream")
    results.note(
        f"Processes are restarted {RESTART_SEC:.0f} s after they die (systemd Restart=on-failure, "
        "RestartSec=5). Recovery: from the end of the fault to the first whale emitted after it "
        "reaching each place; for the faults that hold work, also from the kill to the in-flight "
        "events' rows and webhooks. Webhook retries after a failure: 5 s, then 5 min (±10 %; "
        "the sweeper queues every retry, every 5 s), but an endpoint's first 2xx after failures "
        "makes its waiting retries due at once. A re-delivery is a second 2xx of one "
        "webhook-id (at least once: a kill between the receiver's answer and its record); a "
        "duplicate event is one event under two webhook-ids."
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
            settle_until = faults[-1].ended + 60
            if "webhook" in args.faults:
                settle_until = faults[-1].ended + BACKLOG_TARGET_S + 60
            say(f"waiting up to {settle_until - time.time():.0f} s for deliveries to catch up")
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
                "whole run: every event delivered to each subscription under one webhook-id",
                f"{figures.get('webhook_events')} events x {figures.get('webhook_endpoints')} "
                f"endpoints, {figures.get('webhook_missing')} missing, "
                f"{figures.get('webhook_duplicate_events')} duplicate events",
                target="0 missing, 0 duplicate events",
                met=not any(p.startswith("webhooks") for p in final.problems),
            )
            ok &= report_redeliveries(stack, faults, results)
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
