"""The Celery app Flower watches: `celery -A workers.flower_app flower ...`.

Flower takes the broker from a Celery app; building it from Settings gives Flower REDIS_URL's credentials and,
for rediss://, broker_use_ssl with REDIS_TLS_* (a `--broker=rediss://...` alone would skip certificate
checks), and keeps the password out of the command line (`ps` shows it to every user of the machine).
"""

from __future__ import annotations

import sys

from core.errors import ConfigError
from core.settings import Settings
from workers.celery_app import broker_app

try:
    _settings = Settings.from_env()
except ConfigError as exc:
    sys.exit(f"penny-flower: {exc}")

# Celery's -A finds the app as a module attribute named `app`.
app = broker_app("penny-flower", _settings)
