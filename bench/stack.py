"""The whole Whale Watch stack as real processes, for end-to-end benchmarks and fault drills.

    from bench.stack import Stack

    with Stack(tx_per_s=7, whale_every_s=1.0) as stack:     # start() ... stop()
        stack.wait_for_whales(10)
        stack.kill("worker")                # SIGKILL; restarted after restart_delay
        stack.drop_source_connections()
        stack.webhook_status(500, seconds=20)
        print(stack.rss())
        report = stack.check(settle=30)     # Check(ok, problems, figures)

What runs (as production runs it: Procfile, deploy/systemd), each with its log in
``stack.workdir/logs/<name>.log`` (the work directory is printed at start):

``redis``      a private redis-server on a free port (broker, channel layer, cache), with
               the append-only file on as in production
``web``        Daphne with the systemd unit's options
``worker``     ``celery worker --concurrency=N`` (``workers=2`` runs ``worker``, ``worker-2``)
``beat``       ``celery beat``
``ingest``     ``manage.py ingest_mempool`` with its LIVE WebSocket client on the feed
``feed``       bench/stack_peers.py feed: the mempool.space protocol, SyntheticMempool frames
               in real time, a record of every whale and its fate
``receiver``   bench/stack_peers.py receiver: Standard Webhooks verification, a record of
               every request
``dashboard``  bench/stack_peers.py dashboard: a logged-in dashboard socket, a record of every
               message with its receipt time

PostgreSQL is not started: ``database_url`` names the server (and optionally the database) to
use, default ``postgres://postgres@127.0.0.1:5432``. Without a database name a scratch database
``whalewatch_stack_<pid>_<n>`` is created, migrated and dropped by ``stop()`` (``keep_database``
keeps it); a named database is created if missing and dropped only if the harness created it.
Point ``database_url`` at a private cluster to stop and start PostgreSQL under the stack.

Constructor (keywords): ``database_url``, ``workdir`` (default a new temporary directory,
kept), ``seed``, ``tx_per_s`` (7.0), ``whale_every_s`` (1.0), ``block_interval`` (600 s),
``subscribers`` (2 users, each with a subscription and its own webhook endpoint),
``watch_addresses`` (none: else one more user watches these addresses, issue 21, with the webhook
endpoint ``WATCH_PATH``; its watch-only hits are left out of the whale and webhook checks),
``workers`` (1), ``concurrency`` (2), ``auto_restart`` (True: a process that exits is started
again after ``restart_delay`` s, like systemd's Restart=always), ``restart_delay`` (1.0),
``extra_env`` (dict added to every stack process's environment), ``keep_database``, ``quiet``.

Processes: ``names()``, ``pid(name)``, ``kill(name, sig=SIGKILL, restart=None)`` (restart None
follows ``auto_restart``; False keeps it down), ``stop_process(name)`` (graceful, stays down),
``start_process(name)``, ``restart(name)`` (graceful stop, then start), ``restarts(name)``,
``alive(name)``, ``rss()`` ({name: bytes}, a process plus its children, e.g. Celery's pool).

Faults and load: ``drop_source_connections(mode="close"|"abort")``,
``webhook_status(status, seconds)``, ``feed_stats()``.

Records: ``feed_record()``, ``deliveries()``, ``dashboard_messages()`` (lists of dicts, see
bench/stack_peers.py), ``emitted_whales()``.

Checks: ``check_whales()``, ``check_webhooks()``, ``check_dashboard()`` each return a ``Check``
(``ok``, ``problems`` list of strings, ``figures`` dict); ``check(settle=...)`` waits up to
``settle`` seconds for the stack to catch up and then runs all three (their figures merged).
``wait_for_whales(n, timeout)`` waits until n whales the feed sent are in PostgreSQL.
``psql(sql, params)`` runs a query on the stack's database. ``seen_latencies()`` gives, per
whale's first live "seen" push, receipt − ingest frame receipt and receipt − feed send (s).
Run checks before ``stop()``: it drops a scratch database. A whale only counts as sent when the
feed had a tracking connection at that moment (a whale born while the ingest was disconnected
is invisible to it, as on mempool.space); after a reconnect the feed answers ``track-txs`` from
its own record (confirmed / replacedBy / still pending).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

STACK_READY = True

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ALERT_KINDS = ("seen", "replaced", "confirmed", "dropped", "reorged")
# The lifecycle's grace before a removed whale counts as dropped (WhaleTracker.removal_grace_s).
DROP_GRACE_S = 10.0
_scratch_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    facts = []
    with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):  # a line being written is not a fact yet
                facts.append(json.loads(line))
    return facts


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# The watcher's webhook endpoint (Stack(watch_addresses=...)).
WATCH_PATH = "/hook/watch"


@dataclass
class Check:
    name: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)

    def merge(self, other: Check) -> None:
        self.ok = self.ok and other.ok
        self.problems += [f"{other.name}: {p}" for p in other.problems]
        self.figures.update(other.figures)


class Proc:
    """One supervised process: its command, its log, and whether it is meant to be up."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, ready):
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.ready = ready  # callable -> bool, or None
        self.popen: subprocess.Popen | None = None
        self.wanted = False  # the supervisor restarts a wanted process that exited
        self.restarts = 0
        self.extra_starts = 0  # start_process() calls after the first start
        self.exits: list[tuple[float, int]] = []

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
            # Own session: a stop can clean up the whole group (Celery's pool children) the
            # way systemd's KillMode=mixed cleans up a unit's cgroup.
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wanted = True

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.ready is not None:
            deadline = time.time() + timeout
            while not self.ready():
                if self.popen.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start; see {self.log}")
                if time.time() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log}")
                time.sleep(0.1)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def reap(self, timeout: float) -> None:
        """Wait for the main process, then kill what is left of its group (pool children)."""
        if self.popen is None:
            return
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            code = self.popen.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.exits.append((time.time(), code))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        self.wanted = False
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
        self.reap(timeout)


