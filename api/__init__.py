"""The HTTP API: a Flask app that validates requests, queues jobs and relays their events."""
