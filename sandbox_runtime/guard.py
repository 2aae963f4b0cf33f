"""The policy layer inside the sandbox: what the *user's* code may import, call and open.

The container (and the kernel's seccomp filter) is the security boundary; this is the second layer, and it
must never get in the way of the libraries (numpy, pandas and matplotlib import os and sys and open files
of their own). What it does:

- **Imports: an allowlist.** User code runs with its own builtins dict. Python takes `import` from the
  builtins of the frame that executes it, so every import written in a cell, in a function the user
  defined, or in a string the user exec'd goes through the guarded `__import__`, and imports made inside
  libraries do not. User code may import what `allowed` of policies/imports.json lists (with its
  submodules) and the modules it wrote itself into a writable path; anything else is refused with a
  message naming the policy (`blocked` refuses inside an allowed package too). Blocked builtins (eval,
  exec, ...) are replaced by functions that refuse.
- **Aliases are not closed, what they lead to is.** `pathlib.os`, `typing.sys` and a `__subclasses__` walk
  still reach os and sys: the allowlist is the first answer, not the enforcement. The enforcement is an
  audit hook (PEP 578) that judges operations, whoever reached them: and the native functions that raise
  no audit event (`_posixsubprocess.fork_exec`, `pidfd_send_signal`, `mkfifo`, `mknod`, `os.open`'s
  `dir_fd`, fresh copies of native modules) are replaced in their modules before user code runs
  (sandbox_runtime.natives), so every alias sees the replacement.
- **Refused whoever asks** (the kernel never does these once user code may run, so no frame is trusted
  for them; a C function handed to numpy or pandas as a callback is caught too): starting programs and
  signalling processes, sockets, sub-interpreters, fresh copies of closed native modules, and walks of
  the object graph and of other threads' stacks (`gc.get_objects/get_referrers/get_referents`,
  `sys._current_frames`, `sys._current_exceptions`, `sys.settrace/setprofile`, `sys.addaudithook`),
  reading the code of the policy layer's own functions, and changing them.
- **Refused while user code is on the stack** (any frame, not only the nearest, unless the nearest
  library is one that uses ctypes for itself: numpy's `arr.ctypes`, threadpoolctl): ctypes.
- **Refused when user code asks** (the nearest frame that is not a thin standard-library wrapper such as
  pathlib, io, os or shutil is user code; libraries use these for themselves all the time): frame and
  code introspection (`sys._getframe`, `f_code`, `gi_frame`, `tb_frame`, `__code__`), new code and
  function objects, exec/compile, marshal.
- **Files** (sandbox_runtime.paths): a path is resolved before it is judged (`..` taken physically, every
  symlink followed, `/dev/fd/N`, `/proc/self/fd/N`, `/proc/<pid>/...`, `dir_fd`, the working directory);
  writes (by anyone) only under `allowedPaths` (and to /dev/null), so `/dev/shm` and `/dev/mqueue` are not
  writable; reads by user code not under `blockedPaths`. A refusal is a FilesystemPolicyError, a
  PermissionError naming the policy. Libraries' own reads are not policed (known limit: also what they
  read for user code, e.g. `pandas.read_csv('/etc/...')`; only the image's files are there).
- **No reachable state.** The hook's functions keep no flag and no mutable value (sandbox_runtime.sealed,
  sandbox_runtime.audit_hook): re-entry is recognised by the raising frame belonging to the hook, per
  thread; reaching the hook function (which gc refuses) gives nothing to flip; its helpers run in a
  private namespace, so patching this module's globals, the builtins or any module changes nothing.

A refused import, builtin or operation is recorded (the audit event `penny.violation` for the ones refused
outside the hook) through `record`, and the job ends `policy_violation` even if the code caught the
exception. Known limits (the container and the kernel's seccomp filter still hold): numpy can address
raw memory (`__array_interface__`, `arr.ctypes`), which no in-process layer can police; C functions user
code schedules to run later, outside a cell (weakref finalizers, signal handlers), run in the kernel's
context, where only the "whoever asks" rules apply.
"""

from __future__ import annotations

import _stat
import _thread
import builtins
import importlib.machinery
import json
import os
import pathlib
import posix
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox_runtime import audit_hook, paths
from sandbox_runtime.natives import CREATE_MODULE_EVENT, close_natives, precompile
from sandbox_runtime.sealed import bind, private_namespace

IMPORTS_POLICY = "policies/imports.json"
FILESYSTEM_POLICY = "policies/filesystem.json"
VIOLATION_EVENT = "penny.violation"
GUARD_FILENAME = os.path.abspath(__file__)  # the policy layer's frames say they run here (left out of tracebacks)

