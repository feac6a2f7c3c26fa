"""Recording stores what moved (change estimate) and the fiat values at detection."""

from decimal import Decimal

import pytest

from detection.models import WhaleTransaction
from detection.recording import record_event
from tests.records.helpers import event, load_esplora

pytestmark = pytest.mark.django_db

TX_927 = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
TX_133 = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"
AT = 1_700_000_000.0


@pytest.fixture(scope="module")
def whales():
    return load_esplora("whales_block_277647.esplora_txs.json")


def test_moved_and_fiat_stored_at_detection(whales):
    prices = {"USD": ["69880", AT - 60], "EUR": ["64823", AT - 60]}
    record_event(event("seen", whales[TX_927], at=AT, prices=prices))
    record_event(event("seen", whales[TX_133], at=AT, prices=prices))

    whale = WhaleTransaction.objects.get(txid=TX_927)
    # 917 + 10 BTC to two fresh addresses, both round: no change identified.
    assert whale.moved == whale.value == 92_700_000_000
    assert whale.moved_confidence == 0.3 and whale.change_outputs == []
    assert whale.price_usd == Decimal("69880")
    assert whale.value_usd == whale.moved_usd == Decimal("64778760.00")
    assert whale.fiat["value"] == {"USD": "64778760.00", "EUR": "60090921.00"}

    # 0.693 BTC paid, 132.61498472 BTC change (round amount rule).
    whale = WhaleTransaction.objects.get(txid=TX_133)
    assert whale.value == 13_330_798_472 and whale.moved == 69_300_000
    assert whale.change_outputs == [0] and whale.change_methods == ["round_amount"]
    assert whale.moved_usd == Decimal("48426.84")  # 0.693 x 69,880 = 48,426.84
    assert WhaleTransaction.objects.filter(value_usd__gte=50_000_000).count() == 1


def test_no_price_or_stale_price_gives_no_fiat(whales):
    record_event(event("seen", whales[TX_927], at=AT, prices={}))
    whale = WhaleTransaction.objects.get(txid=TX_927)
    assert whale.value_usd is None and whale.moved_usd is None and whale.fiat == {}

    stale = {"USD": ["69880", AT - 3601]}
    record_event(event("seen", whales[TX_133], at=AT, prices=stale))
    whale = WhaleTransaction.objects.get(txid=TX_133)
    assert whale.value_usd is None and whale.fiat == {}
