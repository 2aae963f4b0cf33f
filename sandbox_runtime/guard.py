"""The policy layer inside the sandbox: what the *user's* code may import, call and open.

The container is the security boundary; this is the second layer, and it must never get in the way of
the libraries (numpy, pandas and matplotlib import os and sys and open files of their own). So it looks
only at what user code does itself:

- User code runs with its own builtins dict. Python takes `import` from the builtins of the frame that
  executes it, so every import written in a cell, in a function the user defined, or in a string the user
  exec'd goes through the guarded `__import__`, and imports made inside libraries do not. Blocked builtins
  (eval, exec, ...) are replaced by functions that refuse.
- An audit hook (PEP 578) refuses the dangerous operations when the frame that asks is user code (its
  builtins are the user's dict), directly or through the standard library's thin wrappers (pathlib,
  socket, ctypes...): ctypes, sockets, frame and code introspection, new code objects, exec/compile, and
  files outside the filesystem policy. Starting programs and signalling processes are refused in the
  kernel altogether (the kernel never does either; a library doing it for user code is user code doing
  it). So a module the user got hold of through introspection (a `__subclasses__` walk) still cannot be
  *used* for those operations.
- The hook cannot be monkeypatched away: audit hooks cannot be removed, and everything it consults was
  captured in its closure when it was installed (no module global, no builtin, no attribute it looks up
  later), and the hook function itself is referenced by nothing user code can reach.
- Libraries are bounded by the container alone: pandas reading a file for the user is not policed here.

A refused import, builtin or operation is recorded (through the audit event `penny.violation`, so user
code cannot erase the record through the objects it can reach) and the job ends `policy_violation`, even
if the code caught the exception; a refused file access is a PermissionError naming the policy.
"""

from __future__ import annotations

import _thread
import builtins
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

IMPORTS_POLICY = "policies/imports.json"
FILESYSTEM_POLICY = "policies/filesystem.json"
VIOLATION_EVENT = "penny.violation"

# Starting programs and signalling processes: refused in the kernel unless a library is being imported
# (matplotlib runs fc-list while it builds its font cache): the kernel itself never does either, and a
# library doing it while user code runs does it for user code.
PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "subprocess.Popen", "pty.spawn", "os.startfile",
})
# Operations user code never performs itself, directly or through the standard library's thin wrappers
# (libraries may: scikit-learn's threadpoolctl loads libraries with ctypes).
DENIED_EVENTS = frozenset({
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function", "ctypes.addressof",
    "ctypes.string_at", "ctypes.wstring_at", "ctypes.create_string_buffer", "ctypes.seh_exception",
    "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile", "sys.addaudithook",
    "function.__new__", "code.__new__", "object.__getattr__", "exec", "compile",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "marshal.loads", "marshal.load",
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
})
# object.__setattr__ (raised when attributes of classes are set) is refused only for these names, and for
# any attribute of the runtime's own classes.
DENIED_SETATTR = frozenset({"__code__", "__globals__", "__builtins__", "__closure__"})
# Events naming a path (or two), and whether they write to it.
PATH_EVENTS = {
    "os.listdir": False, "os.scandir": False, "os.mkdir": True, "os.remove": True, "os.rmdir": True,
    "os.rename": True, "os.symlink": True, "os.link": True, "os.chmod": True, "os.chown": True,
    "os.truncate": True, "os.utime": True, "shutil.rmtree": True, "shutil.copyfile": True,
}
TWO_PATH_EVENTS = frozenset({"os.rename", "os.symlink", "os.link", "shutil.copyfile"})
# Standard modules that only wrap what user code asks for; their frames count as the user's.
PASS_THROUGH_MODULES = frozenset({"pathlib", "io", "_pyio", "codecs", "tempfile", "fileinput", "os", "shutil",
                                  "glob", "socket", "ctypes", "ctypes.util", "subprocess", "pty", "posixpath",
                                  "threading"})
