"""The one chat message style, as a pure function of the alert payload."""

from __future__ import annotations

from alerts.chat_format import (
    DIGEST_LINES,
    compose,
    discord_payload,
    fiat_amount,
    slack_payload,
    telegram_html,
)


def alert(kind: str = "seen", **whale) -> dict:
    base = {
        "value_btc": "927.00000000",
        "fee_rate": 12.5,
        "from_entity": None,
        "to_entity": "Binance",
        "prediction": {"projected_block": 0},
    }
    return {
        "type": f"whale.{kind}",
        "data": {"kind": kind, "url": "https://w.example/whales/ab/", "whale": {**base, **whale}},
    }


def test_the_trader_line_with_a_fiat_value():
    message = compose(alert(fiat={"USD": "64778760.00"}))
    assert message.summary == (
        "🐋 927 BTC ($64.8M) moved · unknown wallet → #Binance · fee 12.5 sat/vB, next block"
    )
    assert message.url == "https://w.example/whales/ab/"


def test_no_fiat_part_without_a_price_and_moved_wins_over_the_total():
    assert compose(alert(fiat=None)).headline == "🐋 927 BTC moved"
    assert compose(alert(moved_btc="512.34", fiat={"USD": None})).headline == "🐋 512.3 BTC moved"


def test_lifecycle_words():
    replaced = compose(alert("replaced", fee_rate=20, replaced_by="cd" * 32))
    assert replaced.summary == (
        "🔁 Replaced: 927 BTC moved · unknown wallet → #Binance · fee now 20 sat/vB, next block"
        " · by cdcdcdcdcdcd…"
    )
    confirmed = compose(alert("confirmed", confirmed_height=900_001, blocks_waited=3))
    assert confirmed.summary == (
        "✅ Confirmed: 927 BTC moved · unknown wallet → #Binance · in block 900,001 after 3 blocks"
    )
    dropped = compose(alert("dropped", from_entity="Coinbase Prime"))
    assert dropped.summary == (
        "🗑 Dropped: 927 BTC moved · #CoinbasePrime → #Binance · left the mempool unconfirmed"
    )
    reorged = compose(alert("reorged"))
    assert reorged.summary == (
        "⚠️ Reorged: 927 BTC moved · unknown wallet → #Binance · pending again · "
        "fee 12.5 sat/vB, next block"
    )


def test_fiat_amounts():
    assert [fiat_amount(v) for v in ("950000", "1234567890", "999", None, "x")] == [
        "$950K",
        "$1.2B",
        "$999",
        None,
        None,
    ]


def test_a_digest_is_compact_and_bounded():
    events = [alert()["data"] for _ in range(DIGEST_LINES + 3)]
    payload = {
        "type": "whale.digest",
        "data": {
            "count": len(events),
            "reason": "hourly limit",
            "subscription": {"name": "Big ones"},
            "events": events,
        },
    }
    message = compose(payload)
    assert message.summary == "🐋 18 whale alerts for “Big ones” · held for hourly limit"
    assert message.lines[0] == "🐋 927 BTC moved · unknown wallet → #Binance"
    assert message.lines[-1] == "… and 3 more"
    assert len(message.lines) == DIGEST_LINES + 1
    assert message.url is None


def test_markup_is_escaped_for_each_service():
    assert compose(alert(to_entity="<b>Evil</b> & co")).facts[0] == "unknown wallet → #bEvilbco"
    tricky = compose(alert()).__class__(headline="*x* <y> & @everyone", facts=("_a_ [b](c)",))
    assert telegram_html(tricky) == "<b>*x* &lt;y&gt; &amp; @everyone</b> · _a_ [b](c)"
    assert slack_payload(tricky)["text"] == "*x* &lt;y&gt; &amp; @everyone · _a_ [b](c)"
    discord = discord_payload(tricky, "seen")
    assert discord["content"] == "\\*x\\* <y\\> & @everyone · \\_a\\_ \\[b\\](c)"
    assert discord["allowed_mentions"] == {"parse": []}
