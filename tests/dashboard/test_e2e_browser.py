"""End to end in a real browser: replayed mempool frames → ingest → Celery → PostgreSQL →
channels-redis → Daphne → Chromium. Nothing is mocked; every process is a real subprocess.

Needs Debian's Chromium (`apt-get install -y chromium`) and the `playwright` Python package; the
bundled Playwright browsers are not used. Screenshots go to tests/artifacts/; with
UPDATE_DOCS_SCREENSHOT=1 the live feed's is also copied to docs/img/dashboard.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import closed_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent

# The recording: the tip and projected blocks, three whales, then the block that mines the first.
WHALE_AT, OTHERS_AT, BLOCK_AT, QUIET_UNTIL = 2.0, 3.5, 9.0, 150.0
BLOCK_890448 = {
    "id": "000000000000000000019bfe551da67e0d93dda4b355d16f1fdb4031ba7e5d61",
    "height": 890_448,
    "timestamp": 1_743_541_850,
    "previousblockhash": "0000000000000000000004cc6260ec7065ee8f65591864fb4c720ec110e3e2ab",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def fixture_whales() -> list[dict]:
    txs = json.loads((FIXTURES / "blocks" / "whales_block_277647.esplora_txs.json").read_text())
    unconfirmed = []
    for tx, fee in zip(txs, (50_000, 450, 0), strict=True):
        # A spread of fee rates against the recording's mempool-blocks: high, medium, low urgency.
        unconfirmed.append(dict(tx, fee=fee, status={"confirmed": False}))
    return unconfirmed


def mempool_frame(sequence: int, *, added=(), mined=()) -> dict:
    return {
        "mempool-transactions": {
            "sequence": sequence,
            "added": list(added),
            "removed": [],
            "mined": list(mined),
            "replaced": [],
        }
    }


def write_recording(path: Path, whales: list[dict]) -> Path:
    first, *others = whales
    tip = json.loads((FIXTURES / "mempool" / "tx01_ws_blocks_01.json").read_text())
    frames = [
        (0.0, tip),  # `blocks` (tip 890447) and `mempool-blocks`
        # fiat prices, as mempool.space sends them (its real init data of 2024-03-31)
        (0.5, {"conversions": {"time": 1_711_854_906, "USD": 69_880, "EUR": 64_823}}),
        (WHALE_AT, mempool_frame(1, added=[first])),
        (OTHERS_AT, mempool_frame(2, added=others)),
        (BLOCK_AT, {"block": BLOCK_890448, **mempool_frame(3, mined=[first["txid"]])}),
        # A quiet tail keeps the replay "connected" while the browser goes on; the test stops
        # the ingest long before it ends.
        (QUIET_UNTIL, mempool_frame(4)),
    ]
    with path.open("w") as out:
        for t, frame in frames:
            out.write(json.dumps({"t": t, "msg": frame}) + "\n")
    return path


def label_whales(whales: list[dict]) -> None:
    from detection.models import AddressLabel

    def label(address, entity):
        AddressLabel.objects.create(address=address, entity=entity, kind="exchange", source="e2e")

    inflow, outflow, between = whales
    for out in inflow["vout"]:
        label(out["scriptpubkey_address"], "Binance")
    label(outflow["vin"][0]["prevout"]["scriptpubkey_address"], "Kraken")
    label(between["vin"][0]["prevout"]["scriptpubkey_address"], "Kraken")
    for out in between["vout"]:
        label(out["scriptpubkey_address"], "Bitfinex")


def subprocess_env() -> dict[str, str]:
    """This test's settings, pointed at the test database that pytest-django created."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        DJANGO_SETTINGS_MODULE="whaleproject.settings",
        PYTHONUNBUFFERED="1",
    )
    if db.get("PASSWORD"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace(
            f"{db['USER']}@", f"{db['USER']}:{db['PASSWORD']}@"
        )
    return env


@contextmanager
def process(name: str, args: list[str], env: dict[str, str]):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up; see tests/artifacts/daphne.log")


def comparable_row(page, html: str, chain: str | None = None) -> str:
    """A row as the browser serialises it, without what differs by moment: its highlight
    classes and its age. With `chain`, the row for that chain is taken from a whole page."""
    return page.evaluate(
        """([html, chain]) => {
            const doc = new DOMParser().parseFromString(
                chain ? html : `<table><tbody>${html}</tbody></table>`, "text/html");
            const row = chain ? doc.querySelector(`tr[data-chain="${chain}"]`)
                              : doc.querySelector("tr");
            row.classList.remove("flash", "flash-static", "flash-confirmed", "flash-new",
                                 "flash-updated");
            row.querySelector("time[data-age]").textContent = "";
            return row.outerHTML;
        }""",
        [html, chain],
    )


def wait_for_worker(env: dict[str, str], timeout: float = 30.0) -> None:
    from whaleproject.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise AssertionError("the Celery worker did not answer; see tests/artifacts/worker.log")


def test_whale_appears_confirms_filters_and_opens_live(
    transactional_db, django_user_model, password, tmp_path, monkeypatch
):
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are
    # ordinary blocking calls made between browser steps, which is what this flag allows.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    whales = fixture_whales()
    first_txid = whales[0]["txid"]
    label_whales(whales)
    wanda = django_user_model.objects.create_user("wanda", "wanda@example.org", password)
    wanda.profile.display_currency = "EUR"  # Settings: amounts in euros
    wanda.profile.save()
    recording = write_recording(tmp_path / "whales.jsonl", whales)
    env = subprocess_env()
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    shots = ARTIFACTS / "e2e"
    shots.mkdir(parents=True, exist_ok=True)

    with ExitStack() as stack:
        stack.enter_context(
            process(
                "daphne",
                [
                    str(BIN / "daphne"),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "whaleproject.asgi:application",
                ],
                env,
            )
        )
        stack.enter_context(
            process(
                "worker",
                [
                    str(BIN / "celery"),
                    "-A",
                    "whaleproject",
                    "worker",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "INFO",
                    "-n",
                    f"dash-e2e-{os.getpid()}@%h",
                ],
                env,
            )
        )
        wait_for_http(f"{base}/accounts/login/")
        wait_for_worker(env)

        playwright = stack.enter_context(playwright_api.sync_playwright())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        expect = playwright_api.expect

        # Log in.
        page.goto(f"{base}/accounts/login/?next=/")
        page.get_by_label("Username").fill("wanda")
        page.get_by_label("Password").fill(password)
        page.screenshot(path=shots / "01-login.png")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/")
        expect(page.locator("#feed-connection")).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

        # Start the ingest on the replay: the whale must appear without a reload.
        stack.enter_context(
            process(
                "ingest",
                [
                    sys.executable,
                    "manage.py",
                    "ingest_mempool",
                    "--source",
                    f"replay:{recording}?speed=1",
                    "--max-seconds",
                    "180",
                ],
                env,
            )
        )
        row = page.locator(f'#pending-rows tr[data-chain="{first_txid}"]')
        expect(row).to_be_visible(timeout=20_000)
        whale_seen_at = time.monotonic()
        expect(row).to_contain_text("103.03")
        # d3852055…: 100 BTC paid, 3.03 BTC change (round amount): moved 100 BTC, and at
        # EUR 64,823 it is worth €6,482,300.00, compact in the row, exact on hover.
        expect(row.locator("a.value")).to_contain_text("100.00")
        expect(row.locator(".fiat")).to_have_text("€6.5M")
        expect(row.locator(".fiat")).to_have_attribute("title", "€6,482,300.00")
        expect(row).to_contain_text("Binance")
        expect(row).to_contain_text("Exchange inflow")
        expect(page.locator("#feed-announcer")).to_contain_text("New whale: 103.03 BTC")
        expect(page.locator("#pending-rows tr")).to_have_count(3, timeout=10_000)
        expect(page.locator("#source-banner")).to_have_attribute(
            "data-state", "connected", timeout=10_000
        )
        page.screenshot(path=shots / "02-feed-pending.png")

        # The block frame comes BLOCK_AT - WHALE_AT s after the whale's (which was seen, at the
        # latest, when its row appeared): the row must move to "confirmed" within 10 s of it.
        confirmed = page.locator(f'#recent-rows tr[data-chain="{first_txid}"]')
        deadline = whale_seen_at + (BLOCK_AT - WHALE_AT) + 10
        expect(confirmed).to_be_visible(timeout=max(1.0, deadline - time.monotonic()) * 1000)
        expect(confirmed).to_have_class(re.compile(r"\bflash-confirmed\b"))
        expect(confirmed).to_contain_text("block 890448")
        expect(page.locator(f'#pending-rows tr[data-chain="{first_txid}"]')).to_have_count(0)
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        # The pushed row is the page template's row: the server renders it, the script inserts it.
        served = page.request.get(f"{base}/").text()
        assert comparable_row(page, confirmed.evaluate("row => row.outerHTML")) == comparable_row(
            page, served, first_txid
        )
        page.wait_for_timeout(600)
        page.screenshot(path=shots / "03-feed-confirmed.png")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: rows become cards
        page.screenshot(path=shots / "03b-feed-phone.png", full_page=True)
        page.set_viewport_size({"width": 1360, "height": 900})
        if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
            (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(
                shots / "03-feed-confirmed.png", ROOT / "docs" / "img" / "dashboard.png"
            )

        # Filter through the form: the URL keeps the filter, server and live rows agree.
        page.get_by_label("Min BTC").fill("500")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**/?*min_btc=500*")
        expect(page.locator("#pending-rows tr")).to_have_count(1)
        expect(page.locator("#pending-rows")).to_contain_text("927.00")
        expect(page.locator("#recent-rows tr")).to_have_count(0)
        expect(page.locator("#feed-connection")).to_have_attribute("data-state", "live")
        page.screenshot(path=shots / "04-feed-filtered.png")
        page.goto(f"{base}/?flow=exchange_inflow&min_btc=abc")
        expect(page.get_by_role("alert")).to_contain_text("Min BTC: Enter a number.")
        # The socket's snapshot rebuilds the rows: a click during the rebuild can land on a row
        # that is being replaced and go nowhere. "live" is set as the snapshot is applied.
        expect(page.locator("#feed-connection")).to_have_attribute("data-state", "live")
        expect(page.locator(f'#recent-rows tr[data-chain="{first_txid}"]')).to_be_visible()

        # Open its detail page from the row.
        page.locator(f'#recent-rows tr[data-chain="{first_txid}"] a.value').click()
        page.wait_for_url(f"**/whales/{first_txid}/")
        # What moved leads, in the user's currency; the total stands beside it.
        expect(page.get_by_role("heading", level=1)).to_contain_text("100.00000000 BTC · €6.5M")
        expect(page.locator(".whale-title")).to_contain_text("of 103.02775338 BTC total")
        # 103.02775338 x 64,823 = 6,678,568.057...
        expect(page.locator(".whale-title")).to_contain_text("€6,678,568.06")
        expect(page.locator(".timeline")).to_contain_text("Seen in the mempool")
        expect(page.locator(".timeline")).to_contain_text("Confirmed in block 890448")
        expect(page.locator(f'a[href="https://mempool.space/tx/{first_txid}"]')).to_be_visible()
        expect(page.get_by_text("hit", exact=True)).to_be_visible()
        page.screenshot(path=shots / "05-detail.png", full_page=True)

        page.goto(f"{base}/stats/")
        expect(page.locator("#chart-volume")).to_be_visible()
        assert page.evaluate("Boolean(window.Chart && Chart.getChart('chart-volume'))")
        page.wait_for_timeout(800)
        page.screenshot(path=shots / "06-stats.png", full_page=True)
