"""The worker host: the Celery app, the execute task, and the warm pool of sandbox containers."""
