import pytest
from asgiref.sync import sync_to_async

from tests.dashboard.whales import label_exchanges


@pytest.fixture
def labels(db):
    label_exchanges()


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


ORIGIN = b"http://127.0.0.1"


async def session_headers(user, origin: bytes = ORIGIN) -> list[tuple[bytes, bytes]]:
    """Headers of a browser holding a logged-in session cookie, as WebsocketCommunicator wants."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    @sync_to_async
    def make_session():
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "dashboard.auth.UsernameOrEmailBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.save()
        return session.session_key

    key = await make_session()
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode()),
        (b"origin", origin),
        (b"host", b"127.0.0.1"),
    ]


ANONYMOUS_HEADERS = [(b"origin", ORIGIN), (b"host", b"127.0.0.1")]
