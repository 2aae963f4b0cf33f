"""The audit hook's functions, as templates: guard.install_audit_hook binds each of them (see
sandbox_runtime.sealed), so at run time they look up no global and no builtin, keep no state between
events, and everything they use is an immutable default (frozensets, tuples, strings, C functions and
the other bound functions). Nothing here keeps a flag: re-entry (the hook's own `sys._getframe` and
`f_code` reads raise events too) is recognised by the frame that raised the event belonging to the
hook's namespace, so it is per-thread by construction.

They never call a method of an object user code made (no `isinstance`, no `==` or hashing of an
argument before its exact type is known; paths are copied to exact `str` first), so no user code runs
while the hook runs.

Frame kinds: 0 a library, 1 user code, 2 a pass-through module (its frames count as their caller's),
3 the policy layer itself (transparent).
"""

from __future__ import annotations

from typing import Any

# ruff: noqa: ANN401 (the bound parameters are typed by what install_audit_hook passes)


def frame_kind(frame: Any, users: Any = None, writable: Any = None, pass_through: Any = None,
               guards: Any = None, type_: Any = None, str_: Any = None) -> int:
    """What runs in frame: 0 library, 1 user code, 2 pass-through, 3 the policy layer."""
    namespace = frame.f_globals
    for guard in guards:
        if namespace is guard:
            return 3
    if frame.f_builtins is users:
        return 1
    name = frame.f_code.co_filename
    if type_(name) is not str_:
        return 1  # only code made on purpose has a str subclass as its file name
    if name in pass_through:
        return 2
    if name.startswith("<"):
        return 0 if name.startswith("<frozen ") else 1  # code compiled from a string
    for root in writable:
        if name.startswith(root):
            return 1  # a module user code wrote and imported
    return 0


def who(frame: Any, anywhere: bool, kind: Any = None, main: Any = None, ident: Any = None) -> tuple[bool, bool]:
    """(nearest, any) for the stack from frame down: is the first frame that is neither pass-through nor
    the policy layer user code; is any frame user code. A thread user code started counts as user code
    (the kernel starts none). With anywhere False the walk stops at the first library frame."""
    nearest = 0  # 0 not known yet, 2 a library
    while frame is not None:
        found = kind(frame)
        if found == 1:
            return (nearest == 0, True)
        if found == 0 and nearest == 0:
            nearest = 2
            if not anywhere:
                return (False, False)
        frame = frame.f_back
    threaded = ident() != main
    return (nearest == 0 and threaded, threaded)


def first_library_file(frame: Any, kind: Any = None) -> Any:
    """The file name of the first library frame from frame down (None if user code comes first)."""
    while frame is not None:
        found = kind(frame)
        if found == 1:
            return None
        if found == 0:
            return frame.f_code.co_filename
        frame = frame.f_back
    return None


def as_text(raw: Any, type_: Any = None, str_: Any = None, bytes_: Any = None, int_: Any = None,
            issubclass_: Any = None, copy: Any = None, decode: Any = None, index: Any = None,
            pathlib_types: Any = None, pathlib_text: Any = None) -> Any:
    """A path argument as an exact str, an int (a file descriptor), None (no path), or False (a path
    object whose path cannot be known without running its own code)."""
    kind = type_(raw)
    if kind is str_:
        return raw
    if raw is None:
        return None
    if kind is int_:
        return raw
    if kind is bytes_:
        return decode(raw, "utf-8", "surrogateescape")
    if issubclass_(kind, str_):
        return copy(raw)
    if issubclass_(kind, bytes_):
        return decode(raw, "utf-8", "surrogateescape")
    if issubclass_(kind, int_):
        return index(raw)
    for known in pathlib_types:
        if kind is known:
            return pathlib_text(raw)
    return False


def pathlib_text(path: Any, type_: Any = None, str_: Any = None, copy: Any = None, fspath: Any = None,
                 to_str: Any = None, slot: Any = None, slot_get: Any = None, attribute_error: Any = None,
                 issubclass_: Any = None) -> Any:
    """The path a pathlib object gave when it was opened (its cached `_str`), if pathlib's classes are as
    they were when the hook was installed; else False."""
    kind = type_(path)
    if kind.__fspath__ is not fspath or kind.__str__ is not to_str or kind._str is not slot:
        return False
    try:
        text = slot_get(path, kind)
    except attribute_error:
        return False
    if type_(text) is str_:
        return text
    return copy(text) if issubclass_(type_(text), str_) else False


def under(path: str, roots: Any) -> bool:
    """path is one of roots (each without a trailing slash) or inside one."""
    for root in roots:
        if path == root or path.startswith(root + "/"):
            return True
    return False


def violation(rule: str, target: str, message: str, record: Any = None, new: Any = None, init: Any = None,
              error: Any = None) -> Any:
    """Record the refusal; the PolicyViolationError to raise (made without running its class's Python
    code: a patched __init__ must not run inside the hook)."""
    record({"rule": rule, "target": target, "message": message})
    text = "policy violation: " + message
    exc = new(error, text)
    init(exc, text)
    return exc


def path_error(path: str, message: str, new: Any = None, init: Any = None, error: Any = None) -> Any:
    """The FilesystemPolicyError (a PermissionError, errno 1) for path."""
    exc = new(error, 1, message, path)
    init(exc, 1, message, path)
    return exc


