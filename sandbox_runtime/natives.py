"""Native functions that raise no audit event, closed in the kernel before user code runs.

The audit hook can only judge what raises an event. These do not, so they are replaced in their modules
(every alias of a module is the same module object: `subprocess._posixsubprocess`, `pathlib.os`,
`typing.sys` all see the replacement):

- `_posixsubprocess.fork_exec` (starts a program), `_signal.pidfd_send_signal` / `signal.pidfd_send_signal`
  (signals a process), `os.mkfifo` / `os.mknod` (create special files anywhere writable): replaced by
  functions that raise the audit event `penny.<name>`, which the hook refuses whoever asks. The kernel
  never does any of these; the originals are dropped.
- `os.open`: its `open` audit event does not say `dir_fd`, so the replacement opens
  `/proc/self/fd/<dir_fd>/<path>` instead (the same file, through the directory's magic link): the event
  then names a path the hook can resolve.
- `_imp.create_builtin` / `_imp.create_dynamic` (a fresh copy of a native module, e.g. a pristine
  `_posixsubprocess`, raises no event either): they raise `penny.create_module` (name) first, and create
  the module from a copy of the spec's name and origin, so what was judged is what gets created.

The originals kept (os.open, the two `_imp` functions) live only in the code constants of a sealed
"vault" (see sandbox_runtime.sealed) that does the whole job, checks included: calling a vault directly
is no different from calling the replacement. A vault hands back (ok, value) and strips the traceback
of an exception, so no traceback ever keeps a vault's frame.
"""

from __future__ import annotations

import _imp
import _posixsubprocess
import _signal
import operator
import os
import posix
import signal
import sys
import types
from typing import Any

from sandbox_runtime.sealed import compiled, seal

REFUSED = (
    # (module, attribute, audit event)
    (_posixsubprocess, "fork_exec", "penny.fork_exec"),
    (_signal, "pidfd_send_signal", "penny.pidfd_send_signal"),
    (signal, "pidfd_send_signal", "penny.pidfd_send_signal"),
    (posix, "mkfifo", "penny.mkfifo"),
    (os, "mkfifo", "penny.mkfifo"),
    (posix, "mknod", "penny.mknod"),
    (os, "mknod", "penny.mknod"),
)
CREATE_MODULE_EVENT = "penny.create_module"

_REFUSAL = '''
def {name}(*args, **kwargs):
    "@audit"("{event}")
    raise "@error"("{name} is not available in the sandbox")
'''

_OPEN_VAULT = '''
def vault(path, flags, mode, dir_fd):
    try:
        path = "@fspath"(path)
        if "@isinstance"(path, "@bytes"):
            path = "@decode"(path, "utf-8", "surrogateescape")
        if dir_fd is not None and not "@startswith"(path, "/"):
            path = "/proc/self/fd/" + "@str"("@index"(dir_fd)) + "/" + "@copy"(path)
        return (True, "@original"(path, flags, mode))
    except "@base" as exc:
        return (False, exc.with_traceback(None))
'''

_OS_OPEN = '''
def open(path, flags, mode=0o777, *, dir_fd=None):
    ok, value = "@vault"(path, flags, mode, dir_fd)
    if ok:
        return value
    raise value
'''

# The spec the original sees is a copy: exact strings in a SimpleNamespace (an immutable type).
_CREATE_VAULT = '''
def vault(spec, file):
    try:
        values = {}
        for key in ("name", "origin", "parent"):
            value = "@getattr"(spec, key, None)
            if value is not None and not "@isinstance"(value, "@str"):
                raise "@typeerror"("spec." + key + " must be a str")
            values[key] = None if value is None else "@copy"(value)
        if values["name"] is None:
            raise "@typeerror"("spec.name must be a str")
        values["loader"] = "@getattr"(spec, "loader", None)
        values["submodule_search_locations"] = "@getattr"(spec, "submodule_search_locations", None)
        clean = "@simple"(**values)
        "@audit"("penny.create_module", values["name"])
        if file is None:
            return (True, "@original"(clean))
        return (True, "@original"(clean, file))
    except "@base" as exc:
        return (False, exc.with_traceback(None))
'''

_CREATE = '''
def {name}(spec, file=None):
    ok, value = "@vault"(spec, file)
    if ok:
        return value
    raise value
'''


def precompile(*, filename: str) -> None:
    """Compile the replacements close_natives makes (sealed.compiled caches them), so the kernels forked
    afterwards only bind them: a few milliseconds less per kernel."""
    for _module, attribute, event in REFUSED:
        compiled(_REFUSAL.format(name=attribute, event=event), attribute, filename)
    compiled(_OPEN_VAULT, "vault", filename)
    compiled(_OS_OPEN, "open", filename)
    compiled(_CREATE_VAULT, "vault", filename)
    for name in ("create_builtin", "create_dynamic"):
        compiled(_CREATE.format(name=name), name, filename)


def close_natives(namespace: dict[str, Any], *, filename: str) -> None:
    """Replace the functions above in their modules; the new functions run in namespace (the hook knows
    their frames and functions by it); filename: what their frames say they run."""
    audit = sys.audit
    for module, attribute, event in REFUSED:
        if hasattr(module, attribute):
            source = _REFUSAL.format(name=attribute, event=event)
            refusal = seal(source, attribute, namespace, filename=filename, audit=audit, error=PermissionError)
            setattr(module, attribute, refusal)
    open_vault = seal(_OPEN_VAULT, "vault", namespace, filename=filename, fspath=posix.fspath,
                      isinstance=isinstance, bytes=bytes, decode=bytes.decode, startswith=str.startswith, str=str,
                      index=operator.index, copy=str.__str__, original=posix.open, base=BaseException)
    posix.open = os.open = seal(_OS_OPEN, "open", namespace, filename=filename, vault=open_vault)
    for name in ("create_builtin", "create_dynamic"):
        vault = seal(_CREATE_VAULT, "vault", namespace, filename=filename, getattr=getattr,
                     isinstance=isinstance, str=str, typeerror=TypeError, copy=str.__str__,
                     simple=types.SimpleNamespace, audit=audit, original=getattr(_imp, name), base=BaseException)
        setattr(_imp, name, seal(_CREATE.format(name=name), name, namespace, filename=filename, vault=vault))