# Refused whoever asks (the kernel does none of these once user code may run).
PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "subprocess.Popen", "pty.spawn", "os.startfile", "signal.pthread_kill", "penny.fork_exec",
    "penny.pidfd_send_signal", "penny.mkfifo", "penny.mknod", "cpython.PyInterpreterState_New",
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sethostname",
})
WALKER_EVENTS = frozenset({
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames", "sys._current_exceptions",
    "sys.settrace", "sys.setprofile", "sys.addaudithook",
})
# Refused while user code is anywhere on the stack, unless the nearest library is one of CTYPES_LIBRARIES.
CTYPES_EVENTS = frozenset({
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.cdata/buffer",
    "ctypes.call_function", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at",
    "ctypes.create_string_buffer", "ctypes.create_unicode_buffer", "ctypes.get_errno", "ctypes.set_errno",
    "ctypes.get_last_error", "ctypes.set_last_error", "ctypes.PyObj_FromPtr", "ctypes.seh_exception",
})
CTYPES_LIBRARIES = ("/numpy/_core/_internal.py", "/numpy/ctypeslib/_ctypeslib.py", "/threadpoolctl.py",
                    "/scipy/_lib/_ccallback.py")
# Refused when the nearest frame (past pass-through modules) is user code.
NEAREST_EVENTS = frozenset({"exec", "compile", "function.__new__", "code.__new__", "marshal.loads", "marshal.load",
                            "sys._getframe"})
# Native modules of which no fresh copy may be made (see sandbox_runtime.natives).
CLOSED_MODULES = frozenset({
    "_posixsubprocess", "_signal", "_imp", "posix", "_posixshmem", "_multiprocessing", "_xxsubinterpreters",
    "_xxinterpchannels", "_testcapi", "_testinternalcapi", "_testbuffer", "_testmultiphase", "_testsinglephase",
    "_testimportmultiple", "_ctypes_test", "_xxtestfuzz",
})
# object.__setattr__ (raised when __code__, __defaults__, __kwdefaults__ of a function are set) is refused
# for these names when user code asks, and for any name on the policy layer's own functions.
DENIED_SETATTR = frozenset({"__code__"})
# Events naming paths: (event, argument, its dir_fd argument or -1, writes, follow the last symlink).
PATH_EVENTS = (
    ("os.listdir", 0, -1, False, True), ("os.scandir", 0, -1, False, True),
    ("os.mkdir", 0, 2, True, False), ("os.remove", 0, 1, True, False), ("os.rmdir", 0, 1, True, False),
    ("os.rename", 0, 2, True, False), ("os.rename", 1, 3, True, False), ("os.symlink", 1, 2, True, False),
    ("os.link", 0, 2, False, True), ("os.link", 1, 3, True, False), ("os.chmod", 0, 2, True, True),
    ("os.chown", 0, 3, True, True), ("os.utime", 0, 3, True, True), ("os.truncate", 0, -1, True, True),
    ("shutil.rmtree", 0, 1, True, False), ("shutil.copyfile", 0, -1, False, True),
    ("shutil.copyfile", 1, -1, True, True),
)
# Standard modules that only wrap what their caller asks for; their frames count as their caller's.
PASS_THROUGH_MODULES = ("pathlib", "io", "_pyio", "codecs", "tempfile", "fileinput", "os", "shutil", "glob",
                        "socket", "ctypes", "ctypes.util", "subprocess", "pty", "posixpath", "genericpath",
                        "threading")
# The interpreter's and the libraries' own files: reading them is never policed (it is how imports work).
LIBRARY_ROOTS = ("/opt/penny", "/usr")
# Writable whatever allowedPaths says: the null device.
WRITABLE_DEVICES = ("/dev/null",)
# The kernel's request and result pipes (sandbox_runtime.kernel REQUEST_FD, RESULT_FD): never for user code.
PROTOCOL_FDS = (3, 4)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class PolicyViolationError(ImportError):
    """User code used a module, builtin or operation the policy blocks (an ImportError, so the usual
    `try: import x / except ImportError` fallbacks keep working)."""


class FilesystemPolicyError(PermissionError):
    """User code touched a path the filesystem policy does not allow."""


