"""The one shape of a job or session id: 32 lowercase hexadecimal digits (uuid4().hex).

An id from a URL or a body is checked against it before it reaches a Redis key: anything else (another
key's suffix such as `<id>:events`, upper case, too long) is simply not a job or session (404), and never
reaches a key of another type.
"""

from __future__ import annotations

import re

ID_PATTERN = "[0-9a-f]{32}"
_ID = re.compile(ID_PATTERN)


def is_id(value: object) -> bool:
    """Whether value is a well-formed job or session id."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
