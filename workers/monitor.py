"""ResourceMonitor: samples a running sandbox about once a second and reports it as `metrics` events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from workers import resources

SAMPLE_INTERVAL_S = 1.0

OnSample = Callable[[dict[str, Any]], None]


class ResourceMonitor:
    """While active, calls on_sample({elapsedMs, cpuPercent, memoryBytes, diskBytes}) every interval."""

    def __init__(self, container_id: str, on_sample: OnSample, *, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._container_id = container_id
        self._on_sample = on_sample
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"monitor-{container_id[:8]}", daemon=True)
        self.latest: dict[str, Any] | None = None

    def __enter__(self) -> ResourceMonitor:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        previous = resources.sample(self._container_id)
        while not self._stopped.wait(self._interval_s):
            current = resources.sample(self._container_id)
            if current is None:
                return  # no cgroup visible from here (e.g. a worker inside a container)
            figures = {
                "elapsedMs": int((time.monotonic() - self._started) * 1000),
                "cpuPercent": resources.cpu_percent(previous, current) if previous else None,
                "memoryBytes": current.memory_bytes,
                "diskBytes": current.disk_bytes,
            }
            previous = current
            self.latest = figures
            try:
                self._on_sample(figures)
            except Exception:  # a failed report must not stop the job
                pass
