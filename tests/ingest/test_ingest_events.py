"""detection.ingest.events: the one check that producer and consumer share."""

import uuid

import pytest

from detection.ingest.events import KINDS, BadEvent, check_event
from detection.models import EventKind


def test_the_contract_knows_every_kind_the_database_records():
    assert tuple(EventKind.values) == KINDS


def test_a_valid_event_yields_its_identity():
    event_id = uuid.uuid4()
    assert check_event({"kind": "seen", "txid": "ab" * 32, "event_id": str(event_id)}) == (
        "seen",
        "ab" * 32,
        event_id,
        0,
    )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"txid": "t", "event_id": str(uuid.uuid4())}, "missing or bad field"),
        ({"kind": "seen", "txid": "t", "event_id": "not-a-uuid"}, "missing or bad field"),
        ({"kind": "seen", "txid": "t", "event_id": str(uuid.uuid4()), "seq": "x"}, "bad field"),
        ({"kind": "mined", "txid": "t", "event_id": str(uuid.uuid4())}, "unknown event kind"),
    ],
)
def test_a_bad_event_says_what_is_wrong(event, message):
    with pytest.raises(BadEvent, match=message):
        check_event(event)
