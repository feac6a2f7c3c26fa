"""A local Telegram Bot API server for chat-alert tests, speaking the real API's shapes.

Every answer is the Bot API envelope ({"ok": true, "result": ...} or {"ok": false, "error_code",
"description", "parameters"}) and getUpdates honours `offset` (earlier updates are confirmed and
forgotten) and `timeout` (the request is held until an update arrives or the time is up), as
https://core.telegram.org/bots/api describes. Nothing here reaches the internet.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BOT_TOKEN = "123456789:AAE-test-token_for-local-server"  # noqa: S105 - a fake, local only
BOT_USERNAME = "WhaleWatchTestBot"


@dataclass
class BotCall:
    method: str
    body: bytes

    @property
    def params(self) -> dict:
        return json.loads(self.body) if self.body else {}


@dataclass
class FakeBotApi:
    port: int = 0
    updates: list[dict] = field(default_factory=list)
    calls: list[BotCall] = field(default_factory=list)
    # sendMessage answers in order, then {"ok": true, ...}: (http status, envelope dict)
    send_script: list = field(default_factory=list)
    next_update_id: int = 700_000_000
    next_message_id: int = 1
    changed: threading.Condition = field(default_factory=threading.Condition)
    wrong_token_requests: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- what a person does in the Telegram app ---------------------------------------------

    def user_sends(self, chat_id: int, text: str, *, first_name: str = "Alice") -> int:
        with self.changed:
            update_id = self.next_update_id
            self.next_update_id += 1
            command_length = len(text.split(" ", 1)[0]) if text.startswith("/") else 0
            message = {
                "message_id": self.next_message_id,
                "from": {"id": chat_id, "is_bot": False, "first_name": first_name},
                "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
                "date": int(time.time()),
                "text": text,
            }
            if command_length:
                message["entities"] = [
                    {"offset": 0, "length": command_length, "type": "bot_command"}
                ]
            self.next_message_id += 1
            self.updates.append({"update_id": update_id, "message": message})
            self.changed.notify_all()
        return update_id

    # --- what tests read --------------------------------------------------------------------

    def sent(self, method: str = "sendMessage") -> list[BotCall]:
        with self.changed:
            return [c for c in self.calls if c.method == method]

    def wait_for_sends(self, count: int, timeout: float = 15) -> list[BotCall]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len([c for c in self.calls if c.method == "sendMessage"]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fewer than {count} sendMessage calls arrived")
                self.changed.wait(left)
        return self.sent()

    # --- the API ------------------------------------------------------------------------------

    def answer(self, method: str, params: dict) -> tuple[int, dict]:
        if method == "getMe":
            return 200, {
                "ok": True,
                "result": {
                    "id": 123456789,
                    "is_bot": True,
                    "first_name": "Whale Watch",
                    "username": BOT_USERNAME,
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                },
            }
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._updates(params)}
        if method == "sendMessage":
            with self.changed:
                scripted = self.send_script.pop(0) if self.send_script else None
            if scripted is not None:
                return scripted
            message_id = self.next_message_id
            self.next_message_id += 1
            return 200, {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "from": {"id": 123456789, "is_bot": True, "username": BOT_USERNAME},
                    "chat": {"id": params.get("chat_id"), "type": "private"},
                    "date": int(time.time()),
                    "text": params.get("text", ""),
                },
            }
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                if offset:  # confirmed updates are forgotten, as Telegram does
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                if self.updates:
                    return list(self.updates[:100])
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.changed.wait(left)


def too_many_requests(retry_after: int) -> tuple[int, dict]:
    return 429, {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry_after}",
        "parameters": {"retry_after": retry_after},
    }


def blocked_by_user() -> tuple[int, dict]:
    return 403, {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }


def _handler_for(api: FakeBotApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - http.server hook name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            _, bot, method = self.path.split("/", 2)
            if bot != f"bot{BOT_TOKEN}":
                api.wrong_token_requests += 1
                status, envelope = (
                    401,
                    {"ok": False, "error_code": 401, "description": "Unauthorized"},
                )
            else:
                with api.changed:
                    api.calls.append(BotCall(method, body))
                    api.changed.notify_all()
                status, envelope = api.answer(method, json.loads(body) if body else {})
            content = json.dumps(envelope).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(content)

    return Handler


@pytest.fixture
def bot_api(settings):
    api = FakeBotApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(api))
    server.daemon_threads = True
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.TELEGRAM_API_URL = api.url
    yield api
    with api.changed:
        api.changed.notify_all()
    server.shutdown()
    server.server_close()