# The interpreter's and the libraries' own files: never policed (reading them is how imports work).
LIBRARY_ROOTS = ("/opt/penny", "/usr")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class PolicyViolationError(ImportError):
    """User code used a module, builtin or operation the policy blocks (an ImportError, so the usual
    `try: import x / except ImportError` fallbacks keep working)."""


class FilesystemPolicyError(PermissionError):
    """User code touched a path the filesystem policy does not allow."""


@dataclass(frozen=True)
class RuntimePolicy:
    """What the worker passes in PENNY_POLICY (from policies/imports.json and policies/filesystem.json)."""

    blocked_modules: frozenset[str] = frozenset()
    blocked_builtins: frozenset[str] = frozenset()
    blocked_paths: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ("/workspace", "/tmp")

    @classmethod
    def from_json(cls, raw: str | None) -> RuntimePolicy:
        data = json.loads(raw) if raw else {}
        return cls(frozenset(data.get("blockedModules", [])), frozenset(data.get("blockedBuiltins", [])),
                   tuple(data.get("blockedPaths", [])), tuple(data.get("writablePaths", ["/workspace", "/tmp"])))

    @property
    def active(self) -> bool:
        return bool(self.blocked_modules or self.blocked_builtins or self.blocked_paths)


def user_builtins(policy: RuntimePolicy) -> dict[str, Any]:
    """A copy of the builtins for user code: the guarded `__import__`, and the blocked builtins refused.

    The functions put here reach nothing mutable the audit hook relies on: a violation is reported by
    raising the audit event, which only the hook records.
    """
    blocked = policy.blocked_modules
    real_import = builtins.__import__
    audit = sys.audit

    def refuse(rule: str, target: str, message: str) -> PolicyViolationError:
        audit(VIOLATION_EVENT, rule, target, message)
        return PolicyViolationError(f"policy violation: {message}")

    def check(name: str, *, submodule_only: bool = False) -> None:
        parts = name.split(".")
        for end in (len(parts),) if submodule_only else range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in blocked:
                raise refuse("blocked_import", prefix, f"import of '{prefix}' is blocked by {IMPORTS_POLICY}")

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                       level: int = 0) -> Any:
        if level == 0:
            check(name)
            for item in fromlist or ():
                if isinstance(item, str) and item != "*":
                    check(f"{name}.{item}", submodule_only=True)
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


