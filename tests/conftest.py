import os
import socket
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from channels.layers import channel_layers
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from hypothesis import HealthCheck, settings

from whaleproject.celery import app
from whaleproject.health import forget_anonymous_result
from whaleproject.redis_client import get_redis

# "ci" (the default) keeps property tests small and repeatable: the same examples on every run,
# no per-example deadline (a loaded 2-core CI host would make timings flaky). "fuzz" is the long
# random search behind `make fuzz`. Tests that pin max_examples themselves keep their own figure.
settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def collected_static():
    """Pages use the production (manifest) static storage, so page tests collect like a deploy."""
    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture(scope="session")
def clean_test_redis():
    """The suite owns its Redis database (REDIS_URL in pyproject's pytest env); start it empty."""
    get_redis().flushdb()
    yield


# Tests that render a page (Django's test clients, the API clients, real Daphne or browser
# processes) need the collected static manifest; pure computation needs neither it nor Redis.
PAGE_FIXTURES = {"client", "async_client", "admin_client", "live_server", "client_for", "api"}
PAGE_FOLDERS = ("dashboard", "faults", "ops")
PURE_FOLDERS = ("domain",)


# Last, after pytest-django's ordering (database tests before transactional ones), which would
# otherwise put every slow test (all transactional) at the end.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    tests_root = Path(__file__).resolve().parent
    for item in items:
        if not Path(item.path).resolve().is_relative_to(tests_root):
            continue  # bench/tests: the benchmarks' own tests, outside this conftest
        folder = Path(item.path).resolve().relative_to(tests_root).parts[0]
        if folder not in PURE_FOLDERS:
            item.fixturenames.insert(0, "clean_test_redis")
        if folder in PAGE_FOLDERS or PAGE_FIXTURES & set(item.fixturenames):
            item.fixturenames.insert(0, "collected_static")
    # Slow tests first: pytest-xdist (`make test`) then deals them out over its workers at the
    # start while the fast ones fill the gaps, instead of leaving one worker a slow tail. Tests
    # that run alone (tests/worker_isolation.py) come last, when nothing slow is left to wait for.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("alone") is not None,
            item.get_closest_marker("slow") is None,
        )
    )


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A channel layer per test, for every test that opens a socket (dashboard, watchlist,
    security). channels-redis keeps receive locks on the layer object, and each async test runs
    its own event loop: a lock left held by a finished test's loop would block the next test's
    receive (Daphne runs one loop, so production has no such sharing)."""
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters live in the cache; one test's attempts must not throttle the next.
    cache.clear()
    forget_anonymous_result()  # one test's cached health answer must not leak into the next
    yield


@pytest.fixture
def password():
    return "correct horse battery staple 42"


@pytest.fixture
def alice(db, password):
    return get_user_model().objects.create_user("alice", "alice@example.org", password)


@pytest.fixture
def bob(db, password):
    return get_user_model().objects.create_user("bob", "bob@example.org", password)


@pytest.fixture
def staff(db, password):
    return get_user_model().objects.create_user(
        "charlie", "charlie@example.org", password, is_staff=True, is_superuser=True
    )


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker thread consuming from the real Redis broker (not eager mode)."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
