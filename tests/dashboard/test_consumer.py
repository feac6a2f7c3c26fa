"""The /ws/whales/ socket over the real channels-redis layer: auth, origin, snapshot, events."""

import asyncio
import re
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.template.loader import render_to_string
from rest_framework_simplejwt.tokens import AccessToken

from dashboard import consumers
from dashboard.consumers import CLOSE_UNAUTHENTICATED, WhaleFeedConsumer
from dashboard.live import apublish_ingest_status, publish_ingest_status
from tests.dashboard.conftest import ANONYMOUS_HEADERS, session_headers
from tests.dashboard.whales import (
    EXCHANGE_ADDRESS,
    confirm,
    label_exchanges,
    replace,
    see,
    txid,
    whale_tx,
)
from whaleproject.asgi import application
from whaleproject.health import write_ingest_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick_auth_deadline(monkeypatch):
    """Tests wait for the JWT deadline; a short one keeps them fast (the rule is the same)."""
    monkeypatch.setattr(WhaleFeedConsumer, "auth_timeout_seconds", 0.6)


def socket(path="/ws/whales/", headers=None):
    return WebsocketCommunicator(application, path, headers=headers or ANONYMOUS_HEADERS)


async def expect_close(communicator, code=CLOSE_UNAUTHENTICATED, timeout=3):
    output = await communicator.receive_output(timeout=timeout)
    assert output["type"] == "websocket.close", output
    assert output["code"] == code
    # Finish the consumer as a browser would (it answers the close); a consumer left running
    # until the test's event loop is torn down can leave a channels-redis read behind.
    await communicator.disconnect()


def access_token(user, lifetime: timedelta | None = None) -> str:
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


# --- authentication ----------------------------------------------------------------------------


async def test_anonymous_socket_is_closed_with_4401_after_the_auth_deadline(quick_auth_deadline):
    communicator = socket()
    connected, _ = await communicator.connect()
    assert connected, "accepted first, so that the client can read the 4401"
    started = time.monotonic()
    await expect_close(communicator)
    assert time.monotonic() - started >= 0.5


async def test_default_auth_deadline_is_five_seconds():
    assert consumers.AUTH_TIMEOUT_SECONDS == 5.0
    assert WhaleFeedConsumer.auth_timeout_seconds == 5.0


