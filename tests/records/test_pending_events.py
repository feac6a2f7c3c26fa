"""Events owned until recorded (detection.pending_events), against the real Redis and database."""

from __future__ import annotations

import pytest

from detection import pending_events
from detection.models import WhaleEvent
from detection.tasks import record_whale_event
from tests.records.helpers import event, load_esplora, projection
from whaleproject.redis_client import get_redis, key

TXID = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"


@pytest.fixture
def owned(settings):
    settings.WHALE_EVENT_RECORD_DEADLINE_SECONDS = 10
    get_redis().delete(key("ingest", "owned-events"), key("ingest", "owned-events-due"))
    yield
    get_redis().delete(key("ingest", "owned-events"), key("ingest", "owned-events-due"))


@pytest.fixture(scope="module")
def seen():
    tx = load_esplora("whales_block_277647.esplora_txs.json")[TXID]
    return event("seen", tx, projection=projection(tip=277646))


def test_an_event_is_published_again_only_after_its_deadline(owned, seen):
    published = []
    pending_events.own(seen, now=1000.0)
    assert pending_events.publish_overdue(published.append, now=1009.9) == 0
    assert pending_events.publish_overdue(published.append, now=1010.0) == 1
    assert published == [seen]
    # the next try is one deadline later, not at every sweep
    assert pending_events.publish_overdue(published.append, now=1015.0) == 0
    assert pending_events.publish_overdue(published.append, now=1020.0) == 1
    assert published == [seen, seen]
    assert pending_events.owned_count() == 1


def test_overdue_events_wait_while_tasks_wait_in_the_queue(owned, seen):
    published = []
    pending_events.own(seen, now=1000.0)
    # a backlog: the event may be one of the queued tasks; publishing it again would feed it
    assert pending_events.publish_overdue(published.append, now=1030.0, queue_waiting=40) == 0
    assert pending_events.publish_overdue(published.append, now=1032.0, queue_waiting=0) == 1
    assert published == [seen]


def test_a_settled_event_is_never_published_again(owned, seen):
    published = []
    pending_events.own(seen, now=1000.0)
    pending_events.settle(seen["event_id"])
    assert pending_events.publish_overdue(published.append, now=2000.0) == 0
    assert published == [] and pending_events.owned_count() == 0


def test_an_event_unrecorded_for_a_day_is_given_up(owned, seen):
    published = []
    pending_events.own(seen, now=1000.0)
    pending_events.own(seen, now=1000.0 + pending_events.MAX_AGE)  # re-publishes keep owned_at
    assert (
        pending_events.publish_overdue(published.append, now=1011.0 + pending_events.MAX_AGE) == 0
    )
    assert published == [] and pending_events.owned_count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_recording_task_settles_the_event_and_a_repeat_is_a_no_op(owned, seen):
    pending_events.own(seen, now=1000.0)
    record_whale_event.apply(args=[seen])
    assert pending_events.owned_count() == 0
    pending_events.own(seen, now=1000.0)  # published again (the worker died before it settled)
    record_whale_event.apply(args=[seen])
    assert pending_events.owned_count() == 0
    assert WhaleEvent.objects.filter(uid=seen["event_id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_malformed_event_is_settled_too(owned, seen):
    bad = {**seen, "kind": "exploded"}
    pending_events.own(bad, now=1000.0)
    record_whale_event.apply(args=[bad])
    assert pending_events.owned_count() == 0
    assert not WhaleEvent.objects.exists()
