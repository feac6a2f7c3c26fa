"""The server-rendered pages: live feed with URL filters, whale detail, stats."""

import json
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from detection.models import AddressLabel, Prediction
from tests.dashboard.whales import (
    EXCHANGE_ADDRESS,
    OTHER_EXCHANGE_ADDRESS,
    confirm,
    replace,
    see,
    txid,
    whale_tx,
)

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def feed(labels):
    """Four chains: an urgent inflow, a cheap outflow, a confirmed inter-exchange, an RBF."""
    now = time.time()
    see(whale_tx(1, 150, receiver=EXCHANGE_ADDRESS, fee=60_000), at=now - 300)
    see(whale_tx(2, 2_500, sender=EXCHANGE_ADDRESS, fee=200), at=now - 200, block=6)
    moved = whale_tx(3, 420.5, sender=EXCHANGE_ADDRESS, receiver=OTHER_EXCHANGE_ADDRESS)
    see(moved, at=now - 900, tip=900_000)
    confirm(moved, height=900_001, at=now - 100)
    first = whale_tx(4, 300, rbf=True, fee=1_000)
    see(first, at=now - 50)
    replace(first, whale_tx(5, 300, rbf=True, fee=90_000), at=now - 10)


def rows(response, panel: str) -> list[str]:
    """The chain ids of one panel's rows, in page order."""
    html = response.content.decode()
    body = html.split(f'id="{panel}-rows"', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'data-chain="([0-9a-f]{64})"', body)


# --- live feed ---------------------------------------------------------------------------------


def test_feed_needs_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_feed_renders_pending_and_settled_whales_newest_first(alice_client, feed):
    response = alice_client.get("/")
    assert response.status_code == 200
    assert rows(response, "pending") == [txid(4), txid(2), txid(1)]
    assert rows(response, "recent") == [txid(3)]
    html = response.content.decode()
    assert "150.00 <abbr" in html and "2,500.00 <abbr" in html
    assert "Exchange inflow" in html and "Exchange outflow" in html and "Inter-exchange" in html
    assert "Binance" in html and "Kraken" in html
    assert "replaced (RBF)" in html, "the replacement's row says it replaced a first version"
    assert f"/whales/{txid(5)}/" in html, "the RBF row links the live version"
    assert "block 900001" in html
    assert 'aria-live="polite"' in html
    assert "/static/js/feed." in html


def test_feed_rows_show_fee_urgency_and_eta(alice_client, feed):
    html = alice_client.get("/").content.decode()
    urgent = html.split(f'data-chain="{txid(1)}"', 1)[1].split("</tr>", 1)[0]
    assert "300 sat/vB" in urgent
    assert 'class="urgency band-high"' in urgent
    assert "next block" in urgent
    cheap = html.split(f'data-chain="{txid(2)}"', 1)[1].split("</tr>", 1)[0]
    assert "1.0 sat/vB" in cheap
    assert "band-low" in cheap


@pytest.mark.parametrize(
    ("query", "pending", "recent"),
    [
        ("flow=exchange_inflow", [txid(1)], []),
        ("flow=inter_exchange", [], [txid(3)]),
        ("entity=binance", [txid(2), txid(1)], [txid(3)]),
        ("entity=Kraken", [], [txid(3)]),
        ("min_btc=400", [txid(2)], [txid(3)]),
        ("max_btc=300", [txid(4), txid(1)], []),
        ("min_btc=150&max_btc=300", [txid(4), txid(1)], []),
        ("urgency=high", [txid(4), txid(1)], [txid(3)]),
        ("urgency=low", [txid(2)], []),
        ("status=confirmed", [], [txid(3)]),
        ("status=pending&flow=exchange_outflow", [txid(2)], []),
    ],
)
def test_feed_filters_come_from_the_url(alice_client, feed, query, pending, recent):
    response = alice_client.get(f"/?{query}")
    assert response.status_code == 200
    assert rows(response, "pending") == pending
    assert rows(response, "recent") == recent


