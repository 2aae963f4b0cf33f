"""Fixtures shared by the unit tests of the API's tenancy, keys and rate limits."""

from __future__ import annotations

import fakeredis
import pytest

from core.registry import WorkerRegistry


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    """A Redis of its own with one live worker that can take sessions (test_api.py has its own, without)."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    WorkerRegistry(client, ttl_s=60).beat("fake", {"name": "fake", "pool": {"idle": 1}, "maxSessions": 5})
    return client
