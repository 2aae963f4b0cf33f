"""SessionSetup: what a new session starts with (variables, packages), handed to its owner through Redis.

The broker carries ids only: anything that can read it (or Flower's task list, which shows task arguments)
must not see a session's variables. The API stores the setup under the session's id just before it sends
the create task; the owner takes it (read and deleted in one step) when it creates the sandbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from core import keys

# Long enough for the create task to be picked up (the API waits 30 s for the reply), short enough that an
# abandoned setup does not stay in Redis.
SETUP_TTL_S = 120


@dataclass(frozen=True)
class SessionSetup:
    """A session's initial variables (JSON values by name), the package specs to install first, and the
    isolation tier (core.isolation.Tier value) whose session pool its sandbox must come from."""

    variables: dict[str, Any] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)
    isolation: str = "runc"

    def to_json(self) -> str:
        return json.dumps({"variables": self.variables, "packages": self.packages, "isolation": self.isolation})

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionSetup:
        data = json.loads(text)
        return cls(variables=dict(data.get("variables") or {}), packages=list(data.get("packages") or []),
                   isolation=str(data.get("isolation") or "runc"))


class SessionSetups:
    """Stores a session's setup for its owner and hands it over once."""

    def __init__(self, client: redis.Redis, *, ttl_s: int = SETUP_TTL_S) -> None:
        self._redis = client
        self._ttl_s = ttl_s

    def put(self, session_id: str, setup: SessionSetup) -> None:
        """Store setup until the owner takes it (or SETUP_TTL_S seconds pass)."""
        self._redis.set(keys.session_setup_key(session_id), setup.to_json(), ex=self._ttl_s)

    def take(self, session_id: str) -> SessionSetup | None:
        """The session's setup, removed from Redis; None when there is none (expired, or taken already)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(keys.session_setup_key(session_id))
        pipe.delete(keys.session_setup_key(session_id))
        raw = cast(list[Any], pipe.execute())[0]
        return SessionSetup.from_json(raw) if raw is not None else None

    def discard(self, session_id: str) -> None:
        """Forget a setup nobody will take (the create failed or timed out)."""
        self._redis.delete(keys.session_setup_key(session_id))