async def test_foreign_origin_is_refused(alice):
    headers = [h for h in await session_headers(alice) if h[0] != b"origin"]
    communicator = socket(headers=[*headers, (b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_missing_origin_is_refused(alice):
    headers = [h for h in await session_headers(alice) if h[0] != b"origin"]
    communicator = socket(headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


async def test_session_cookie_gets_a_snapshot_at_once(alice):
    communicator = socket(headers=await session_headers(alice))
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "snapshot"
    await communicator.disconnect()


async def test_jwt_in_the_first_message_authenticates(alice, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await communicator.send_json_to({"type": "auth", "token": access_token(alice)})
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "snapshot"
    # Past the deadline the socket is still open: the deadline only applies before auth.
    await asyncio.sleep(0.9)
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    "first_message",
    [
        {"type": "auth", "token": "not-a-jwt"},
        {"type": "auth", "token": ""},
        {"type": "auth"},
        {"type": "subscribe"},
    ],
    ids=["garbage-token", "empty-token", "no-token", "not-auth"],
)
async def test_bad_first_message_is_closed_with_4401(first_message, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await communicator.send_json_to(first_message)
    await expect_close(communicator, timeout=0.5)  # at once, not at the deadline


async def test_non_json_first_message_is_closed_with_4401(quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await communicator.send_to(text_data="hello")
    await expect_close(communicator, timeout=0.5)


async def test_expired_token_is_refused(alice, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    token = access_token(alice, lifetime=timedelta(seconds=-1))
    await communicator.send_json_to({"type": "auth", "token": token})
    await expect_close(communicator, timeout=0.5)


async def test_inactive_users_token_is_refused(alice, quick_auth_deadline):
    token = access_token(alice)
    alice.is_active = False
    await sync_to_async(alice.save)()
    communicator = socket()
    await communicator.connect()
    await communicator.send_json_to({"type": "auth", "token": token})
    await expect_close(communicator, timeout=0.5)


async def test_late_token_finds_the_socket_closed(alice, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await asyncio.sleep(0.8)
    await expect_close(communicator, timeout=0.5)


async def test_token_expiry_closes_the_socket(alice, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    token = access_token(alice, lifetime=timedelta(seconds=1.5))
    await communicator.send_json_to({"type": "auth", "token": token})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    await expect_close(communicator, timeout=4)


async def test_fresh_token_keeps_the_socket_open_past_the_first_expiry(alice, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await communicator.send_json_to(
        {"type": "auth", "token": access_token(alice, lifetime=timedelta(seconds=1.5))}
    )
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    await communicator.send_json_to(
        {"type": "auth", "token": access_token(alice, lifetime=timedelta(minutes=5))}
    )
    assert await communicator.receive_nothing(timeout=2.5), "no second snapshot, no close"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


async def test_someone_elses_token_mid_stream_closes(alice, bob, quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await communicator.send_json_to({"type": "auth", "token": access_token(alice)})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    await communicator.send_json_to({"type": "auth", "token": access_token(bob)})
    await expect_close(communicator, timeout=2)


# --- snapshot ----------------------------------------------------------------------------------


@sync_to_async
def record_feed():
    """Two pending whales, one confirmed, one RBF chain replaced once."""
    label_exchanges()
    now = time.time()
    see(whale_tx(1, 150, receiver="bc1qexchangehotwallet0000000000000000000"), at=now - 300)
    see(whale_tx(2, 2500), at=now - 200)
    third = whale_tx(3, 420)
    see(third, at=now - 900)
    confirm(third, height=900_001, at=now - 100)
    first_version = whale_tx(4, 300, rbf=True, fee=1_000)
    see(first_version, at=now - 50)
    replace(first_version, whale_tx(5, 300, rbf=True, fee=90_000), at=now - 10)


async def test_snapshot_holds_pending_and_recent_whales_and_the_heartbeat(alice):
    await record_feed()
    await sync_to_async(write_ingest_heartbeat)({"source": "replay:x", "connected": True})
    communicator = socket(headers=await session_headers(alice))
    await communicator.connect()
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    assert snapshot["ingest"]["source"] == "replay:x"
    assert snapshot["ingest"]["connected"] is True
    assert abs(snapshot["server_time"] - time.time()) < 5
    by_chain = {w["chain_txid"]: w for w in snapshot["whales"]}
    # One row per RBF chain, showing the replacement under the first txid's chain.
    assert set(by_chain) == {txid(1), txid(2), txid(3), txid(4)}
    assert by_chain[txid(4)]["txid"] == txid(5)
    assert by_chain[txid(4)]["sequence"] == 2
    # Pending first (newest first), then the settled.
    assert [w["txid"] for w in snapshot["whales"]] == [txid(5), txid(2), txid(1), txid(3)]
    inflow = by_chain[txid(1)]
    assert inflow["flow"] == "exchange_inflow"
    assert inflow["to_entity"] == "Binance"
    assert inflow["value_btc"] == "150.00000000"
    assert inflow["prediction"]["band"] == "high"
    assert by_chain[txid(3)]["status"] == "confirmed"
    assert by_chain[txid(3)]["confirmed_height"] == 900_001
    await communicator.disconnect()


async def test_snapshot_follows_the_url_filters(alice):
    await record_feed()
    communicator = socket(
        path="/ws/whales/?flow=exchange_inflow&min_btc=100&bogus=1",
        headers=await session_headers(alice),
    )
    await communicator.connect()
    snapshot = await communicator.receive_json_from(timeout=5)
    assert [w["txid"] for w in snapshot["whales"]] == [txid(1)]
    await communicator.disconnect()


async def test_banner_only_pages_get_no_whales(alice):
    await record_feed()
    communicator = socket(path="/ws/whales/?whales=0", headers=await session_headers(alice))
    await communicator.connect()
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["whales"] == []
    assert "ingest" in snapshot
    await communicator.disconnect()


async def test_snapshot_without_heartbeat_says_none(alice):
    communicator = socket(headers=await session_headers(alice))
    await communicator.connect()
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["ingest"] is None
    assert snapshot["whales"] == []
    await communicator.disconnect()


# --- events ------------------------------------------------------------------------------------


async def test_events_follow_the_snapshot_in_commit_order(alice):
    communicator = socket(headers=await session_headers(alice))
    await communicator.connect()
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"

    tx = whale_tx(7, 777)
    first, second = whale_tx(8, 300, rbf=True, fee=1_000), whale_tx(9, 300, rbf=True, fee=99_000)

    @sync_to_async
    def lifecycle():
        see(tx)
        see(first)
        replace(first, second)
        confirm(tx, height=900_002)

    await lifecycle()
    events = [await communicator.receive_json_from(timeout=5) for _ in range(4)]
    assert all(m["type"] == "whale.event" for m in events)
    steps = [(m["event"]["kind"], m["event"]["whale"]["txid"]) for m in events]
    assert steps == [
        ("seen", txid(7)),
        ("seen", txid(8)),
        ("replaced", txid(9)),
        ("confirmed", txid(7)),
    ]
    replaced = events[2]["event"]
    assert replaced["whale"]["chain_txid"] == txid(8), "the replacement keeps the row's identity"
    assert replaced["sequence"] == 2
    confirmed = events[3]["event"]["whale"]
    assert confirmed["status"] == "confirmed"
    assert confirmed["confirmed_height"] == 900_002
    # the event shape detection.push sends, plus the rows rendered by the page's template
    assert set(events[0]["event"]) == {
        "id",
        "kind",
        "sequence",
        "occurred_at",
        "frame_received_at",
        "details",
        "whale",
        "row_html",
        "row_html_by_currency",
    }
    for message in events:
        event = message["event"]
        assert without_age(event["row_html"]) == without_age(
            page_row(dict(event["whale"], sequence=event["sequence"]), "USD")
        )
        assert "matches" not in message, "an unfiltered feed shows every event"
    await communicator.disconnect()


def page_row(whale: dict, currency: str) -> str:
    """The feed page's row for a whale, straight from its template."""
    context = {"w": whale, "display_currency": currency}
    return render_to_string("dashboard/_whale_row.html", context).strip()


def without_age(html: str) -> str:
    """A row with its age text blanked: it is "0 s" or "1 s" depending on when it was rendered."""
    return re.sub(r"(<time [^>]*data-age>)[^<]*(</time>)", r"\1\2", html)


async def test_snapshot_rows_are_the_page_rows_in_the_users_currency(alice):
    await record_feed()

    @sync_to_async
    def prefer_euros():
        alice.profile.display_currency = "EUR"
        alice.profile.save()

    await prefer_euros()
    communicator = socket(headers=await session_headers(alice))
    await communicator.connect()
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["whales"]
    for whale in snapshot["whales"]:
        shape = {key: value for key, value in whale.items() if key != "row_html"}
        assert without_age(whale["row_html"]) == without_age(page_row(shape, "EUR"))
    await communicator.disconnect()


async def test_a_filtered_feed_is_told_by_the_server_whether_an_event_matches(alice):
    await sync_to_async(label_exchanges)()
    filtered = socket(path="/ws/whales/?flow=exchange_inflow", headers=await session_headers(alice))
    plain = socket(headers=await session_headers(alice))
    for communicator in (filtered, plain):
        await communicator.connect()
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"

    @sync_to_async
    def record():
        see(whale_tx(11, 150, receiver=EXCHANGE_ADDRESS))  # an exchange inflow
        see(whale_tx(12, 2500))  # unlabelled

    await record()
    told = [await filtered.receive_json_from(timeout=5) for _ in range(2)]
    assert [(m["event"]["whale"]["txid"], m["matches"]) for m in told] == [
        (txid(11), True),
        (txid(12), False),
    ]
    untold = [await plain.receive_json_from(timeout=5) for _ in range(2)]
    assert all("matches" not in m for m in untold)
    for communicator in (filtered, plain):
        await communicator.disconnect()


async def test_ingest_status_reaches_every_socket(alice, bob):
    sockets = [socket(headers=await session_headers(user)) for user in (alice, bob)]
    for communicator in sockets:
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)
    status = {"source": "wss://mempool.example/ws", "connected": False, "written_at": 1.0}
    await sync_to_async(publish_ingest_status)(status)  # from plain (sync) code
    await apublish_ingest_status({**status, "connected": True})  # awaited
    publish_ingest_status({**status, "memory_level": "warning"})  # inside a running loop
    for communicator in sockets:
        received = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        assert all(m["type"] == "ingest.status" for m in received)
        assert [m["status"]["connected"] for m in received[:2]] == [False, True]
        assert received[2]["status"]["memory_level"] == "warning"
        assert all(abs(m["server_time"] - time.time()) < 5 for m in received)
        # written in 1970: the server judged it long silent, and says so in the banner's words
        assert [m["banner"]["state"] for m in received] == ["unavailable"] * 3
        assert "down since" in received[0]["banner"]["html"]
        await communicator.disconnect()


async def test_ingest_status_carries_the_servers_banner_and_when_it_changes(alice):
    communicator = socket(headers=await session_headers(alice))
    await communicator.connect()
    await communicator.receive_json_from(timeout=5)
    written_at = time.time()
    await apublish_ingest_status({"connected": True, "written_at": written_at})
    banner = (await communicator.receive_json_from(timeout=5))["banner"]
    assert banner["state"] == "connected"
    assert banner["html"].startswith("<strong>Live</strong>")
    # If nothing newer arrives: amber once the heartbeat is stale, red five minutes later.
    stale = settings.WHALE_HEARTBEAT_STALE_SECONDS
    steps = [(step["state"], round(step["at"] - written_at)) for step in banner["then"]]
    assert steps == [("degraded", stale), ("unavailable", 300)]
    assert "reconnecting since" in banner["then"][0]["html"]
    await communicator.disconnect()


async def test_anonymous_socket_gets_no_pushes(quick_auth_deadline):
    communicator = socket()
    await communicator.connect()
    await apublish_ingest_status({"connected": True})
    await expect_close(communicator)  # the close, and nothing before it


async def test_an_idle_socket_survives_the_redis_socket_timeout(alice):
    """redis-py 8 reads time out after 5 s; an idle consumer must not die with them."""
    communicator = socket(headers=await session_headers(alice))
    await communicator.connect()
    await communicator.receive_json_from(timeout=5)
    assert await communicator.receive_nothing(timeout=7)
    await apublish_ingest_status({"connected": True})
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "ingest.status"
    assert message["status"]["written_at"] > 0, "stamped for the banner when the ingest did not"
    await communicator.disconnect()
