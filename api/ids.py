"""URL converters. `id`: a route's job or session id matches core.ids.ID_PATTERN, or the route does not
match at all (404 with the JSON envelope, before any Redis call). `filepath`: a session file's path, any
characters a file name may hold (Werkzeug's `path` stops at a newline)."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, PathConverter

from core.ids import ID_PATTERN


class IdConverter(BaseConverter):
    """`<id:job_id>`: 32 lowercase hexadecimal digits."""

    regex = ID_PATTERN
    part_isolating = True


class FilePathConverter(PathConverter):
    """`<filepath:file_path>`: like `path` (slashes included, not empty), newlines and other control characters
    too (core.session_files.check_path refuses NUL, `..` and absolute paths)."""

    regex = "[^/](?:.|\\n)*?"
