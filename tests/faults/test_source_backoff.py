"""The source comes back after a long outage: the ingest must be reading it again within 30 s.

The reconnect delay doubles to a 30 s cap with ±20 % jitter; jitter applied on top of the cap
would allow 36 s. (Short drops are exercised against a real server in tests/ingest/test_ingest_live.py
and by bench/chaos.py.)"""

import random

from detection.ingest.sources.live import backoff_delay


def test_reconnect_delay_never_exceeds_the_cap():
    rng = random.Random(9)
    delays = [backoff_delay(attempt, rng=rng) for attempt in range(5, 40) for _ in range(50)]
    assert max(delays) <= 30.0
    assert min(delays) >= 30.0 * 0.8  # still jittered, so clients do not reconnect in step
