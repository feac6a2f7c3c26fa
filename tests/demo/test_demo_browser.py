"""A fresh `make demo` in a real browser: the test starts `make demo` itself, as a newcomer
would, and within 15 s of that start the demo login sees 200+ whales, every flow class in the
feed and stats charts with data; then a live whale arrives without a reload. Ctrl-C (SIGINT to
make's process group) must then stop every process the demo started.

The run is set apart from the suite and from a developer's own demo: a fresh WHALE_VAR_DIR (so
the fresh SQLite database of a new clone), free ports for the web and the webhook receiver, the
ingest metrics off, and its own Redis key prefix. The clock includes the prepare steps
(migrations on the empty database, collectstatic, pool labels) but not `make install`: the venv
this test runs in is installed already, and `--assume-old` keeps make from reinstalling it
(the stamp may be older than a fresh checkout's pyproject.toml). Debian's Chromium draws the
pages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest
from django.conf import settings

from detection.models import Flow
from tests.conftest import closed_port
from tests.dashboard.test_e2e_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT
from whaleproject.redis_client import get_redis

FIRST_LIVE_WHALE = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"  # t = 14 s
STORY_SECONDS = 15
# What a developer's shell passes to make; the suite's own settings (DATABASE_URL, DEBUG=false,
# SITE_URL…) are not handed on, so the demo runs on its defaults like on a new clone.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.alone,  # times itself
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
]


def test_fresh_make_demo_tells_the_story_within_15_seconds(tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    prefix = f"{settings.REDIS_KEY_PREFIX}-demo-{os.getpid()}"
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        PORT=str(port),
        DEMO_RECEIVER_PORT=str(closed_port()),
        WHALE_VAR_DIR=str(tmp_path / "var"),
        REDIS_URL=settings.REDIS_URL,
        REDIS_KEY_PREFIX=prefix,
        WHALE_INGEST_METRICS_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The newcomer's browser is open before they type `make demo`: it starts before the clock.
    with (
        playwright_api.sync_playwright() as playwright,
        (ARTIFACTS / "make-demo.log").open("w") as log,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        started = time.monotonic()
        make = subprocess.Popen(
            ["make", "--assume-old=.venv/.installed", "demo"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as in a terminal
        )
        started_processes: list[tuple[int, str]] = []
        try:
            wait_for_http(f"{base}/accounts/login/", make)
            served = time.monotonic() - started
            check_the_story(page, base)
            elapsed = time.monotonic() - started
            # The steps' times are in make-demo.log ("Demo prepared: …"); a busy machine (the
            # load average) explains a slow run.
            timing = (
                f"the story was on screen {elapsed:.1f} s after make demo started (login page "
                f"served at {served:.1f} s; load average {os.getloadavg()[0]:.1f})"
            )
            print(timing)
            assert elapsed < STORY_SECONDS, timing

            # Then the replay continues the chain: a live whale arrives without a reload.
            page.goto(f"{base}/")
            page.evaluate("window.__sameDocument = true")
            row = page.locator(f'#pending-rows tr[data-chain="{FIRST_LIVE_WHALE}"]')
            playwright_api.expect(row).to_be_visible(timeout=60_000)
            assert page.evaluate("window.__sameDocument") is True
            assert "538 d" not in page.inner_text("#feed")
            started_processes = descendants(make.pid)
            assert set(NAMES) <= {
                name for _, args in started_processes for name in NAMES if name in args
            }, started_processes
        finally:
            browser.close()
            started_processes = started_processes or descendants(make.pid)
            stopped_cleanly = stop(make, started_processes)
            for key in get_redis().scan_iter(f"{prefix}:*"):
                get_redis().delete(key)
    assert stopped_cleanly, (
        "Ctrl-C left processes behind (killed): see tests/artifacts/make-demo.log"
    )
    # make stops on the interrupt like in a terminal: killed by SIGINT, or reporting it.
    assert make.returncode in (-signal.SIGINT, 2, 130), make.returncode
    assert not alive(started_processes), alive(started_processes)


NAMES = ("honcho", "daphne", "celery", "ingest_mempool", "demo_webhook_receiver")


def check_the_story(page, base: str) -> None:
    # The rows are in the HTML: a page is read once its document is in, not its last image.
    page.goto(f"{base}/accounts/login/?next=/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("whalewatch-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")
    assert page.locator("#pending-rows tr").count() > 0
    assert page.locator("#recent-rows tr").count() > 0

    whales, url = 0, f"{base}/api/v1/whales/?page_size=100"
    while url and whales < 200:  # the history, through the API the pages use
        listing = page.request.get(url).json()
        whales += len(listing["results"])
        url = listing.get("next")
    assert whales >= 200, listing
    for flow in Flow.values:  # the feed's flow filter is the API's (tests/dashboard)
        listing = page.request.get(f"{base}/api/v1/whales/?flow={flow}&page_size=1").json()
        assert [w["flow"] for w in listing["results"]] == [flow], f"no {flow} whale"

    page.goto(f"{base}/stats/")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-volume')")
    totals = page.evaluate(
        """() => ["chart-volume", "chart-flows", "chart-urgency"].map((id) => {
            const chart = Chart.getChart(id);
            return chart.data.datasets.reduce(
                (sum, d) => sum + d.data.reduce((s, v) => s + Math.abs(v || 0), 0), 0);
        })"""
    )
    assert all(total > 0 for total in totals), totals


def wait_for_http(url: str, make: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if make.poll() is not None:
            raise AssertionError(f"make demo exited ({make.returncode}): see make-demo.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up; see tests/artifacts/make-demo.log")


def process_table() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, "start time + command line"), as ps prints them."""
    listing = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,lstart=,args="], capture_output=True, text=True, check=True
    ).stdout
    table = {}
    for line in listing.splitlines():
        pid, ppid, rest = line.split(None, 2)
        table[int(pid)] = (int(ppid), rest)
    return table


def descendants(root: int) -> list[tuple[int, str]]:
    """Every process below make: honcho starts each Procfile line in a session of its own, so
    only the parent links find them all."""
    table = process_table()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, identity) in table.items():
            if ppid == parent:
                found.append((pid, identity))
                frontier.append(pid)
    return found


def alive(processes: list[tuple[int, str]]) -> list[tuple[int, str]]:
    table = process_table()
    # The same pid with the same start time and command line: not a reused pid.
    return [
        (pid, identity) for pid, identity in processes if table.get(pid, (0, ""))[1] == identity
    ]


def stop(make: subprocess.Popen, processes: list[tuple[int, str]]) -> bool:
    """Ctrl-C, as a developer stops the demo; True when everything stopped within 30 s."""
    if make.poll() is None:
        os.killpg(make.pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (make.poll() is None or alive(processes)):
        time.sleep(0.2)
    left = alive(processes)
    for pid, _ in left:  # only processes this test started
        os.kill(pid, signal.SIGKILL)
    if make.poll() is None:
        os.killpg(make.pid, signal.SIGKILL)
        make.wait(timeout=5)
    return not left
