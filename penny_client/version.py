"""The client's version: the installed distribution's (penny-sandbox), as `penny --version` and the User-Agent say."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "penny-sandbox"


def installed_version() -> str:
    """The version of the installed penny-sandbox distribution, or `0+unknown` when run from a bare tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


VERSION = installed_version()