def test_filters_are_not_handed_to_the_live_script(alice_client, feed):
    # The server decides what a filtered feed shows (the socket's `matches`); the script has
    # no filter rule to feed.
    response = alice_client.get("/?flow=exchange_inflow&min_btc=100.5&entity=+Binance+")
    assert "feed-filters-data" not in response.content.decode()
    assert "matchesFilters" not in (ROOT / "static/js/feed.js").read_text()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_btc=lots", "Min BTC: Enter a number."),
        ("max_btc=-5", "Max BTC: Ensure this value is greater than or equal to 0."),
        ("flow=sideways", "Flow: Select a valid choice."),
        ("urgency=extreme", "Urgency: Select a valid choice."),
        ("status=replaced", "Status: Select a valid choice."),
        ("min_btc=500&max_btc=100", "Max BTC: max_btc must not be below min_btc."),
        ("entity=" + "x" * 101, "Entity: Ensure this value has at most 100 characters"),
        ("min_btc=1e999999", "Min BTC:"),
    ],
)
def test_bad_filter_values_get_a_clear_message(alice_client, feed, query, message):
    response = alice_client.get(f"/?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Some filters were not applied" in html
    assert message in html
    assert 'id="pending-rows"' in html, "the page still works"


def test_valid_filters_still_apply_beside_a_bad_one(alice_client, feed):
    response = alice_client.get("/?flow=exchange_inflow&min_btc=abc")
    assert response.status_code == 400
    assert rows(response, "pending") == [txid(1)]


def test_empty_feed_says_so(alice_client):
    html = alice_client.get("/?flow=exchange_inflow").content.decode()
    assert "No pending whales match these filters" in html


# --- whale detail ------------------------------------------------------------------------------


def test_detail_page_shows_timeline_labels_predictions_and_link(alice_client, feed):
    response = alice_client.get(f"/whales/{txid(3)}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "420.50000000" in html
    assert f'href="https://mempool.space/tx/{txid(3)}"' in html
    assert "Seen in the mempool" in html and "Confirmed in block 900001" in html
    assert html.index("Seen in the mempool") < html.index("Confirmed in block 900001")
    assert "Binance" in html and "Kraken" in html
    prediction = Prediction.objects.get(whale__txid=txid(3))
    assert prediction.hit is True
    assert '<span class="badge hit">hit</span>' in html
    assert "took 1, off by 0" in html


def test_detail_page_marks_derived_labels(alice_client, feed):
    AddressLabel.objects.create(
        address=f"bc1qreceiver{2:028d}",
        entity="Coinbase",
        kind="exchange",
        source=AddressLabel.DERIVED_SOURCE,
        confidence=0.6,
    )
    html = alice_client.get(f"/whales/{txid(2)}/").content.decode()
    outputs = html.split("<caption>Outputs", 1)[1]
    assert "Coinbase" in outputs
    assert 'class="badge derived"' in outputs
    inputs = html.split("<caption>Inputs", 1)[1].split("<caption>Outputs", 1)[0]
    assert "Binance" in inputs and "test-csv" in inputs
    assert 'class="badge derived"' not in inputs


def test_replaced_txid_resolves_to_its_chain(alice_client, feed):
    response = alice_client.get(f"/whales/{txid(4)}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "This transaction was replaced by" in html
    assert f"/whales/{txid(5)}/" in html
    assert "Replaced by a new version (RBF)" in html
    assert "Versions of this transaction" in html
    replacement = alice_client.get(f"/whales/{txid(5)}/").content.decode()
    assert "Seen in the mempool" in replacement, "the chain's whole timeline"
    assert "This transaction was replaced by" not in replacement


def test_upper_case_txid_resolves(alice_client, feed):
    assert alice_client.get(f"/whales/{txid(3).upper()}/").status_code == 200


@pytest.mark.parametrize("bad", ["0" * 64, "nothex" * 10 + "abcd", "abc"])
def test_unknown_or_malformed_txid_is_404(alice_client, feed, bad):
    assert alice_client.get(f"/whales/{bad}/").status_code == 404


def test_detail_needs_login(client, feed):
    assert client.get(f"/whales/{txid(3)}/").status_code == 302


# --- stats -------------------------------------------------------------------------------------


def stats_json(response) -> dict:
    html = response.content.decode()
    data = html.split('id="stats-data"', 1)[1].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(data)


def test_stats_page_has_charts_and_figures(alice_client, feed):
    response = alice_client.get("/stats/")
    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("volume", "flows", "urgency", "coverage", "hits", "error"):
        assert f'id="chart-{chart}"' in html
    assert "vendor/chartjs/chart.umd.min" in html
    assert "/static/js/stats." in html
    data = stats_json(response)
    volume = data["volume"]
    assert len(volume["labels"]) in (24, 25)
    assert volume["totals"]["whales"] == 4
    assert volume["totals"]["inflow"] == 150
    assert volume["totals"]["outflow"] == 2500
    assert sum(volume["by_flow"]["inter_exchange"]) == 420.5
    assert sum(data["urgency"]["counts"]) + data["urgency"]["unscored"] == 4
    assert data["coverage"] == {"mined": 1, "seen_first": 1, "coverage": 1.0}
    assert [v for v in data["accuracy"]["hit_rate"]["high"] if v is not None] == [100.0]
    assert [v for v in data["accuracy"]["mean_error"] if v is not None] == [0.0]
    assert "24h" in html and "100 %" in html
    # issue 14: hits are "within a block", one outcome per whale, with coverage by band
    assert "1/1 within a block" in html and "100 % confirmed" in html
    assert "One outcome per whale" in html


def test_stats_page_seven_days_and_a_bad_range(alice_client, feed):
    week = stats_json(alice_client.get("/stats/?range=7d"))
    assert len(week["volume"]["labels"]) in (168, 169)
    assert len(week["accuracy"]["labels"]) in (7, 8)
    fallback = alice_client.get("/stats/?range=forever")
    assert fallback.status_code == 200
    assert len(stats_json(fallback)["volume"]["labels"]) in (24, 25)


def test_stats_page_with_no_data(alice_client):
    response = alice_client.get("/stats/")
    assert response.status_code == 200
    assert stats_json(response)["volume"]["totals"]["whales"] == 0


def test_stats_in_the_users_time_zone(alice_client, alice, feed):
    zone = "Asia/Kolkata"  # a half-hour offset: its hours start at :30 UTC
    alice.profile.time_zone = zone
    alice.profile.save()
    response = alice_client.get("/stats/")
    labels = stats_json(response)["volume"]["labels"]
    assert labels[-1] == datetime.now(ZoneInfo(zone)).strftime("%H:00")
    assert sum(stats_json(response)["volume"]["whales"]) == 4
    assert "in Asia/Kolkata time" in response.content.decode()


# --- no CDN, vendored library --------------------------------------------------------------------


def test_no_page_loads_anything_from_another_site(alice_client, feed):
    for path in ("/", f"/whales/{txid(3)}/", "/stats/"):
        html = alice_client.get(path).content.decode()
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/static/") for s in sources), sources


def test_vendored_chartjs_has_its_licence_and_readme():
    vendor = ROOT / "static" / "vendor"
    assert (vendor / "chartjs" / "chart.umd.min.js").read_text().startswith("/*!\n * Chart.js v4")
    assert "MIT" in (vendor / "chartjs" / "LICENSE.md").read_text()
    readme = (vendor / "README.md").read_text()
    assert "chart.js" in readme and "4.6.1" in readme and "registry.npmjs.org" in readme