class Stack:
    def __init__(
        self,
        *,
        database_url: str | None = None,
        workdir: str | os.PathLike | None = None,
        seed: int = 1,
        tx_per_s: float = 7.0,
        whale_every_s: float = 1.0,
        block_interval: float = 600.0,
        subscribers: int = 2,
        watch_addresses: list[str] | tuple[str, ...] = (),
        workers: int = 1,
        concurrency: int = 2,
        auto_restart: bool = True,
        restart_delay: float = 1.0,
        extra_env: dict[str, str] | None = None,
        keep_database: bool = False,
        quiet: bool = False,
    ):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="whalewatch-stack-"))
        self.logs = self.workdir / "logs"
        self.seed = seed
        self.tx_per_s = tx_per_s
        self.whale_every_s = whale_every_s
        self.block_interval = block_interval
        self.subscribers = subscribers
        self.watch_addresses = list(watch_addresses)
        self.watch_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.workers = workers
        self.concurrency = concurrency
        self.auto_restart = auto_restart
        self.restart_delay = restart_delay
        self.extra_env = dict(extra_env or {})
        self.keep_database = keep_database
        self.quiet = quiet

        parts = urlsplit(database_url or "postgres://postgres@127.0.0.1:5432")
        name = parts.path.lstrip("/")
        self._server_parts = parts
        self.database_name = name or f"whalewatch_stack_{os.getpid()}_{next(_scratch_numbers)}"
        self.database_url = urlunsplit(parts._replace(path="/" + self.database_name))
        self._created_database = False

        self.ports = {
            "redis": free_port(),
            "web": free_port(),
            "feed": free_port(),
            "receiver": free_port(),
        }
        self.secrets = {
            f"/hook/{n}": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            for n in range(subscribers)
        }
        self.records = {
            "feed": self.workdir / "feed.jsonl",
            "receiver": self.workdir / "deliveries.jsonl",
            "dashboard": self.workdir / "dashboard.jsonl",
        }
        self.procs: dict[str, Proc] = {}
        self._lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self.started_at: float | None = None

    # -- environment ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment of every stack process: built from scratch so that nothing of the
        caller's (a pytest run's REDIS_URL, say) leaks in."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        var = self.workdir / "var"
        env.update(
            DJANGO_SETTINGS_MODULE="whaleproject.settings",
            PYTHONUNBUFFERED="1",
            DATABASE_URL=self.database_url,
            DATABASE_APPLICATION_NAME="whalewatch-stack",
            REDIS_URL=f"redis://127.0.0.1:{self.ports['redis']}/0",
            REDIS_KEY_PREFIX="whalewatch-stack",
            SECRET_KEY="stack-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
            DEBUG="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SITE_URL=f"http://127.0.0.1:{self.ports['web']}",
            ALLOW_INSECURE_HTTP="true",
            WHALE_SOURCE=f"ws://127.0.0.1:{self.ports['feed']}/api/v1/ws",
            WHALE_VAR_DIR=str(var),
            STATIC_ROOT=str(var / "static"),
            WHALE_INGEST_METRICS_PORT="0",
            WHALE_OUTBOUND_ALLOW_LOOPBACK="true",
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            LOG_FORMAT="plain",
            LOG_LEVEL="INFO",
        )
        env.update(self.extra_env)
        return env

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"[stack {time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- database -------------------------------------------------------------------------------

    def _admin_conninfo(self) -> str:
        return urlunsplit(self._server_parts._replace(path="/postgres"))

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self._admin_conninfo(), autocommit=True) as db:
            exists = db.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database_name,)
            ).fetchone()
            if not exists:
                db.execute(f'CREATE DATABASE "{self.database_name}"')
                self._created_database = True

    def _drop_database(self) -> None:
        import psycopg

        if not self._created_database or self.keep_database:
            return
        with psycopg.connect(self._admin_conninfo(), autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        self._created_database = False

    def psql(self, sql: str, params: tuple | dict | None = None) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url, connect_timeout=5) as db:
            return db.execute(sql, params).fetchall()

    def _manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(VENV_BIN / "python"), *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    # -- processes ------------------------------------------------------------------------------

    def _define(self) -> None:
        env = self.env()
        py = str(VENV_BIN / "python")
        log = self.logs

        def worker_ready(path: Path):
            def ready() -> bool:
                with contextlib.suppress(FileNotFoundError):
                    return path.read_text(errors="replace").count(" ready.") >= self._ready_count(
                        path
                    )
                return False

            return ready

        def add(name, argv, ready=None, proc_env=None):
            self.procs[name] = Proc(name, argv, proc_env or env, log / f"{name}.log", ready)

        add(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.ports["redis"]),
                "--bind",
                "127.0.0.1",
                # As docs/OPERATIONS.md configures production: queued tasks survive a restart.
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.workdir),
            ],
            ready=lambda: port_open(self.ports["redis"]),
        )
        peers = [py, "-m", "bench.stack_peers"]
        add(
            "feed",
            [
                *peers,
                "feed",
                "--port",
                str(self.ports["feed"]),
                "--record",
                str(self.records["feed"]),
                "--seed",
                str(self.seed),
                "--tx-per-s",
                str(self.tx_per_s),
                "--whale-every-s",
                str(self.whale_every_s),
                "--block-interval",
                str(self.block_interval),
            ],
            ready=lambda: port_open(self.ports["feed"]),
        )
        add(
            "receiver",
            [
                *peers,
                "receiver",
                "--port",
                str(self.ports["receiver"]),
                "--secrets",
                str(self.workdir / "secrets.json"),
                "--record",
                str(self.records["receiver"]),
            ],
            ready=lambda: port_open(self.ports["receiver"]),
        )
        add(
            "web",
            [
                str(VENV_BIN / "daphne"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.ports["web"]),
                "--proxy-headers",
                "--application-close-timeout",
                "10",
                "--websocket_timeout",
                "86400",
                "whaleproject.asgi:application",
            ],
            ready=lambda: port_open(self.ports["web"]),
        )
        for number in range(1, self.workers + 1):
            name = "worker" if number == 1 else f"worker-{number}"
            add(
                name,
                [
                    str(VENV_BIN / "celery"),
                    "-A",
                    "whaleproject",
                    "worker",
                    "--loglevel=INFO",
                    f"--concurrency={self.concurrency}",
                    f"--hostname={name}-{os.getpid()}@%h",
                ],
                ready=worker_ready(log / f"{name}.log"),
            )
        add(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "whaleproject",
                "beat",
                "--loglevel=INFO",
                f"--schedule={self.workdir / 'var' / 'celerybeat-schedule'}",
            ],
        )
        add(
            "ingest",
            [py, "manage.py", "ingest_mempool"],
            ready=lambda: self.feed_stats().get("tracking", 0) >= 1,
        )

    def _ready_count(self, path: Path) -> int:
        """How many ' ready.' lines a worker's log must hold: one per start so far."""
        proc = next(p for p in self.procs.values() if p.log == path)
        return proc.restarts + 1 + proc.extra_starts

    def start(self) -> Stack:
        self.started_at = time.time()
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.workdir / "var").mkdir(exist_ok=True)
        (self.workdir / "secrets.json").write_text(
            json.dumps({**self.secrets, WATCH_PATH: self.watch_secret})
        )
        self._say(f"work directory {self.workdir} (logs in {self.logs})")
        try:
            self._create_database()
            self._say(f"database {self.database_name}; migrating")
            self._define()
            self.procs["redis"].start()
            # Migrations and the users in one interpreter: each Django start-up costs seconds
            # on a loaded machine.
            out = self._manage(
                "-m",
                "bench.stack_peers",
                "setup",
                "--migrate",
                "--spec",
                json.dumps(
                    {
                        "endpoints": self.secrets,
                        "hook_base": f"http://127.0.0.1:{self.ports['receiver']}",
                        "watch": {
                            "path": WATCH_PATH,
                            "secret": self.watch_secret,
                            "addresses": self.watch_addresses,
                        },
                    }
                ),
            )
            cookie = json.loads(out.strip().splitlines()[-1])["cookie"]
            self.procs["dashboard"] = Proc(
                "dashboard",
                [
                    str(VENV_BIN / "python"),
                    "-m",
                    "bench.stack_peers",
                    "dashboard",
                    "--url",
                    f"ws://127.0.0.1:{self.ports['web']}/ws/whales/",
                    "--cookie",
                    cookie,
                    "--record",
                    str(self.records["dashboard"]),
                ],
                self.env(),
                self.logs / "dashboard.log",
                self._dashboard_ready,
            )
            # Everything but the ingest starts at once (start-up is mostly imports, which the
            # two CPUs can overlap); the ingest comes last so that its first connection finds
            # the feed listening instead of backing off. The dashboard client retries until
            # Daphne answers.
            batch = [n for n in self.names() if n not in ("redis", "ingest")]
            with self._lock:
                for name in batch:
                    self.procs[name].spawn()
                for name in batch:
                    self.procs[name].wait_ready(120)
            self._start("ingest")
        except BaseException:
            self.stop()
            raise
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        self._say(
            "up: "
            + ", ".join(f"{n} pid {p.popen.pid}" for n, p in self.procs.items() if p.popen)
            + f"; web http://127.0.0.1:{self.ports['web']}"
        )
        return self

    def _dashboard_ready(self) -> bool:
        return any(m["type"] == "snapshot" for m in self.dashboard_messages())

    def _start(self, name: str) -> None:
        with self._lock:
            self.procs[name].start()

    def names(self) -> list[str]:
        return list(self.procs)

    def _supervise(self) -> None:
        died_at: dict[str, float] = {}
        while not self._stopping.is_set():
            with self._lock:
                for name, proc in self.procs.items():
                    if not proc.wanted or proc.alive() or proc.popen is None:
                        died_at.pop(name, None)
                        continue
                    if name not in died_at:
                        code = proc.popen.returncode
                        proc.reap(1.0)
                        died_at[name] = time.time()
                        self._say(f"{name} exited ({code}); restarting in {self.restart_delay} s")
                        if not self.auto_restart:
                            proc.wanted = False
                        continue
                    if time.time() - died_at[name] >= self.restart_delay:
                        died_at.pop(name)
                        proc.restarts += 1
                        try:
                            proc.start()
                            self._say(f"{name} restarted (pid {proc.popen.pid})")
                        except RuntimeError as exc:
                            self._say(f"{name} restart failed: {exc}")
            self._stopping.wait(0.2)

    def pid(self, name: str) -> int | None:
        proc = self.procs[name]
        return proc.popen.pid if proc.alive() else None

    def alive(self, name: str) -> bool:
        return self.procs[name].alive()

    def restarts(self, name: str) -> int:
        return self.procs[name].restarts

    def kill(self, name: str, sig: int = signal.SIGKILL, restart: bool | None = None) -> None:
        """Signal a process and wait for it to exit; it comes back after restart_delay when
        ``restart`` (default: auto_restart) is true, else it stays down."""
        proc = self.procs[name]
        with self._lock:
            if restart is False or (restart is None and not self.auto_restart):
                proc.wanted = False
            proc.send(sig)
        self._say(f"sent signal {signal.Signals(sig).name} to {name}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=60)

    def stop_process(self, name: str, timeout: float = 30.0) -> None:
        """Graceful stop (the systemd unit's KillSignal); the process stays down."""
        graceful = signal.SIGINT if name == "ingest" else signal.SIGTERM
        with self._lock:
            self.procs[name].stop(graceful, timeout)

    def start_process(self, name: str) -> None:
        with self._lock:
            proc = self.procs[name]
            if proc.alive():
                return
            proc.extra_starts += 1
            proc.start()

    def restart(self, name: str) -> None:
        self.stop_process(name)
        self.start_process(name)

    def rss(self) -> dict[str, int]:
        """Resident memory per process, children included (Celery's pool), in bytes."""
        import psutil

        sizes = {}
        for name, proc in self.procs.items():
            if not proc.alive():
                continue
            try:
                root = psutil.Process(proc.popen.pid)
                family = [root, *root.children(recursive=True)]
                sizes[name] = sum(p.memory_info().rss for p in family if p.is_running())
            except psutil.Error:
                continue
        return sizes

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        # The ingest first (SIGINT: it flushes its buffered events to the broker), then every
        # other process at once, Redis last so that nothing loses its broker mid-shutdown.
        waves = [["ingest"], [n for n in self.procs if n not in ("ingest", "redis")], ["redis"]]
        for wave in waves:
            procs = [self.procs[n] for n in wave if n in self.procs]
            for proc in procs:
                proc.wanted = False
                graceful = signal.SIGINT if proc.name == "ingest" else signal.SIGTERM
                with contextlib.suppress(Exception):
                    proc.send(graceful)
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.reap(timeout=20)
        with contextlib.suppress(Exception):
            self._drop_database()
        self._say(f"stopped; logs kept in {self.logs}")

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------------

    def _control(self, port: int, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - our own peer
            return json.loads(answer.read() or b"{}")

    def feed_stats(self) -> dict:
        try:
            return self._control(self.ports["feed"], "/control/stats")
        except OSError:
            return {}

    def drop_source_connections(self, mode: str = "close") -> int:
        """Close (or, with mode="abort", cut like a network fault) the ingest's feed sockets."""
        return self._control(self.ports["feed"], f"/control/drop?mode={mode}")["dropped"]

    def webhook_status(self, status: int, seconds: float) -> None:
        """The receiver answers ``status`` to every webhook for ``seconds``, then 204 again."""
        self._control(
            self.ports["receiver"], "/control/status", {"status": status, "seconds": seconds}
        )

    # -- records --------------------------------------------------------------------------------

    def feed_record(self) -> list[dict[str, Any]]:
        return read_jsonl(self.records["feed"])

    def deliveries(self) -> list[dict[str, Any]]:
        return read_jsonl(self.records["receiver"])

    def dashboard_messages(self) -> list[dict[str, Any]]:
        return read_jsonl(self.records["dashboard"])

    def emitted_whales(self) -> dict[str, dict[str, Any]]:
        """Every txid the feed tracked (whales and their replacements), with its fate:
        {"role", "added_at", "sent" (a client got the "added"), "state", "by", "height",
        "fate_sent" (a client got the last fate), "fate_at"}."""
        whales: dict[str, dict[str, Any]] = {}
        for fact in self.feed_record():
            txid = fact["txid"]
            if fact["op"] == "added":
                whales[txid] = {
                    "role": fact["role"],
                    "added_at": fact["t"],
                    "sent": fact["clients"] > 0,
                    "state": "pending",
                    "fate_sent": fact["clients"] > 0,
                    "fate_at": fact["t"],
                }
            elif txid in whales:
                whale = whales[txid]
                whale.update(state=fact["op"], fate_sent=fact["clients"] > 0, fate_at=fact["t"])
                if "by" in fact:
                    whale["by"] = fact["by"]
                if "height" in fact:
                    whale["height"] = fact["height"]
        return whales

    def wait_for_whales(self, count: int, timeout: float = 60.0) -> int:
        deadline = time.time() + timeout
        while True:
            sent = [t for t, w in self.emitted_whales().items() if w["sent"]]
            found = 0
            if sent:
                found = self.psql(
                    "SELECT count(*) FROM detection_whaletransaction WHERE txid = ANY(%s)",
                    (sent,),
                )[0][0]
            if found >= count:
                return found
            if time.time() > deadline:
                raise TimeoutError(f"{found} of {count} whales in PostgreSQL after {timeout} s")
            time.sleep(0.2)

    # -- checks ---------------------------------------------------------------------------------

    def check_whales(self, *, before: float | None = None) -> Check:
        """Every whale the feed sent is in PostgreSQL once, with the lifecycle the feed gave it:
        pending, confirmed at the block's height, replaced by the replacing txid, or dropped.
        Whales the feed added after ``before`` (epoch) are not checked (still in flight)."""
        check = Check("whales")
        emitted = self.emitted_whales()
        rows = self.psql(
            "SELECT w.txid, w.status, w.confirmed_height, r.txid, w.first_seen_at "
            "FROM detection_whaletransaction w "
            "LEFT JOIN detection_whaletransaction r ON r.id = w.replaced_by_id "
            "WHERE NOT w.watch_only"
        )
        in_db = {row[0]: row for row in rows}
        events = self.psql(
            "SELECT w.txid, e.kind, count(*) FROM detection_whaleevent e "
            "JOIN detection_whaletransaction w ON w.id = e.whale_id GROUP BY 1, 2"
        )
        counts: dict[str, dict[str, int]] = {}
        for txid, kind, count in events:
            counts.setdefault(txid, {})[kind] = count
        now = time.time()
        expected = {
            t: w
            for t, w in emitted.items()
            if w["sent"] and (before is None or w["added_at"] <= before)
        }
        missing, wrong, duplicated = [], [], []
        for txid, whale in expected.items():
            row = in_db.get(txid)
            if row is None:
                missing.append(txid)
                continue
            _txid, status, height, replaced_by, _first = row
            state = whale["state"]
            settled = before is None or whale["fate_at"] <= before
            want = {
                "pending": "pending",
                "mined": "confirmed",
                "replaced": "replaced",
                "removed": "dropped",
            }[state]
            if state == "removed" and now - whale["fate_at"] < DROP_GRACE_S + 5:
                want = status if status in ("pending", "dropped") else "dropped"
            if not settled:
                want = status
            if status != want:
                wrong.append(f"{txid[:12]} {state} in the feed but {status} in PostgreSQL")
            elif state == "mined" and settled and whale["fate_sent"] and height != whale["height"]:
                wrong.append(f"{txid[:12]} mined at {whale['height']} but recorded at {height}")
            elif state == "replaced" and settled and replaced_by != whale.get("by"):
                wrong.append(
                    f"{txid[:12]} replaced by {whale.get('by', '')[:12]}, not {replaced_by}"
                )
            kinds = counts.get(txid, {})
            if whale["role"] == "whale" and kinds.get("seen", 0) != 1:
                duplicated.append(f"{txid[:12]} has {kinds.get('seen', 0)} 'seen' events")
            if kinds.get("confirmed", 0) - kinds.get("reorged", 0) > 1:
                duplicated.append(f"{txid[:12]} confirmed {kinds['confirmed']} times")
        unexpected = [
            t
            for t, row in in_db.items()
            if t not in emitted and (before is None or row[4].timestamp() <= before)
        ]
        check.figures.update(
            whales_emitted=sum(1 for w in emitted.values() if w["role"] == "whale"),
            whales_sent=sum(1 for w in emitted.values() if w["role"] == "whale" and w["sent"]),
            whales_checked=len(expected),
            whales_missing=len(missing),
            whales_wrong_lifecycle=len(wrong),
            whales_duplicated=len(duplicated),
            whales_unexpected=len(unexpected),
            whales_by_fate={
                s: sum(1 for w in expected.values() if w["state"] == s)
                for s in ("pending", "mined", "replaced", "removed")
            },
        )
        if missing:
            check.fail(f"{len(missing)} whales not in PostgreSQL, e.g. {missing[:3]}")
        for problem in wrong[:10]:
            check.fail(problem)
        if len(wrong) > 10:
            check.fail(f"... and {len(wrong) - 10} more with the wrong lifecycle")
        for problem in duplicated[:10]:
            check.fail(problem)
        if unexpected:
            check.fail(f"{len(unexpected)} whales in PostgreSQL the feed never sent")
        return check

    def _alert_events(self, before: float | None = None) -> dict[str, tuple[str, str]]:
        """uid -> (kind, txid) of every event that alerts (the webhook-id is the event's uid)."""
        rows = self.psql(
            "SELECT e.uid::text, e.kind, w.txid, e.created_at FROM detection_whaleevent e "
            "JOIN detection_whaletransaction w ON w.id = e.whale_id "
            "WHERE e.kind = ANY(%s) AND NOT w.watch_only",
            (list(ALERT_KINDS),),
        )
        return {
            uid: (kind, txid)
            for uid, kind, txid, created in rows
            if before is None or created.timestamp() <= before
        }

    def check_webhooks(self, *, before: float | None = None) -> Check:
        """Each subscription's endpoint got every alerting event, and no event twice.

        Two figures tell apart what the Standard Webhooks contract does (webhook-id is the
        idempotency key): a **duplicate event** is one step of one whale (its kind and the
        whale's txid, from the database) delivered to an endpoint under two different
        webhook-ids, which a receiver cannot tell apart, so it fails the check; a **re-delivery** is a second 2xx of the same webhook-id (a worker
        killed between the receiver's answer and its record sends it again: at least once),
        counted, not failed. (A whale confirmed again after a reorg would count as a
        duplicate event; the stack's feed makes no reorgs.)"""
        check = Check("webhooks")
        events = self._alert_events(before)
        received = self.deliveries()
        bad_signatures = [d for d in received if not d["verified"]]
        ok: dict[str, dict[str, int]] = {path: {} for path in self.secrets}
        every_event = self._alert_events()
        # (path, kind, the whale's txid) -> webhook-ids received for that step of that whale
        ids_per_event: dict[tuple[str, str, str], set[str]] = {}
        for delivery in received:
            # The watcher's endpoint (watch_addresses) gets watch hits, not every whale event.
            if delivery["path"] not in ok:
                continue
            if delivery["verified"] and 200 <= delivery["status"] < 300:
                per = ok[delivery["path"]]
                per[delivery["webhook_id"]] = per.get(delivery["webhook_id"], 0) + 1
                if delivery["webhook_id"] in every_event:
                    kind, txid = every_event[delivery["webhook_id"]]
                    ids_per_event.setdefault((delivery["path"], kind, txid), set()).add(
                        delivery["webhook_id"]
                    )
        missing = 0
        redeliveries = sum(n - 1 for per in ok.values() for n in per.values())
        duplicate_events = sum(len(ids) - 1 for ids in ids_per_event.values())
        for path, per in ok.items():
            lost = [uid for uid in events if uid not in per]
            missing += len(lost)
            if lost:
                sample = [f"{events[u][0]} {events[u][1][:12]}" for u in lost[:3]]
                check.fail(f"{path}: {len(lost)} events never delivered, e.g. {sample}")
        strangers = {uid for per in ok.values() for uid in per} - set(every_event)
        check.figures.update(
            webhook_events=len(events),
            webhook_endpoints=len(self.secrets),
            webhook_requests=len(received),
            webhook_failed_answers=sum(1 for d in received if not 200 <= d["status"] < 300),
            webhook_missing=missing,
            webhook_duplicate_events=duplicate_events,
            webhook_redeliveries=redeliveries,
            webhook_bad_signatures=len(bad_signatures),
        )
        if duplicate_events:
            check.fail(f"{duplicate_events} events delivered twice under different webhook-ids")
        if bad_signatures:
            check.fail(f"{len(bad_signatures)} requests failed signature verification")
        if strangers:
            check.fail(f"{len(strangers)} webhook-ids that match no event")
        return check

    def redeliveries(self) -> list[dict[str, Any]]:
        """Each repeated 2xx of a webhook-id at an endpoint: {"path", "webhook_id", "first",
        "again"} (receipt times of the first 2xx and of the repeat)."""
        first: dict[tuple[str, str], float] = {}
        repeats = []
        for delivery in sorted(self.deliveries(), key=lambda d: d["t"]):
            if not (delivery["verified"] and 200 <= delivery["status"] < 300):
                continue
            key = (delivery["path"], delivery["webhook_id"])
            if key in first:
                repeat = {"path": key[0], "webhook_id": key[1], "first": first[key]}
                repeats.append({**repeat, "again": delivery["t"]})
            else:
                first[key] = delivery["t"]
        return repeats

    def check_dashboard(self, *, before: float | None = None) -> Check:
        """The dashboard client got every whale the feed sent (a live "seen" push, or the
        snapshot after a reconnect), and each live "seen" push once."""
        check = Check("dashboard")
        expected = {
            t
            for t, w in self.emitted_whales().items()
            if w["sent"] and w["role"] == "whale" and (before is None or w["added_at"] <= before)
        }
        seen_counts: dict[str, int] = {}
        in_snapshots: set[str] = set()
        for message in self.dashboard_messages():
            if message["type"] == "whale.event" and message["kind"] == "seen":
                seen_counts[message["txid"]] = seen_counts.get(message["txid"], 0) + 1
            elif message["type"] == "snapshot":
                in_snapshots.update(message["txids"])
        missing = expected - set(seen_counts) - in_snapshots
        repeated = {t: n for t, n in seen_counts.items() if n > 1}
        check.figures.update(
            dashboard_expected=len(expected),
            dashboard_live=len(expected & set(seen_counts)),
            dashboard_missing=len(missing),
            dashboard_repeated=len(repeated),
        )
        if missing:
            check.fail(
                f"{len(missing)} whales never reached the dashboard, e.g. {sorted(missing)[:3]}"
            )
        if repeated:
            check.fail(f"{len(repeated)} whales pushed 'seen' more than once")
        return check

    def check(self, settle: float = 30.0, *, before: float | None = None) -> Check:
        """All checks, retried until they pass or ``settle`` seconds have passed (retries,
        drop grace and in-flight events need time). ``before`` defaults to now - 2 s: whales
        the feed added later are still in flight and not checked."""
        before = before if before is not None else time.time() - 2.0
        deadline = time.time() + settle
        while True:
            result = Check("stack")
            for part in (self.check_whales, self.check_webhooks, self.check_dashboard):
                result.merge(part(before=before))
            if result.ok or time.time() >= deadline:
                return result
            time.sleep(1.0)

    # -- latency --------------------------------------------------------------------------------

    def seen_latencies(self) -> dict[str, list[float]]:
        """Per live "seen" push: receipt − frame received by ingest, and receipt − feed send
        (seconds), first receipt per txid."""
        added = {t: w["added_at"] for t, w in self.emitted_whales().items()}
        first: dict[str, dict] = {}
        for message in self.dashboard_messages():
            if message["type"] == "whale.event" and message["kind"] == "seen":
                first.setdefault(message["txid"], message)
        from_ingest, from_feed = [], []
        for txid, message in first.items():
            if message.get("frame_received_at"):
                received = datetime.fromisoformat(message["frame_received_at"]).timestamp()
                from_ingest.append(message["t"] - received)
            if txid in added:
                from_feed.append(message["t"] - added[txid])
        return {"ingest_to_receipt": from_ingest, "feed_to_receipt": from_feed}