@dataclass(frozen=True)
class RuntimePolicy:
    """What the worker passes in PENNY_POLICY (from policies/imports.json and policies/filesystem.json).

    A policy that blocks nothing (no module, builtin or path) switches the layer off: no allowlist, no hook.
    """

    blocked_modules: frozenset[str] = frozenset()
    blocked_builtins: frozenset[str] = frozenset()
    blocked_paths: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ("/workspace", "/tmp")
    allowed_modules: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, raw: str | None) -> RuntimePolicy:
        data = json.loads(raw) if raw else {}
        return cls(frozenset(data.get("blockedModules", [])), frozenset(data.get("blockedBuiltins", [])),
                   tuple(data.get("blockedPaths", [])), tuple(data.get("writablePaths", ["/workspace", "/tmp"])),
                   frozenset(data.get("allowedModules", [])))

    @property
    def active(self) -> bool:
        return bool(self.blocked_modules or self.blocked_builtins or self.blocked_paths)


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def import_refusal(policy: RuntimePolicy, name: str) -> tuple[str, str] | None:
    """Why user code may not import `name` (target, message), or None if it may (the allowlist and the
    blocked list only; modules user code wrote itself are decided by user_builtins)."""
    parts = name.split(".")
    prefixes = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    for prefix in prefixes:
        if prefix in policy.blocked_modules:
            return prefix, f"import of '{prefix}' is blocked by {IMPORTS_POLICY}"
    if not policy.allowed_modules or any(prefix in policy.allowed_modules for prefix in prefixes):
        return None
    return parts[0], (f"import of '{parts[0]}' is not allowed by {IMPORTS_POLICY} (user code may import "
                      f"the modules its 'allowed' list names)")


def user_builtins(policy: RuntimePolicy) -> dict[str, Any]:
    """A copy of the builtins for user code: the guarded `__import__`, and the blocked builtins refused.

    The guarded import is the first answer, not the enforcement (the real `__import__` is reachable
    through any module's `__builtins__`): a violation is reported by raising the audit event, which only
    the hook records.
    """
    real_import = builtins.__import__
    audit = sys.audit
    enforced = policy.active
    writable = policy.writable_paths
    own_roots = [entry for entry in sys.path if entry.startswith("/") and _under(entry, writable)]
    find_spec = importlib.machinery.PathFinder.find_spec
    modules = sys.modules

    def refuse(rule: str, target: str, message: str) -> PolicyViolationError:
        audit(VIOLATION_EVENT, rule, target, message)
        return PolicyViolationError(f"policy violation: {message}")

    def users_own(top: str) -> bool:
        """A module user code wrote into a writable path (its frames are user code anyway)."""
        module = modules.get(top)
        if module is not None:
            origin = getattr(module, "__file__", None)
            return isinstance(origin, str) and _under(origin, writable)
        return bool(own_roots) and find_spec(top, own_roots) is not None

    def check(name: str) -> None:
        refusal = import_refusal(policy, name)
        if refusal is not None and (name.split(".")[0] in policy.blocked_modules or
                                    refusal[0] in policy.blocked_modules or not users_own(name.split(".")[0])):
            raise refuse("blocked_import", *refusal)

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                       level: int = 0) -> Any:
        if enforced and level == 0:
            check(name)
            for item in fromlist or ():
                if isinstance(item, str) and item != "*":
                    refusal = import_refusal(policy, f"{name}.{item}")
                    if refusal is not None and refusal[0] == f"{name}.{item}":
                        raise refuse("blocked_import", *refusal)
        return real_import(name, globals, locals, fromlist, level)

    def refusing(name: str) -> Callable[..., Any]:
        def refused(*_args: Any, **_kwargs: Any) -> Any:
            raise refuse("blocked_builtin", name, f"the builtin {name}() is blocked by {IMPORTS_POLICY}")

        refused.__name__ = refused.__qualname__ = name
        return refused

    namespace = dict(vars(builtins))
    namespace["__import__"] = guarded_import
    for name in policy.blocked_builtins - {"__import__"}:
        if name in namespace:
            namespace[name] = refusing(name)
    return namespace


def _pass_through_files() -> frozenset[str]:
    """The file names the pass-through modules' code objects carry (frozen or from the standard library)."""
    stdlib = os.path.dirname(os.__file__)
    names: set[str] = set()
    for module in PASS_THROUGH_MODULES:
        relative = module.replace(".", "/")
        names |= {f"<frozen {module}>", f"{stdlib}/{relative}.py", f"{stdlib}/{relative}/__init__.py"}
    return frozenset(names)


def prepare() -> None:
    """In the process kernels are forked from: compile what install_audit_hook seals, once for them all."""
    precompile(filename=GUARD_FILENAME)


