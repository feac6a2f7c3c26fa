"""A fresh demo in a real browser: the history loads, and within 15 s the demo login sees 200+
whales, every flow class in the feed and stats charts with data. Daphne runs as a subprocess on
the test database; Debian's Chromium draws the pages."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack

import pytest
from django.core.management import call_command

from detection.models import Flow
from tests.conftest import closed_port
from tests.dashboard.test_e2e_browser import (
    BIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    process,
    subprocess_env,
    wait_for_http,
    wait_for_worker,
)

DEMO_RECORDING = ROOT / "detection" / "fixtures" / "demo.jsonl.gz"
FIRST_LIVE_WHALE = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"  # t = 14 s

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.alone,  # times itself
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
]


def test_fresh_demo_tells_the_story_within_15_seconds(transactional_db, monkeypatch):
    playwright_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    env = subprocess_env()
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    with process(
        "daphne-demo",
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "whaleproject.asgi:application"],
        env,
    ):
        wait_for_http(f"{base}/accounts/login/")
        started = time.monotonic()  # "make demo": the history, the login, then the pages
        call_command("create_demo_user")
        call_command("load_demo_history")
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
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
            for flow in Flow.values:
                page.goto(f"{base}/?flow={flow}")
                rows = page.locator("#pending-rows tr, #recent-rows tr").count()
                assert rows > 0, f"no {flow} whale in the feed"

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
            elapsed = time.monotonic() - started
            assert elapsed < 15, f"the story took {elapsed:.1f} s"

            # Then the replay continues the chain: a live whale arrives without a reload.
            page.goto(f"{base}/")
            page.evaluate("window.__sameDocument = true")
            with ExitStack() as stack:
                stack.enter_context(process("worker-demo", worker_args(), env))
                wait_for_worker(env)
                stack.enter_context(process("ingest-demo", ingest_args(), env))
                row = page.locator(f'#pending-rows tr[data-chain="{FIRST_LIVE_WHALE}"]')
                playwright_api.expect(row).to_be_visible(timeout=60_000)
                assert page.evaluate("window.__sameDocument") is True
                assert "538 d" not in page.inner_text("#feed")
            browser.close()


def worker_args() -> list[str]:
    name = f"demo-browser-{os.getpid()}@%h"
    return [str(BIN / "celery"), "-A", "whaleproject", "worker", "--pool", "solo", "-n", name]


def ingest_args() -> list[str]:
    source = f"replay:{DEMO_RECORDING}?speed=2&retime=1"
    return [
        sys.executable,
        "manage.py",
        "ingest_mempool",
        "--source",
        source,
        "--max-seconds",
        "90",
    ]
