"""Fixtures for the ingest tests (helpers live in ``ingest_support``)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_support import MempoolServer  # noqa: E402 - needs the path above


@pytest.fixture
async def mempool_server() -> AsyncIterator[MempoolServer]:
    server = MempoolServer()
    await server.start()
    yield server
    await server.stop()
