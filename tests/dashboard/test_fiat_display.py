"""The feed and the whale page lead with what moved, with its fiat value in the user's currency."""

from __future__ import annotations

import time

import pytest

from detection.models import WhaleTransaction
from detection.recording import record_event
from tests.records.helpers import event, load_esplora

pytestmark = pytest.mark.django_db

TX_927 = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
TX_133 = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"
AT = 1_700_000_000.0
PRICES = {"USD": ["69880", AT], "EUR": ["64823", AT]}


@pytest.fixture
def priced_whales():
    whales = load_esplora("whales_block_277647.esplora_txs.json")
    record_event(event("seen", whales[TX_927], at=AT, prices=PRICES))
    record_event(event("seen", whales[TX_133], at=AT, prices=PRICES))


def test_feed_and_detail_in_usd_by_default(client, alice, priced_whales):
    client.force_login(alice)
    html = client.get("/").content.decode()
    # 927 BTC x 69,880 = $64,778,760.00, shown compact with the exact figure on hover.
    assert (
        '927.00 <abbr title="bitcoin">BTC</abbr></a> · <span class="fiat" title="$64,778,760.00">$64.8M</span>'
        in html
    )
    # 712db987…: 0.693 BTC moved of 133.31 BTC (change estimated): 0.693 x 69,880 = $48,426.84.
    assert 'title="$48,426.84">$48.4K</span>' in html
    assert "of 133.31 total" in html
    detail = client.get(f"/whales/{TX_133}/").content.decode()
    assert "0.69300000" in detail and "133.30798472 BTC total" in detail
    assert "$48,426.84" in detail and "$9,315,561.97" in detail  # total: 133.30798472 x 69,880
    assert "at $69,880.00/BTC when seen" in detail


def test_display_currency_from_settings(client, alice, priced_whales):
    alice.profile.display_currency = "EUR"
    alice.profile.save()
    client.force_login(alice)
    html = client.get("/").content.decode()
    # 927 x 64,823 = €60,090,921.00
    assert 'title="€60,090,921.00">€60.1M</span>' in html
    assert 'data-currency="EUR"' in html
    alice.profile.display_currency = "JPY"  # not given by this source: USD stands in
    alice.profile.save()
    assert 'title="$64,778,760.00">$64.8M</span>' in client.get("/").content.decode()


def test_stats_page_shows_usd_volume(client, alice):
    whales = load_esplora("whales_block_277647.esplora_txs.json")
    now = time.time()
    record_event(event("seen", whales[TX_927], at=now, prices={"USD": ["69880", now]}))
    client.force_login(alice)
    html = client.get("/stats/").content.decode()
    assert 'title="$64,778,760.00 (the 1 whale seen with a price)">$64.8M</span>' in html


def test_admin_shows_latest_prices_and_whale_fiat(client, staff, priced_whales):
    client.force_login(staff)
    html = client.get("/admin/detection/whaletransaction/").content.decode()
    assert "Latest fiat prices" in html
    assert "$69,880.00" in html and "€64,823.00" in html
    assert "64778760.00" in html or "64,778,760.00" in html  # value_usd column
    whale_id = WhaleTransaction.objects.get(txid=TX_133).pk
    detail = client.get(f"/admin/detection/whaletransaction/{whale_id}/change/").content.decode()
    assert "round_amount" in detail and "48426.84" in detail
