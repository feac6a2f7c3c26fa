"""Each pytest-xdist worker (`make test` runs several) gets Redis, a key prefix and a var directory
of its own; pytest-django already gives each one its own test database (``<name>_gw0``, ...).

The worker's variables are derived from the configured ones (pyproject's pytest env, or the
environment, which wins) and written back to the environment before Django reads its settings,
so the settings hold no test code and every process a test starts (Celery workers, the ingest,
Daphne) inherits them. pyproject loads this module with ``-p``: a plugin named there registers
before pytest-env and pytest-django, so this hook (tryfirst, like pytest-env's) runs after
pytest-env has filled in the defaults and before pytest-django loads the settings.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

import pytest

# redis.conf's default `databases`: the workers' databases must all exist.
REDIS_DATABASES = 16


def redis_url_for_worker(url: str, index: int, workers: int) -> str:
    """The worker's own database: the configured one plus the worker's number, so flushing it at
    the start of the session wipes no other worker's (nor another checkout's) keys."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise pytest.UsageError(
            f"REDIS_URL={url!r}: parallel tests need a redis:// URL with a database number "
            "(or run pytest with -n 0)"
        )
    base = int(parts.path.strip("/") or 0)
    if base + workers > REDIS_DATABASES:
        raise pytest.UsageError(
            f"REDIS_URL={url!r}: {workers} test workers use databases {base}.."
            f"{base + workers - 1}, beyond Redis's {REDIS_DATABASES}; choose a lower database "
            "or fewer workers (-n)"
        )
    return urlunsplit(parts._replace(path=f"/{base + index}"))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # set by pytest-xdist in each worker only
    if not worker:
        return
    if "REDIS_URL" not in os.environ:
        raise pytest.UsageError("tests.worker_isolation ran before pytest-env set REDIS_URL")
    index = int(worker.removeprefix("gw"))
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if name in os.environ:
            os.environ[name] = redis_url_for_worker(os.environ[name], index, workers)
    os.environ["REDIS_KEY_PREFIX"] = f"{os.environ['REDIS_KEY_PREFIX']}-{worker}"
    os.environ["WHALE_VAR_DIR"] = os.path.join(os.environ["WHALE_VAR_DIR"], worker)


# Tests that time themselves against a promise made for an idle machine (the demo's "under 10 s",
# "within 15 s") run alone: while one runs, the other workers wait between tests. Two flock()s
# in a folder of this run's own: every test passes the turnstile and then shares the room; an
# `alone` test keeps the turnstile, so no new test starts, and waits to have the room to itself.
# The wait happens around each test's protocol, outside its setup, so --durations shows none.
_run_locks = pytest.StashKey[tuple[int, int] | None]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "alone: times itself, so runs while no other test runs (pytest-xdist)"
    )
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None or "PYTEST_XDIST_WORKER" not in os.environ:
        config.stash[_run_locks] = None
        return
    folder = os.path.join(tempfile.gettempdir(), f"whalewatch-tests-{run}")
    os.makedirs(folder, exist_ok=True)
    config.stash[_run_locks] = (
        os.open(os.path.join(folder, "turnstile"), os.O_RDWR | os.O_CREAT, 0o600),
        os.open(os.path.join(folder, "room"), os.O_RDWR | os.O_CREAT, 0o600),
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    locks = item.config.stash.get(_run_locks, None)
    if locks is None:
        return (yield)
    turnstile, room = locks
    alone = item.get_closest_marker("alone") is not None
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    try:
        fcntl.flock(room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    finally:
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        return (yield)
    finally:
        fcntl.flock(room, fcntl.LOCK_UN)
        if alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
