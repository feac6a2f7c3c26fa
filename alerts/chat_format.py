"""The one chat message style (Telegram, Discord, Slack), from an alert payload. No Django.

    🐋 927 BTC ($64.8M) moved · unknown wallet → #Binance · fee 12.5 sat/vB, next block · [View]

`compose` turns a payload (the same body the webhook carries) into a ChatMessage: a headline,
the facts after it, a link, and for a digest one short line per held event. The three renderers
below only add each service's markup and escaping, so every chat says the same words.

Optional payload fields, used when present (issue 15 adds them):
  data.whale.moved_btc  the amount that really moved (else value_btc, the total);
  data.whale.fiat       {"USD": "64778760.00", ...}, the fiat value of that amount; only USD is
                        shown, and nothing is shown when it is missing or null.
"""

from __future__ import annotations

import html
import ipaddress
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

# A digest names at most this many events; the rest are counted.
DIGEST_LINES = 15

ICONS = {
    "seen": "🐋",
    "replaced": "🔁",
    "confirmed": "✅",
    "dropped": "🗑",
    "reorged": "⚠️",
    "test": "🧪",
}
LIFECYCLE = {
    "seen": "",
    "replaced": "Replaced: ",
    "confirmed": "Confirmed: ",
    "dropped": "Dropped: ",
    "reorged": "Reorged: ",
}


@dataclass(frozen=True)
class ChatMessage:
    headline: str  # "🐋 927 BTC ($64.8M) moved"
    facts: tuple[str, ...] = ()  # "unknown wallet → #Binance", "fee 12.5 sat/vB, next block"
    url: str | None = None
    lines: tuple[str, ...] = field(default=())  # a digest's events, one each

    @property
    def summary(self) -> str:
        """The message as one plain line (without the link and digest lines)."""
        return " · ".join((self.headline, *self.facts))

    def plain(self) -> str:
        text = self.summary + "".join(f"\n• {line}" for line in self.lines)
        return text + (f"\n{self.url}" if self.url else "")


# --- words --------------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def one_decimal(amount: Decimal) -> str:
    """927 → "927", 512.3 → "512.3", 1234.56 → "1,234.6"."""
    rounded = amount.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    if rounded == rounded.to_integral_value():
        return f"{rounded.to_integral_value():,}"
    return f"{rounded:,}"


def btc_amount(value: Any) -> str:
    amount = _decimal(value)
    return "?" if amount is None else one_decimal(amount)


def fiat_amount(value: Any) -> str | None:
    """64778760 → "$64.8M", 950000 → "$950K", 1.2e9 → "$1.2B"; None when unknown."""
    amount = _decimal(value)
    if amount is None or amount < 0:
        return None
    for size, suffix in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "K")):
        if amount >= size:
            scaled = (amount / size).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
            text = f"{scaled}".removesuffix(".0")
            return f"${text}{suffix}"
    return f"${amount.quantize(Decimal('1'), rounding=ROUND_HALF_EVEN)}"


def usd_of(whale: dict[str, Any]) -> Any:
    fiat = whale.get("fiat")
    if isinstance(fiat, dict):
        return fiat.get("USD", fiat.get("usd"))
    return None


def hashtag(entity: str) -> str:
    """Entity names as traders see them on Whale Alert: "Coinbase Prime" → "#CoinbasePrime"."""
    tag = re.sub(r"[^\w]", "", entity)
    return f"#{tag}" if tag else entity


def route(whale: dict[str, Any]) -> str:
    source, target = whale.get("from_entity"), whale.get("to_entity")
    left = hashtag(source) if source else "unknown wallet"
    right = hashtag(target) if target else "unknown wallet"
    return f"{left} → {right}"


def when(prediction: dict[str, Any] | None) -> str:
    """When a pending whale should confirm, in the words every alert uses."""
    if not prediction:
        return ""
    if prediction.get("may_be_purged"):
        return "may be purged"
    if prediction.get("may_not_confirm_soon"):
        return "may not confirm soon"
    block = prediction.get("projected_block")
    if block is None:
        return ""
    return "next block" if block == 0 else f"in ~{block + 1} blocks"


def fee(whale: dict[str, Any], *, now: bool = False) -> str:
    rate = _decimal(whale.get("fee_rate"))
    parts = []
    if rate is not None:
        parts.append(f"fee {'now ' if now else ''}{one_decimal(rate)} sat/vB")
    timing = when(whale.get("prediction"))
    if timing:
        parts.append(timing)
    return ", ".join(parts)


def amount(whale: dict[str, Any]) -> str:
    btc = whale.get("moved_btc") or whale.get("value_btc")
    text = f"{btc_amount(btc)} BTC"
    usd = fiat_amount(usd_of(whale))
    return f"{text} ({usd})" if usd else text


