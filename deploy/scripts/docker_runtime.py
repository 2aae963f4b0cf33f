"""Register a container runtime in dockerd's daemon.json, merged into what is already there.

Usage: python3 docker_runtime.py DAEMON_JSON NAME PATH [RUNTIME_ARG ...]

Keeps every other key and every other runtime; rewrites the file (atomically, same mode) only when NAME's
entry differs from {"path": PATH, "runtimeArgs": [...]}. Exit status 0 and "unchanged" or "updated" on
stdout; 2 when the file is not a JSON object (it is never overwritten then). Standard library only: it runs
with the system's python3 before any virtualenv exists.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def merged(config: dict[str, Any], name: str, path: str, args: list[str]) -> dict[str, Any]:
    """config with runtimes[name] set to path and args (a new dict; config is not changed)."""
    runtimes = dict(config.get("runtimes") or {})
    runtimes[name] = {"path": path, "runtimeArgs": args}
    return {**config, "runtimes": runtimes}


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    target, name, path, args = Path(argv[0]), argv[1], argv[2], argv[3:]
    text = target.read_text() if target.exists() else ""
    try:
        config = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        print(f"{target} is not valid JSON ({error}): left alone", file=sys.stderr)
        return 2
    if not isinstance(config, dict):
        print(f"{target} does not hold a JSON object: left alone", file=sys.stderr)
        return 2
    wanted = merged(config, name, path, args)
    if wanted == config:
        print("unchanged")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=f".{target.name}.", delete=False) as out:
        json.dump(wanted, out, indent=2)
        out.write("\n")
    os.chmod(out.name, mode)
    os.replace(out.name, target)
    print("updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