def check_path(raw: Any, dir_fd: Any, writes: bool, follow: bool, frame: Any, as_text: Any = None,
               type_: Any = None, int_: Any = None, str_: Any = None, index: Any = None, cwd: Any = None,
               readlink: Any = None, oserror: Any = None, resolve: Any = None, resolve_parent: Any = None,
               under: Any = None, who: Any = None, violation: Any = None, path_error: Any = None,
               writable: Any = None, writable_text: Any = None, blocked: Any = None, library: Any = None,
               protocol_fds: Any = None, devices: Any = None, policy: Any = None) -> None:
    """Raise if the path user code (or anyone, for writes) asks for is outside the filesystem policy."""
    path = as_text(raw)
    if path is None:
        return
    if type_(path) is int_:
        for fd in protocol_fds:
            if path == fd:
                raise violation("blocked_operation", "fd " + str_(fd),
                                "the kernel's own pipe (fd " + str_(fd) + ") is not for user code")
        if not writes:
            return  # reading through a descriptor opened earlier: its path was judged then
        try:
            path = readlink("/proc/self/fd/" + str_(path))
        except oserror:
            return
        if not path.startswith("/"):
            return  # a pipe or socket the process already holds (stdout, stderr)
    if path is False:
        if writes or who(frame, False)[0]:
            kind = "a path object of an unknown type"
            raise path_error(kind, kind + " cannot be checked against " + policy + ": pass a str or pathlib.Path")
        return
    if not writes and not who(frame, False)[0]:
        return  # libraries read for themselves (known limit: also what they read for user code)
    fd = None if dir_fd is None else index(dir_fd)
    base = cwd() if fd is None or fd < 0 else "/proc/self/fd/" + str_(fd)  # events say -1 for no dir_fd
    real = resolve(path, base) if follow else resolve_parent(path, base)
    if writes:
        if under(real, writable) or under(real, devices):
            return
        raise path_error(real, real + " is read-only: only " + writable_text + " are writable (allowedPaths of "
                         + policy + ")")
    if under(real, library) or not under(real, blocked) or under(real, writable):
        return
    raise path_error(real, real + " is not accessible: blockedPaths of " + policy)


def judge(event: str, args: tuple[Any, ...], frame: Any, type_: Any = None, str_: Any = None, len_: Any = None,
          function_type: Any = None, frame_type: Any = None, guards: Any = None, who: Any = None,
          first_library_file: Any = None, violation: Any = None, check_path: Any = None,
          int_: Any = None, write_flags: Any = None, violation_event: Any = None, process_events: Any = None,
          walker_events: Any = None, ctypes_events: Any = None, ctypes_libraries: Any = None,
          closed_modules: Any = None, nearest_events: Any = None, path_event_names: Any = None,
          path_events: Any = None, denied_setattr: Any = None, imports_policy: Any = None) -> None:
    """Raise (after recording it) if the event is refused; see guard.py for the rules."""
    if event == violation_event:
        if len_(args) == 3:
            rule, target, message = args
            if type_(rule) is str_ and type_(target) is str_ and type_(message) is str_:
                violation(rule, target, message)  # recorded; the caller raises its own error
        return
    if event in process_events:
        raise violation("blocked_operation", event, event + " is refused in the sandbox by " + imports_policy)
    if event in walker_events:
        raise violation("introspection", event, event + " is refused in the sandbox by " + imports_policy)
    if event in ctypes_events:
        if not who(frame, True)[1]:
            return  # no user code on the stack: the kernel's own business
        name = first_library_file(frame)
        if name is not None and type_(name) is str_:
            for library in ctypes_libraries:
                if name.endswith(library):
                    return  # a library's own native calls (numpy's arr.ctypes, threadpoolctl)
        raise violation("blocked_operation", event, event + " is blocked for user code by " + imports_policy)
    if event == "import" or event == "penny.create_module":
        module: Any = args[0] if len_(args) else None
        if type_(module) is str_ and module in closed_modules:
            raise violation("blocked_import", module, "a fresh copy of '" + module + "' is refused in the sandbox by "
                            + imports_policy)
        return
    if event == "open":
        mode, flags = args[1], args[2]
        if type_(mode) is str_:
            writes = "w" in mode or "a" in mode or "x" in mode or "+" in mode
        else:
            writes = type_(flags) is not int_ or flags & write_flags != 0
        check_path(args[0], None, writes, True, frame)
        return
    if event in path_event_names:
        for name, position, dir_position, writes, follow in path_events:
            if name == event and position < len_(args):
                dir_fd = args[dir_position] if 0 <= dir_position < len_(args) else None
                check_path(args[position], dir_fd, writes, follow, frame)
        return
    if event == "object.__getattr__" or event == "object.__setattr__":
        target = args[0]
        attribute = args[1] if len_(args) > 1 and type_(args[1]) is str_ else "?"
        if type_(target) is function_type:
            namespace = target.__globals__
            for guard in guards:
                if namespace is guard:
                    what = "the policy layer's own " + attribute
                    raise violation("introspection", what, what + " is refused in the sandbox by " + imports_policy)
        if event == "object.__setattr__":
            if attribute in denied_setattr and who(frame, False)[0]:
                raise violation("introspection", attribute, "setting " + attribute + " is blocked by "
                                + imports_policy)
            return
        if who(frame, False)[0]:
            what = event + " " + attribute
            raise violation("introspection", what, what + " is blocked for user code by " + imports_policy)
        return
    if event in nearest_events and who(frame, False)[0]:
        rule = "blocked_operation" if event.startswith("marshal.") else "introspection"
        raise violation(rule, event, event + " is blocked for user code by " + imports_policy)


def hook(event: str, args: tuple[Any, ...], watched: Any = None, own: Any = None, getframe: Any = None,
         judge: Any = None) -> None:
    """The audit hook (PEP 578)."""
    if event not in watched:
        return
    if event == "sys._getframe":
        if args[0].f_globals is own:
            return  # the hook's own getframe(0) below
    elif event == "object.__getattr__":
        if getframe(0).f_back.f_globals is own:
            return  # the hook reading f_code of a frame it walks
    judge(event, args, getframe(0).f_back)
