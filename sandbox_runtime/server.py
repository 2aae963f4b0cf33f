"""The runtime's main loop: read requests on stdin, answer on stdout."""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import os
import re
import sys
import traceback

from sandbox_runtime import decoding, files, protocol
from sandbox_runtime.supervisor import Supervisor

STDIN_FD = 0
STDOUT_FD = 1


def preload(modules: list[str]) -> dict[str, str]:
    """Import the listed modules once, so every kernel gets them for free; returns failures by name."""
    failures: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a missing optional library must not stop the sandbox
            failures[name] = f"{type(exc).__name__}: {exc}"
    return failures


def installed_distributions(lib_dir: str) -> dict[str, str]:
    """Canonical name -> version of every distribution in lib_dir (the image's preinstalled libraries)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=[lib_dir]):
        name = dist.metadata["Name"]
        if name:
            found[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
    return found


def _emit(message: protocol.Event) -> None:
    protocol.write_message(STDOUT_FD, message)


def serve(*, preload_modules: list[str], wipe_paths: list[str], keep_state: bool) -> None:
    """Answer requests until stdin closes; keep_state: one interpreter for every request (a session).

    After each stateless request the sandbox is reset (no process, file or IPC object of the job is
    left) and a `reset` event says whether that worked: the worker hands the sandbox to the next job only
    after a successful one, and the runtime stops after a failed one.
    """
    # matplotlib renders with Agg and hands every figure to the kernel (see plotting.py).
    os.environ["MPLBACKEND"] = "module://sandbox_runtime.plotting"
    supervisor = Supervisor(emit=_emit, wipe_paths=wipe_paths, keep_state=keep_state)
    if preload_modules and not keep_state:
        supervisor.start_light_parent()  # before the preloads: it forks the kernels of light code
    failed = preload(preload_modules)
    # Kernels are forked from this process: frozen objects are never traversed by the kernels' garbage
    # collector, so their memory pages stay shared instead of being copied on first touch.
    gc.freeze()
    survivors = supervisor.reset()
    if survivors:
        _emit(protocol.Fatal(f"could not reset the sandbox: {survivors[:5]}"))
        return
    control = protocol.LineReader(STDIN_FD)
    _emit(protocol.Ready(pid=os.getpid(), python=sys.version.split()[0], preload_failed=failed,
                         packages=installed_distributions(os.environ.get("PENNY_LIB", "/opt/penny/lib"))))
    held = False  # a stateless request's workspace kept for its output files until `release`
    while (line := control.read_line()) is not None:
        try:
            request = decoding.decode_request(line)
        except protocol.ProtocolError as exc:
            _emit(protocol.Fatal(f"invalid request: {exc}"))
            return
        if held and isinstance(request, protocol.Exec | protocol.Release):
            held = False
            if not _reset(supervisor):
                return
        if isinstance(request, protocol.Exec):
            _emit(supervisor.run(request, control))
            if not keep_state:
                held = request.hold
                if not held and not _reset(supervisor):
                    return
        elif isinstance(request, protocol.Ping):
            _emit(protocol.Pong())
        elif isinstance(request, protocol.Restart):
            _emit(supervisor.restart(request))
        elif isinstance(request, protocol.FileList | protocol.FileRead | protocol.FileWrite | protocol.FileDelete
                        | protocol.FileFind):
            # Between requests only (one at a time): the supervisor itself, never the user's kernel.
            _emit(files.handle(wipe_paths[0], request))
        # a cancel that arrives after its job ended is moot


def _reset(supervisor: Supervisor) -> bool:
    """Reset the sandbox after a stateless request and say so; False if it is not clean (stop serving)."""
    survivors = supervisor.reset()
    _emit(protocol.Reset(ok=not survivors, survivors=tuple(survivors[:20])))
    return not survivors


def main() -> None:
    """Container entry point; configuration comes from PENNY_* environment variables."""
    modules = [m for m in os.environ.get("PENNY_PRELOAD", "").split(",") if m.strip()]
    wipe_paths = [p for p in os.environ.get("PENNY_WIPE_PATHS", "/workspace:/tmp").split(":") if p]
    keep_state = os.environ.get("PENNY_MODE", "stateless") == "session"
    try:
        serve(preload_modules=modules, wipe_paths=wipe_paths, keep_state=keep_state)
    except Exception:
        traceback.print_exc()
        _emit(protocol.Fatal("the runtime failed; see the container log"))
        raise SystemExit(1) from None