def blocks(count: int) -> str:
    return f"{count} block{'s' if count != 1 else ''}"


def compose(payload: dict[str, Any]) -> ChatMessage:
    """The chat message for one alert, digest or test payload."""
    kind = payload.get("type", "")
    data = payload.get("data") or {}
    if kind == "whale.digest":
        return _digest(data)
    whale = data.get("whale") or {}
    event = "test" if data.get("test") else data.get("kind", "seen")
    headline = f"{ICONS.get(event, '🐋')} {LIFECYCLE.get(event, '')}{amount(whale)} moved"
    if event == "test":
        headline = f"🧪 Test message from Whale Watch: {amount(whale)} moved"
    facts = [route(whale)]
    if event in ("seen", "test", "reorged"):
        facts.append(fee(whale))
    elif event == "replaced":
        facts.append(fee(whale, now=True))
        if whale.get("replaced_by"):
            facts.append(f"by {whale['replaced_by'][:12]}…")
    elif event == "confirmed":
        height = whale.get("confirmed_height")
        waited = whale.get("blocks_waited")
        text = f"in block {height:,}" if height else "in a block"
        if waited is not None:
            text += f" after {blocks(waited)}"
        facts.append(text)
    elif event == "dropped":
        facts.append("left the mempool unconfirmed")
    if event == "reorged":
        facts.insert(1, "pending again")
    return ChatMessage(
        headline=headline, facts=tuple(f for f in facts if f), url=data.get("url") or None
    )


def digest_line(data: dict[str, Any]) -> str:
    event = data.get("kind", "seen")
    whale = data.get("whale") or {}
    return (
        f"{ICONS.get(event, '🐋')} {LIFECYCLE.get(event, '')}{amount(whale)} moved · {route(whale)}"
    )


def _digest(data: dict[str, Any]) -> ChatMessage:
    events = data.get("events") or []
    count = data.get("count", len(events))
    name = (data.get("subscription") or {}).get("name")
    headline = f"🐋 {count} whale alert{'s' if count != 1 else ''}"
    if name:
        headline += f" for “{name}”"
    facts = (f"held for {data['reason']}",) if data.get("reason") else ()
    lines = [digest_line(e) for e in events[:DIGEST_LINES]]
    if len(events) > DIGEST_LINES:
        lines.append(f"… and {len(events) - DIGEST_LINES} more")
    return ChatMessage(headline=headline, facts=facts, lines=tuple(lines))


# --- each service's markup ----------------------------------------------------------------------


def telegram_html(message: ChatMessage) -> str:
    """Telegram's HTML parse mode: only <, > and & need escaping in text."""

    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    text = f"<b>{esc(message.headline)}</b>"
    text += "".join(f" · {esc(fact)}" for fact in message.facts)
    text += "".join(f"\n• {esc(line)}" for line in message.lines)
    return text


def linkable_by_telegram(url: str) -> bool:
    """Telegram refuses a whole message whose button links to localhost or a private address
    (400 BUTTON_URL_INVALID), so a portal on such an address sends no button."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return "." in host


def telegram_keyboard(message: ChatMessage) -> dict[str, Any] | None:
    if not message.url or not linkable_by_telegram(message.url):
        return None
    return {"inline_keyboard": [[{"text": "View", "url": message.url}]]}


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>\[\]#])")


def discord_escape(text: str) -> str:
    """Markdown characters are escaped so an entity name cannot format or link anything."""
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


DISCORD_COLOURS = {
    "seen": 0x1E88E5,
    "replaced": 0xFB8C00,
    "confirmed": 0x43A047,
    "dropped": 0x757575,
    "reorged": 0xE53935,
}


def discord_payload(message: ChatMessage, kind: str) -> dict[str, Any]:
    """Discord's execute-webhook body: `content` plus one embed; no pings, ever."""
    content = discord_escape(message.summary)
    if message.url:
        content += f" · [View](<{message.url}>)"
    embed: dict[str, Any] = {
        "title": message.headline[:256],
        "description": "\n".join(
            [discord_escape(f) for f in message.facts]
            + [f"• {discord_escape(line)}" for line in message.lines]
        )[:4096],
        "color": DISCORD_COLOURS.get(kind, 0x1E88E5),
    }
    if message.url:
        embed["url"] = message.url
    return {
        "content": content[:2000],
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: ChatMessage) -> dict[str, Any]:
    """Slack's incoming-webhook body: `text` (the notification) plus Block Kit blocks."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{slack_escape(message.headline)}*"},
        }
    ]
    details = [slack_escape(f) for f in message.facts] + [
        f"• {slack_escape(line)}" for line in message.lines
    ]
    if details:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(details)[:3000]}}
        )
    if message.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "View"},
                        "url": message.url,
                    }
                ],
            }
        )
    return {"text": slack_escape(message.summary), "blocks": blocks, "unfurl_links": False}
