"""What a chat alert looks like: the bytes the local Telegram, Discord and Slack servers captured,
drawn the way each client draws them, in Chromium. Screenshots go to tests/artifacts/; with
UPDATE_DOCS_SCREENSHOT=1 also to docs/img/chat_alerts.png (used by docs/ALERTS.md).

Emoji need a colour emoji font (Debian: fonts-noto-color-emoji). The drawing is a plain imitation of each client (bold, embed bar, Block Kit button), not the
client itself; what it draws is exactly what was sent.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import random
import re
import shutil
from pathlib import Path

import pytest

from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import ChatEndpoint, Delivery
from tests.alerts.conftest import ZERO_FEE_927, label_as_inflow, make_subscription, record

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font: 15px/1.4 system-ui, sans-serif; background: #eee; margin: 16px; width: 720px; }}
h2 {{ font-size: 13px; color: #555; margin: 18px 0 6px; text-transform: uppercase; }}
.tg {{ background: #fff; border-radius: 12px; padding: 10px 14px; max-width: 620px; }}
.tg-button {{ display: block; margin-top: 8px; text-align: center; background: #e8f1fb;
  color: #2a79c6; border-radius: 8px; padding: 6px; }}
.dc {{ background: #313338; color: #dbdee1; border-radius: 6px; padding: 10px 14px; }}
.dc-embed {{ margin-top: 6px; background: #2b2d31; border-left: 4px solid {colour};
  border-radius: 4px; padding: 8px 12px; }}
.dc-embed b {{ color: #00a8fc; }} .dc a {{ color: #00a8fc; }}
.sl {{ background: #fff; border-radius: 6px; padding: 10px 14px; }}
.sl-button {{ display: inline-block; margin-top: 8px; border: 1px solid #bbb; border-radius: 4px;
  padding: 3px 12px; font-weight: 600; }}
</style></head><body>
<h2>Telegram</h2><div class="tg">{telegram}<span class="tg-button">{tg_button}</span></div>
<h2>Discord</h2><div class="dc">{discord}<div class="dc-embed"><b>{dc_title}</b><br>{dc_desc}</div></div>
<h2>Slack</h2><div class="sl">{slack}</div>
</body></html>"""


def discord_text(markdown: str) -> str:
    """Discord shows "\\#" as "#"; [View](<url>) as a link."""
    text = html.escape(re.sub(r"\\([\\*_~`|>\[\]#])", r"\1", markdown))
    return re.sub(r"\[View\]\(&lt;(.*?)&gt;\)", r'<a href="\1">View</a>', text).replace(
        "\n", "<br>"
    )


def slack_text(mrkdwn: str) -> str:
    text = re.sub(r"\*(.+?)\*", r"<b>\1</b>", mrkdwn)  # already &-escaped as Slack wants
    return text.replace("\n", "<br>")


def test_render_captured_chat_messages(alice, whales, bot_api, receiver, allow_loopback, settings):
    playwright_api = pytest.importorskip("playwright.sync_api")
    settings.SITE_URL = "https://whales.example.org"
    telegram = ChatEndpoint.objects.create(
        owner=alice, service="telegram", telegram_chat_id=random.randint(10**9, 2 * 10**9)
    )
    discord = ChatEndpoint.objects.create(owner=alice, service="discord", url=receiver.url + "?d")
    slack = ChatEndpoint.objects.create(owner=alice, service="slack", url=receiver.url + "?s")
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([telegram, discord, slack])
    tx = whales[ZERO_FEE_927]
    label_as_inflow(tx)
    bumped = dataclasses.replace(tx, txid="ab" * 32, fee=1_250_000)
    record("seen", tx)
    event = record("replaced", bumped, seq=1, chain_txid=tx.txid, replaced_txid=tx.txid)
    fan_out(event.pk)
    for delivery in Delivery.objects.filter(event=event):
        send_delivery(delivery.pk)

    [tg] = bot_api.wait_for_sends(1)
    by_path = {r.path: json.loads(r.body) for r in receiver.wait_for(2)}
    dc, sl = by_path["/hook?d"], by_path["/hook?s"]
    embed = dc["embeds"][0]
    slack_html = "".join(
        f"<div>{slack_text(block['text']['text'])}</div>"
        for block in sl["blocks"]
        if block["type"] == "section"
    ) + "".join(
        f'<span class="sl-button">{html.escape(e["text"]["text"])}</span>'
        for block in sl["blocks"]
        if block["type"] == "actions"
        for e in block["elements"]
    )
    page_html = PAGE.format(
        telegram=tg.params["text"].replace("\n", "<br>"),  # Telegram HTML, escaped by us
        tg_button=html.escape(tg.params["reply_markup"]["inline_keyboard"][0][0]["text"]),
        discord=discord_text(dc["content"]),
        colour=f"#{embed['color']:06x}",
        dc_title=html.escape(embed["title"]),
        dc_desc=discord_text(embed["description"]),
        slack=slack_html,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "chat-alerts.png"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"]
        )
        page = browser.new_page(viewport={"width": 760, "height": 520})
        page.set_content(page_html)
        assert "🔁 Replaced: 927 BTC moved" in page.inner_text(".tg")
        assert "View" in page.inner_text(".dc") and "View" in page.inner_text(".sl")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copy(shot, ROOT / "docs" / "img" / "chat_alerts.png")
