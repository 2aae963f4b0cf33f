"""The `id` URL converter: a route's job or session id matches core.ids.ID_PATTERN, or the route does not
match at all (404 with the JSON envelope, before any Redis call)."""

from __future__ import annotations

from werkzeug.routing import BaseConverter

from core.ids import ID_PATTERN


class IdConverter(BaseConverter):
    """`<id:job_id>`: 32 lowercase hexadecimal digits."""

    regex = ID_PATTERN
    part_isolating = True
