"""A dashboard socket ends with its session: logging out (or a password change, which ends the
session's auth hash) closes it with 4401 within seconds, found by the consumer's periodic check.

The audit found a socket streaming on after its user had logged out.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session

from dashboard.api_auth import GenerationTokenObtainSerializer
from dashboard.consumers import CLOSE_UNAUTHENTICATED
from dashboard.models import revoke_api_tokens
from tests.dashboard.conftest import ANONYMOUS_HEADERS, session_headers
from whaleproject.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick_session_check(settings):
    settings.WHALE_SOCKET_SESSION_CHECK_SECONDS = 0.3


async def open_feed(user):
    headers = await session_headers(user)
    communicator = WebsocketCommunicator(application, "/ws/whales/?whales=0", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    return communicator


async def expect_closed(communicator, timeout=3.0):
    output = await communicator.receive_output(timeout=timeout)
    assert output == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    await communicator.disconnect()


async def test_logging_out_closes_the_sessions_socket(alice, quick_session_check):
    communicator = await open_feed(alice)
    await sync_to_async(Session.objects.all().delete)()  # what logout does to the session row
    await expect_closed(communicator)


async def test_password_change_closes_the_socket(alice, quick_session_check):
    communicator = await open_feed(alice)

    def change_password():
        alice.set_password("a completely new passphrase 5")
        alice.save()

    await sync_to_async(change_password)()
    await expect_closed(communicator)


async def test_a_live_session_keeps_its_socket(alice, quick_session_check):
    communicator = await open_feed(alice)
    assert await communicator.receive_nothing(timeout=1.0)
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=3) == {"type": "pong"}
    await communicator.disconnect()


async def test_revoking_the_token_closes_a_jwt_socket(alice, quick_session_check):
    def issue() -> str:
        return str(GenerationTokenObtainSerializer.get_token(alice).access_token)

    token = await sync_to_async(issue)()
    communicator = WebsocketCommunicator(
        application, "/ws/whales/?whales=0", headers=ANONYMOUS_HEADERS
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "auth", "token": token})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    await sync_to_async(revoke_api_tokens)(alice)  # POST /api/v1/auth/logout/
    await expect_closed(communicator)
