"""WorkerRegistry: worker heartbeats with a TTL, and who is alive."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from core import keys


class WorkerRegistry:
    """Workers announce themselves every second; a worker whose key expired is dead."""

    def __init__(self, client: redis.Redis, *, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s

    def beat(self, worker: str, info: dict[str, Any]) -> None:
        """Refresh `worker`'s heartbeat with its current info (pool figures, queues...)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.worker_heartbeat_key(worker), json.dumps(info), ex=self._ttl_s)
        pipe.sadd(keys.WORKERS, worker)
        pipe.hset(keys.WORKERS_LAST_SEEN, worker, str(int(time.time() * 1000)))
        pipe.execute()

    def leave(self, worker: str) -> None:
        """Remove `worker` at once (graceful shutdown)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(keys.worker_heartbeat_key(worker))
        pipe.srem(keys.WORKERS, worker)
        pipe.hdel(keys.WORKERS_LAST_SEEN, worker)
        pipe.execute()

    def alive(self) -> dict[str, dict[str, Any]]:
        """Worker name -> its last heartbeat info, for every worker whose heartbeat has not expired."""
        names = sorted(name.decode() if isinstance(name, bytes) else name
                       for name in cast(set[bytes], self._redis.smembers(keys.WORKERS)))
        if not names:
            return {}
        values = cast(list[bytes | None], self._redis.mget([keys.worker_heartbeat_key(name) for name in names]))
        return {name: json.loads(value) for name, value in zip(names, values, strict=True) if value}

    def settled(self) -> bool:
        """Whether Redis has been up longer than a heartbeat TTL (so a missing heartbeat means a dead worker)."""
        uptime = cast(dict[str, Any], self._redis.info("server")).get("uptime_in_seconds", 0)
        return int(uptime) > self._ttl_s

    def missing(self, alive: dict[str, dict[str, Any]]) -> dict[str, int]:
        """Workers heard from within WORKER_FORGET_S but not alive now -> when last heard (ms)."""
        seen = {(k.decode() if isinstance(k, bytes) else k): int(v)
                for k, v in cast(dict[bytes, bytes], self._redis.hgetall(keys.WORKERS_LAST_SEEN)).items()}
        horizon = int(time.time() * 1000) - keys.WORKER_FORGET_S * 1000
        return {name: at for name, at in seen.items() if name not in alive and at >= horizon}

    def forget_silent(self, *, has_sessions: Callable[[str], bool]) -> list[str]:
        """Drop workers silent for longer than WORKER_FORGET_S that own no sessions any more."""
        seen = {(k.decode() if isinstance(k, bytes) else k): int(v)
                for k, v in cast(dict[bytes, bytes], self._redis.hgetall(keys.WORKERS_LAST_SEEN)).items()}
        horizon = int(time.time() * 1000) - keys.WORKER_FORGET_S * 1000
        gone = [name for name, at in seen.items() if at < horizon and not has_sessions(name)]
        for name in gone:
            self.leave(name)
        return gone
