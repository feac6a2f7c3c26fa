"""The processes around the stack that bench/stack.py runs: what production talks to.

    python -m bench.stack_peers feed --port P --record PATH [--seed N --tx-per-s N ...]
    python -m bench.stack_peers receiver --port P --secrets PATH --record PATH
    python -m bench.stack_peers dashboard --url ws://... --cookie C --record PATH
    python -m bench.stack_peers setup --spec JSON        (run with the stack's environment)

Each peer is its own process, so that generating frames, answering webhooks and timing
dashboard messages never share an interpreter (and a GIL) with the measuring harness or with
each other, and so that a peer's record survives whatever happens to the harness. Records are
JSON Lines, one line per fact, written and flushed as it happens.

feed
    A WebSocket server speaking the mempool.space protocol (the subset LiveSource uses: ``want``,
    ``track-mempool``, ``track-txs`` → ``tracked-txs``, ``{"action":"ping"}`` → ``{"pong":true}``)
    that streams SyntheticMempool frames in real time to every connection that asked for
    ``track-mempool``. The generator runs whether or not anyone is connected, like the real
    mempool. Every whale and every later fate of it is one record line:
    ``{"t", "op": "added"|"replaced"|"mined"|"removed", "txid", "clients", ...}`` where
    ``clients`` is how many connections it was sent to (0: nobody could have seen it), ``role``
    is "whale" or "replacement" on "added", ``by`` the replacing txid on "replaced" and
    ``height`` the block on "mined". HTTP on the same port: ``GET /control/drop[?mode=abort]``
    closes (or aborts, like a network fault) every connection; ``GET /control/stats`` answers
    JSON counts. ``GET /api/tx/<txid>`` answers, like mempool.space's REST API, the Esplora JSON
    of a whale or replacing tx the feed sent (as it was sent), 404 for any other txid: the
    ingest fetches there the replacements a ``tracked-txs`` answer names only by txid.
receiver
    An HTTP webhook receiver that verifies Standard Webhooks signatures with the
    ``standardwebhooks`` package (one secret per endpoint path, from --secrets) and records every
    request: ``{"t", "path", "webhook_id", "type", "txid", "kind", "status", "verified"}``.
    ``POST /control/status`` with ``{"status": 500, "seconds": 30}`` makes it answer that status
    for a while (then 204 again).
dashboard
    A logged-in dashboard WebSocket client that records the receipt time of every message
    (taken before parsing) and reconnects after a close, as the browser does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SATS_PER_BTC = 100_000_000


class Record:
    """An append-only JSON Lines file, flushed per line so readers see facts as they happen."""

    def __init__(self, path: str | Path):
        self.handle = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.lock = threading.Lock()

    def write(self, fact: dict[str, Any]) -> None:
        line = json.dumps(fact, separators=(",", ":")) + "\n"
        with self.lock:
            self.handle.write(line)


# --- feed ---------------------------------------------------------------------------------------


class Feed:
    def __init__(self, args: argparse.Namespace):
        from detection.ingest.sources.synthetic import SyntheticMempool

        self.args = args
        self.floor = round(args.whale_min_btc * SATS_PER_BTC)
        self.generator = SyntheticMempool(
            seed=args.seed,
            tx_per_s=args.tx_per_s,
            whale_every_s=args.whale_every_s,
            block_interval=args.block_interval,
        )
        self.record = Record(args.record)
        self.tracking: set[Any] = set()  # connections that asked for track-mempool
        self.connections: set[Any] = set()
        # txid -> {"state": pending|replaced|mined|removed, "by": txid, "height": n}
        self.tracked: dict[str, dict[str, Any]] = {}
        # txid -> Esplora JSON as sent, for /api/tx/<txid>; oldest forgotten past REST_KEEP.
        self.sent_txs: dict[str, bytes] = {}
        self.stats = {
            "frames": 0,
            "whales": 0,
            "connections": 0,
            "drops": 0,
            "bytes": 0,
            "rest_hits": 0,
            "rest_misses": 0,
        }

    REST_KEEP = 200_000

    def keep_tx(self, tx: dict[str, Any]) -> None:
        import orjson

        self.sent_txs[tx["txid"]] = orjson.dumps(tx)
        if len(self.sent_txs) > self.REST_KEEP:
            del self.sent_txs[next(iter(self.sent_txs))]

    # The fates of whales, from the frame about to go out.
    def note(self, frame: dict[str, Any], clients: int, at: float) -> None:
        delta = frame.get("mempool-transactions") or {}
        height = (frame.get("block") or {}).get("height")
        replacing = set()
        for entry in delta.get("replaced", ()):
            old, new = entry["replaced"], entry["by"]
            replacing.add(new["txid"])
            self.keep_tx(new)
            state = self.tracked.get(old)
            if state is not None and state["state"] == "pending":
                state.update(state="replaced", by=new["txid"])
                self.tracked[new["txid"]] = {"state": "pending"}
                self.record.write(
                    {"t": at, "op": "replaced", "txid": old, "by": new["txid"], "clients": clients}
                )
                self.record.write(
                    {
                        "t": at,
                        "op": "added",
                        "txid": new["txid"],
                        "role": "replacement",
                        "value": sum(o["value"] for o in new["vout"]),
                        "clients": clients,
                    }
                )
        for txid in delta.get("removed", ()):
            state = self.tracked.get(txid)
            if state is not None and state["state"] == "pending":
                state["state"] = "removed"
                self.record.write({"t": at, "op": "removed", "txid": txid, "clients": clients})
        for tx in delta.get("added", ()):
            if tx["txid"] in replacing:
                continue
            value = sum(o["value"] for o in tx["vout"])
            if value >= self.floor:
                self.keep_tx(tx)
                self.tracked[tx["txid"]] = {"state": "pending"}
                self.stats["whales"] += 1
                self.record.write(
                    {
                        "t": at,
                        "op": "added",
                        "txid": tx["txid"],
                        "role": "whale",
                        "value": value,
                        "clients": clients,
                    }
                )
        for txid in delta.get("mined", ()):
            state = self.tracked.get(txid)
            if state is not None and state["state"] == "pending":
                state.update(state="mined", height=height)
                self.record.write(
                    {"t": at, "op": "mined", "txid": txid, "height": height, "clients": clients}
                )

    def tracked_answer(self, txids: list[str]) -> dict[str, Any]:
        answer = {}
        for txid in txids:
            state = self.tracked.get(txid)
            if state is None:
                continue
            if state["state"] == "mined":
                answer[txid] = {"confirmed": True}
            elif state["state"] == "replaced":
                answer[txid] = {"confirmed": False, "replacedBy": state["by"]}
            elif state["state"] == "pending":
                answer[txid] = {"confirmed": False}
        return answer

    async def handler(self, ws) -> None:
        import orjson

        self.connections.add(ws)
        self.stats["connections"] += 1
        try:
            async for message in ws:
                try:
                    request = orjson.loads(message)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(request, dict):
                    continue
                if request.get("track-mempool") is True:
                    self.tracking.add(ws)
                if request.get("action") == "ping":
                    await ws.send('{"pong":true}')
                txids = request.get("track-txs")
                if isinstance(txids, list):
                    answer = self.tracked_answer([t for t in txids if isinstance(t, str)])
                    await ws.send(orjson.dumps({"tracked-txs": answer}).decode())
        except Exception:  # noqa: S110 - a client going away is the normal end of a connection
            pass
        finally:
            self.connections.discard(ws)
            self.tracking.discard(ws)

    def process_request(self, connection, request):
        parts = urlsplit(request.path)
        if parts.path.startswith("/api/tx/"):
            return self.rest_tx(connection, parts.path.removeprefix("/api/tx/"))
        if not parts.path.startswith("/control/"):
            return None
        if parts.path == "/control/drop":
            mode = parse_qs(parts.query).get("mode", ["close"])[-1]
            dropped = len(self.connections)
            self.stats["drops"] += 1
            for ws in list(self.connections):
                self.tracking.discard(ws)
                if mode == "abort":
                    ws.transport.abort()
                else:
                    asyncio.ensure_future(ws.close(1001, "going away"))
            return connection.respond(HTTPStatus.OK, json.dumps({"dropped": dropped}) + "\n")
        if parts.path == "/control/stats":
            body = dict(self.stats, clients=len(self.connections), tracking=len(self.tracking))
            return connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
        return connection.respond(HTTPStatus.NOT_FOUND, "unknown control\n")

    def rest_tx(self, connection, txid: str):
        body = self.sent_txs.get(txid)
        if body is None:
            self.stats["rest_misses"] += 1
            return connection.respond(HTTPStatus.NOT_FOUND, "Transaction not found")
        self.stats["rest_hits"] += 1
        response = connection.respond(HTTPStatus.OK, body.decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    async def run(self) -> None:
        import orjson
        from websockets.asyncio.server import serve

        async with serve(
            self.handler,
            "127.0.0.1",
            self.args.port,
            max_size=None,
            process_request=self.process_request,
        ):
            started = time.monotonic()
            frames = self.generator.frames()
            while True:
                t, frame = next(frames)
                raw = orjson.dumps(frame).decode()
                await asyncio.sleep(max(0.0, started + t - time.monotonic()))
                targets = list(self.tracking)
                at = time.time()
                self.note(frame, len(targets), at)
                for ws in targets:
                    with contextlib.suppress(Exception):
                        await ws.send(raw)
                self.stats["frames"] += 1
                self.stats["bytes"] += len(raw)


def run_feed(args: argparse.Namespace) -> None:
    asyncio.run(Feed(args).run())


# --- webhook receiver ---------------------------------------------------------------------------


def run_receiver(args: argparse.Namespace) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secrets = json.loads(Path(args.secrets).read_text())
    verifiers = {path: Webhook(secret) for path, secret in secrets.items()}
    record = Record(args.record)
    override = {"status": None, "until": 0.0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            path = urlsplit(self.path).path
            if path == "/control/status":
                order = json.loads(body)
                with lock:
                    override["status"] = order.get("status")
                    override["until"] = time.time() + float(order.get("seconds", 0))
                self._answer(200, b"{}")
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            verifier = verifiers.get(path)
            verified, message = False, {}
            if verifier is not None:
                try:
                    message = verifier.verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            with lock:
                forced = override["status"] if time.time() < override["until"] else None
            status = 400 if not verified else (forced or 204)
            data = message.get("data") or {} if isinstance(message, dict) else {}
            record.write(
                {
                    "t": arrived,
                    "path": path,
                    "webhook_id": headers.get("webhook-id"),
                    "type": message.get("type") if isinstance(message, dict) else None,
                    "kind": data.get("kind"),
                    "txid": (data.get("whale") or {}).get("txid"),
                    "status": status,
                    "verified": verified,
                }
            )
            self._answer(status)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    server = Server(("127.0.0.1", args.port), Handler)
    server.serve_forever()


# --- dashboard client ---------------------------------------------------------------------------


async def _dashboard(args: argparse.Namespace) -> None:
    import orjson
    from websockets.asyncio.client import connect

    record = Record(args.record)
    while True:
        try:
            async with connect(
                args.url,
                additional_headers={"Cookie": args.cookie},
                origin=args.origin,
                max_size=None,
                open_timeout=10,
            ) as ws:
                record.write({"t": time.time(), "type": "connected"})
                async for raw in ws:
                    arrived = time.time()  # before parsing: the receipt time
                    message = orjson.loads(raw)
                    kind = message.get("type")
                    if kind == "whale.event":
                        event = message["event"]
                        record.write(
                            {
                                "t": arrived,
                                "type": kind,
                                "id": event.get("id"),
                                "kind": event.get("kind"),
                                "txid": event["whale"]["txid"],
                                "frame_received_at": event.get("frame_received_at"),
                            }
                        )
                    elif kind == "snapshot":
                        record.write(
                            {
                                "t": arrived,
                                "type": kind,
                                "txids": [w["txid"] for w in message.get("whales") or ()],
                            }
                        )
        except Exception as exc:  # noqa: BLE001 - any failure means: reconnect, as a browser does
            record.write({"t": time.time(), "type": "disconnected", "error": repr(exc)[:200]})
        await asyncio.sleep(1.0)


def run_dashboard(args: argparse.Namespace) -> None:
    asyncio.run(_dashboard(args))


# --- setup (inside the stack's environment) -----------------------------------------------------


def run_setup(args: argparse.Namespace) -> None:
    """Users, subscriptions, webhook endpoints and a dashboard session, from a JSON spec:
    {"endpoints": {"/hook/0": "whsec_..."}, "hook_base": "http://127.0.0.1:P", "watch":
    {"path": "/hook/watch", "secret": "whsec_...", "addresses": [...]}} (a watcher is made only
    when addresses are given)."""
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from alerts.models import AmountBasis, Subscription, WebhookEndpoint

    if args.migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
    spec = json.loads(args.spec)
    user_model = get_user_model()
    for number, (path, secret) in enumerate(sorted(spec["endpoints"].items())):
        user, _ = user_model.objects.get_or_create(
            username=f"stack-subscriber-{number}",
            defaults={"email": f"stack-subscriber-{number}@example.org"},
        )
        endpoint = WebhookEndpoint.objects.create(
            owner=user, url=spec["hook_base"] + path, secret=secret
        )
        # On the total: the checks expect every whale the feed makes (>= 100 BTC in all) to
        # alert, and a whale's moved amount (total less estimated change) may be below it.
        subscription = Subscription.objects.create(
            owner=user,
            name=f"stack {number}",
            min_sats=100 * SATS_PER_BTC,
            amount_basis=AmountBasis.TOTAL,
            email=False,
        )
        subscription.webhooks.add(endpoint)
    watch = spec.get("watch") or {}
    if watch.get("addresses"):
        from alerts.watchlists import EntryInput, add_entries, build_entry

        watcher, _ = user_model.objects.get_or_create(
            username="stack-watcher", defaults={"email": "stack-watcher@example.org"}
        )
        entries = add_entries(
            watcher,
            [
                build_entry(watcher, EntryInput(kind="address", value=address))
                for address in watch["addresses"]
            ],
        )
        delivery = entries[0].delivery
        delivery.email = False
        delivery.save(update_fields=["email"])
        delivery.webhooks.add(
            WebhookEndpoint.objects.create(
                owner=watcher, url=spec["hook_base"] + watch["path"], secret=watch["secret"]
            )
        )
    viewer, _ = user_model.objects.get_or_create(
        username="stack-viewer", defaults={"email": "stack-viewer@example.org"}
    )
    store = SessionStore()
    store.update(
        {
            "_auth_user_id": str(viewer.pk),
            "_auth_user_backend": "dashboard.auth.UsernameOrEmailBackend",
            "_auth_user_hash": viewer.get_session_auth_hash(),
        }
    )
    store.set_expiry(timezone.now() + timedelta(days=2))
    store.create()
    print(json.dumps({"cookie": f"{settings.SESSION_COOKIE_NAME}={store.session_key}"}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="peer", required=True)
    feed = sub.add_parser("feed")
    feed.add_argument("--port", type=int, required=True)
    feed.add_argument("--record", required=True)
    feed.add_argument("--seed", type=int, default=1)
    feed.add_argument("--tx-per-s", type=float, default=7.0)
    feed.add_argument("--whale-every-s", type=float, default=1.0)
    feed.add_argument("--block-interval", type=float, default=600.0)
    feed.add_argument("--whale-min-btc", type=float, default=100.0)
    receiver = sub.add_parser("receiver")
    receiver.add_argument("--port", type=int, required=True)
    receiver.add_argument("--secrets", required=True)
    receiver.add_argument("--record", required=True)
    dashboard = sub.add_parser("dashboard")
    dashboard.add_argument("--url", required=True)
    dashboard.add_argument("--cookie", required=True)
    dashboard.add_argument("--origin", default="http://127.0.0.1")
    dashboard.add_argument("--record", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("--spec", required=True)
    setup.add_argument("--migrate", action="store_true", help="migrate the database first")
    args = parser.parse_args(argv)
    {
        "feed": run_feed,
        "receiver": run_receiver,
        "dashboard": run_dashboard,
        "setup": run_setup,
    }[args.peer](args)


if __name__ == "__main__":
    main()
