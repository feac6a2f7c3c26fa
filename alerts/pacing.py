"""Send pacing for chat services, shared by every worker through Redis.

Telegram allows a bot about 30 messages a second overall and one a second per chat; Slack one a
second per incoming webhook; Discord a few per second per webhook. Before a send, a worker books
a slot: the earliest time at or after now when the target's own gap has passed and the current
one-second window still has room under the service's global limit. Booking is one Lua script,
so two workers never take the same slot. A short wait is slept in the sending thread; a long one
is returned and the delivery waits in the outbox for exactly that long (Outcome.paced: it does
not climb the failure schedule), instead of holding a worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from whaleproject.redis_client import get_redis, key

# Booking: KEYS[1] = the target's "next free" time, KEYS[2] = the service's window-counter prefix.
# ARGV: now, target gap (s), global limit per second (0 = none), longest wait (s).
# Returns the wait in seconds as a string; "-<wait>" when nothing was booked (too far away).
_BOOK = """
local now = tonumber(ARGV[1])
local gap = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local longest = tonumber(ARGV[4])
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
for _ = 1, 64 do
  if at - now > longest then
    return '-' .. tostring(at - now)
  end
  local window = math.floor(at)
  local counter = KEYS[2] .. ':' .. window
  local used = tonumber(redis.call('GET', counter) or '0')
  if limit == 0 or used < limit then
    if limit > 0 then
      redis.call('INCR', counter)
      redis.call('EXPIRE', counter, 10)
    end
    redis.call('SET', KEYS[1], tostring(at + gap), 'EX', math.ceil(gap) + 60)
    return tostring(at - now)
  end
  at = window + 1
end
return '-' .. tostring(at - now)
"""

# (seconds between two messages to one target, messages per second for the whole service)
SERVICE_PACE = {
    "telegram": (1.0, None),  # the global figure comes from TELEGRAM_MESSAGES_PER_SECOND
    "slack": (1.0, 0),
    "discord": (0.5, 0),
}
# Waits up to this long are slept in the sending thread (one chat's 1 s gap); longer ones put the
# delivery back for exactly that long, so a busy chat or a full second never holds a worker.
MAX_SLEEP = 1.0


@dataclass
class Slot:
    wait: float  # seconds until the booked slot (0 = now)
    booked: bool  # False: no slot within MAX_SLEEP; retry after `wait`


def book(service: str, target: str, *, longest: float = MAX_SLEEP) -> Slot:
    gap, per_second = SERVICE_PACE[service]
    if per_second is None:
        per_second = settings.TELEGRAM_MESSAGES_PER_SECOND
    script = get_redis().register_script(_BOOK)
    answer = script(
        keys=[key("pace", service, "target", target), key("pace", service, "window")],
        args=[repr(time.time()), repr(gap), int(per_second), repr(longest)],
    )
    text = answer.decode() if isinstance(answer, bytes) else str(answer)
    if text.startswith("-"):
        return Slot(wait=float(text[1:]), booked=False)
    return Slot(wait=max(0.0, float(text)), booked=True)


def wait_for_slot(service: str, target: str) -> Slot:
    """Book a slot and sleep until it; returns the slot (booked=False: not now, retry later)."""
    slot = book(service, target)
    if slot.booked and slot.wait > 0:
        time.sleep(slot.wait)
    return slot