def install_audit_hook(policy: RuntimePolicy, users: dict[str, Any],
                       record: Callable[[dict[str, Any]], None]) -> None:
    """Close the unaudited natives, then add the audit hook that judges user code (frames whose builtins
    are `users`, see audit_hook.frame_kind); record(violation) is called once for every refusal.

    Everything the hook uses is bound here, once, as immutable defaults of functions living in a private
    namespace: builtins, module globals and classes changed later (user code can reach all of them)
    change nothing."""
    hook_namespace = private_namespace("audit hook")
    natives_namespace = private_namespace("natives", builtins=vars(builtins))
    close_natives(natives_namespace, filename=GUARD_FILENAME)
    writable = tuple(path.rstrip("/") or "/" for path in policy.writable_paths)
    # Libraries: the import path as it is now (before any user code), without what user code can write.
    library = LIBRARY_ROOTS + tuple(entry.rstrip("/") for entry in sys.path
                                    if entry.startswith("/") and not _under(entry, writable))

    def sealed(template: Callable[..., Any], **values: Any) -> types.FunctionType:
        return bind(template, hook_namespace, filename=GUARD_FILENAME, **values)

    kind = sealed(audit_hook.frame_kind, users=users, writable=tuple(root + "/" for root in writable),
                  pass_through=_pass_through_files(), guards=(hook_namespace, natives_namespace),
                  type_=type, str_=str)
    who = sealed(audit_hook.who, kind=kind, main=_thread.get_ident(), ident=_thread.get_ident)
    slot = pathlib.PurePath.__dict__["_str"]
    pathlib_text = sealed(audit_hook.pathlib_text, type_=type, str_=str, copy=str.__str__,
                          fspath=pathlib.PurePath.__fspath__, to_str=pathlib.PurePath.__str__, slot=slot,
                          slot_get=slot.__get__, attribute_error=AttributeError, issubclass_=issubclass)
    as_text = sealed(audit_hook.as_text, type_=type, str_=str, bytes_=bytes, int_=int, issubclass_=issubclass,
                     copy=str.__str__, decode=bytes.decode, index=int.__index__,
                     pathlib_types=(pathlib.PurePosixPath, pathlib.PosixPath), pathlib_text=pathlib_text)
    under = sealed(audit_hook.under)
    violation = sealed(audit_hook.violation, record=record, new=ImportError.__new__, init=ImportError.__init__,
                       error=PolicyViolationError)
    path_error = sealed(audit_hook.path_error, new=OSError.__new__, init=OSError.__init__,
                        error=FilesystemPolicyError)
    resolve = sealed(paths.resolve, lstat=posix.lstat, readlink=posix.readlink, is_link=_stat.S_ISLNK,
                     oserror=OSError, max_links=paths.MAX_SYMLINKS)
    check_path = sealed(audit_hook.check_path, as_text=as_text, type_=type, int_=int, str_=str,
                        index=int.__index__, cwd=posix.getcwd, readlink=posix.readlink, oserror=OSError,
                        resolve=resolve, resolve_parent=sealed(paths.resolve_parent, resolve=resolve),
                        under=under, who=who, violation=violation, path_error=path_error, writable=writable,
                        writable_text=", ".join(writable), blocked=tuple(p.rstrip("/") for p in policy.blocked_paths),
                        library=library, protocol_fds=PROTOCOL_FDS, devices=WRITABLE_DEVICES,
                        policy=FILESYSTEM_POLICY)
    judge = sealed(audit_hook.judge, type_=type, str_=str, len_=len, function_type=types.FunctionType,
                   frame_type=types.FrameType, guards=(hook_namespace, natives_namespace), who=who,
                   first_library_file=sealed(audit_hook.first_library_file, kind=kind), violation=violation,
                   check_path=check_path, int_=int, write_flags=WRITE_FLAGS, violation_event=VIOLATION_EVENT,
                   process_events=PROCESS_EVENTS, walker_events=WALKER_EVENTS, ctypes_events=CTYPES_EVENTS,
                   ctypes_libraries=CTYPES_LIBRARIES, closed_modules=CLOSED_MODULES, nearest_events=NEAREST_EVENTS,
                   path_event_names=frozenset(event for event, *_ in PATH_EVENTS), path_events=PATH_EVENTS,
                   denied_setattr=DENIED_SETATTR, imports_policy=IMPORTS_POLICY)
    watched = (PROCESS_EVENTS | WALKER_EVENTS | CTYPES_EVENTS | NEAREST_EVENTS
               | frozenset(event for event, *_ in PATH_EVENTS)
               | {"open", "import", CREATE_MODULE_EVENT, "object.__getattr__", "object.__setattr__", VIOLATION_EVENT})
    sys.addaudithook(sealed(audit_hook.hook, watched=watched, own=hook_namespace, getframe=sys._getframe,
                            judge=judge))