def install_audit_hook(policy: RuntimePolicy, users: dict[str, Any],
                       record: Callable[[dict[str, Any]], None]) -> None:
    """Add the audit hook that judges user code (frames whose builtins are `users`); record(violation) is
    called for every refusal. Everything the hook uses is bound here, once: builtins and module globals
    changed later (user code can reach both) change nothing."""
    getframe, fsdecode, getcwd, thread_id = sys._getframe, os.fsdecode, os.getcwd, _thread.get_ident
    main_thread = thread_id()
    isinstance_, getattr_, any_, len_, str_, int_ = isinstance, getattr, any, len, str, int
    process_events, denied_events, path_events = PROCESS_EVENTS, DENIED_EVENTS, dict(PATH_EVENTS)
    two_path_events, pass_through, denied_setattr = TWO_PATH_EVENTS, PASS_THROUGH_MODULES, DENIED_SETATTR
    blocked_paths, writable_paths = policy.blocked_paths, policy.writable_paths
    write_flags, violation_error, fs_error = WRITE_FLAGS, PolicyViolationError, FilesystemPolicyError
    own_globals = globals()
    watched = process_events | denied_events | frozenset(path_events) | {"open", "object.__setattr__",
                                                                          VIOLATION_EVENT}
    busy = [False]

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any_(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    # Libraries: the import path as it is now (before any user code), without what user code can write.
    library_roots = LIBRARY_ROOTS + tuple(entry for entry in sys.path
                                          if entry.startswith("/") and not under(entry, writable_paths))

    def normalize(raw: Any) -> str | None:
        if raw is None or isinstance_(raw, int_):
            return None  # an fd: its path was checked when it was opened
        path = fsdecode(raw)
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        parts: list[str] = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/" + "/".join(parts)

    def raising_frame() -> FrameType | None:
        frame: FrameType | None = getframe(1)
        while frame is not None and frame.f_globals is own_globals:
            frame = frame.f_back  # the hook's own frames
        return frame

    def is_user(frame: FrameType) -> bool:
        """User code: run with the user's builtins; or from a file user code wrote (/workspace is on the path:
        a module written there imports with the real builtins, but its frames are still the user's); or code
        compiled from a string by a library (timeit, cProfile.run, pdb.run run strings the user passed in
        namespaces with the real builtins). Only the frozen import machinery is exempt."""
        filename = frame.f_code.co_filename
        return (frame.f_builtins is users or under(filename, writable_paths)
                or (filename.startswith("<") and not filename.startswith("<frozen ")))

    def by_user() -> bool:
        """The frame that raised the event is user code, or a pass-through module called by user code (or
        by a thread user code started: the kernel starts none)."""
        frame = raising_frame()
        while frame is not None:
            if is_user(frame):
                return True
            if frame.f_globals.get("__name__") not in pass_through:
                return False
            frame = frame.f_back
        return thread_id() != main_thread

    def importing_library() -> bool:
        """A library module's import is in progress below the raising frame, and no user code runs above it."""
        frame = raising_frame()
        while frame is not None:
            if is_user(frame):
                return False
            if frame.f_code.co_name == "<module>" and under(frame.f_code.co_filename, library_roots):
                return True
            frame = frame.f_back
        return False

    def refuse(rule: str, target: str, message: str) -> PolicyViolationError:
        record({"rule": rule, "target": target, "message": message})
        return violation_error(f"policy violation: {message}")

    def check_path(raw: Any, writes: bool) -> None:
        path = normalize(raw)
        if path is None or (not writes and under(path, library_roots)) or not by_user():
            return
        if under(path, blocked_paths) and not under(path, writable_paths):
            raise fs_error(1, f"{path} is not accessible: blockedPaths of {FILESYSTEM_POLICY}", path)
        if writes and not under(path, writable_paths):
            raise fs_error(1, f"{path} is read-only: only {', '.join(writable_paths)} are writable "
                              f"(allowedPaths of {FILESYSTEM_POLICY})", path)

    def judge(event: str, args: tuple[Any, ...]) -> None:
        if event == VIOLATION_EVENT:
            if len_(args) == 3:
                record({"rule": args[0], "target": args[1], "message": args[2]})
        elif event in process_events:
            if importing_library():
                return
            raise refuse("blocked_operation", event, f"{event} is blocked in the sandbox by {IMPORTS_POLICY}")
        elif event == "open":
            mode, flags = args[1], args[2]
            writes = (any_(c in mode for c in "wax+") if isinstance_(mode, str_)
                      else isinstance_(flags, int_) and bool(flags & write_flags))
            check_path(args[0], writes)
        elif event in path_events:
            for raw in (args[:2] if event in two_path_events else args[:1]):
                check_path(raw, path_events[event])
        elif event == "object.__setattr__":
            own = isinstance_(args[0], type) and str_(getattr_(args[0], "__module__", "")).startswith(
                "sandbox_runtime")
            if len_(args) > 1 and (args[1] in denied_setattr or own) and by_user():
                raise refuse("introspection", str_(args[1]), f"setting {args[1]} is blocked by {IMPORTS_POLICY}")
        elif event in denied_events and by_user():
            target = f"{event} {args[1]}" if event == "object.__getattr__" and len_(args) > 1 else event
            rule = "blocked_operation" if event.startswith(("ctypes.", "socket.", "marshal.")) else "introspection"
            raise refuse(rule, target, f"{target} is blocked for user code by {IMPORTS_POLICY}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in watched or busy[0]:
            return
        busy[0] = True  # the hook's own getframe() raises an event too
        try:
            judge(event, args)
        finally:
            busy[0] = False

    sys.addaudithook(hook)
