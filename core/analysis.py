"""CodeAnalyzer: static analysis of user code against the import and filesystem policies (AST, never regex).

Rules (each finding has line, col, rule, message):
    syntax_error          the code does not parse
    blocked_import        `import a.b`, `from a import b`, `__import__('a')`, `importlib.import_module('a')` of a
                          module the import policy does not allow (`allowed` is an allowlist), and a module
                          reached as another module's attribute (`pathlib.os`, `typing.sys`) that user code
                          could not import
    blocked_builtin       a blocked builtin called or referenced (eval, exec, compile, __import__, ...)
    introspection         attributes that walk out of the language's object model: __subclasses__,
                          __globals__, __builtins__, __code__, __closure__, frame/generator internals
    path_outside_policy   (warning) open() of a literal path outside the writable paths
    native_code           (warning) ctypes / cffi use
The container is the security boundary; this is the second layer, and a fast answer for clients.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass

from core.policies import FilesystemPolicy, ImportPolicy

INTROSPECTION_ATTRIBUTES = frozenset({
    "__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__mro__", "__bases__",
    "__base__", "__getattribute__", "__reduce__", "__reduce_ex__", "__loader__", "__spec__",
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "gi_frame", "gi_code", "cr_frame", "cr_code",
    "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "co_consts", "func_globals", "cell_contents",
    "__defaults__", "__kwdefaults__",
})
NATIVE_MODULES = frozenset({"ctypes", "cffi", "_ctypes"})
# Modules libraries keep as attributes (pathlib.os, typing.sys, subprocess._posixsubprocess): reaching one
# that way is an import of it.
ALIASED_MODULES = frozenset({
    "os", "sys", "subprocess", "socket", "ctypes", "shutil", "importlib", "builtins", "gc", "signal", "posix",
    "_posixsubprocess", "_signal", "_socket", "_ctypes", "_pickle", "_thread", "_imp", "marshal", "pickle",
    "multiprocessing", "pty", "resource", "inspect", "_io",
})
# Links a literal path may go through, as the run-time layer resolves them (sandbox_runtime.paths).
# Writable mounts outside allowedPaths that the run-time layer refuses to write (README, Security).
UNWRITABLE_SHARED = ("/dev/shm", "/dev/mqueue")
# The kernel's request and result pipes (sandbox_runtime.kernel).
PROTOCOL_FDS = (3, 4)
KNOWN_LINKS = (("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"), ("/dev/stdout", "/proc/self/fd/1"),
               ("/dev/stderr", "/proc/self/fd/2"))
# Python's own compiler refuses such code too (RecursionError during compilation).
TOO_DEEP_MESSAGE = "the code nests too deeply to parse"


@dataclass(frozen=True)
class Finding:
    """One violation or warning, positioned in the code (1-based line, 0-based column)."""

    line: int
    col: int
    rule: str
    message: str


@dataclass(frozen=True)
class Analysis:
    """errors make code invalid (strict mode refuses it); warnings are advice."""

    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...]

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_api(self, *, include_warnings: bool = True) -> dict[str, object]:
        return {"valid": self.valid, "errors": [asdict(f) for f in self.errors],
                "warnings": [asdict(f) for f in self.warnings] if include_warnings else []}


class CodeAnalyzer:
    """Checks code against the policies; pure and cheap (one parse, one walk)."""

    def __init__(self, imports: ImportPolicy, filesystem: FilesystemPolicy) -> None:
        self._imports = imports
        self._filesystem = filesystem

    @property
    def enforced(self) -> bool:
        """The policies block something (else the run-time layer is off, and so is the allowlist here)."""
        return self._imports.blocks_anything or bool(self._filesystem.blocked_paths)

    def analyze(self, code: str) -> Analysis:
        try:
            tree = ast.parse(code, filename="<cell>")
        except SyntaxError as exc:
            finding = Finding(exc.lineno or 1, max(0, (exc.offset or 1) - 1), "syntax_error", exc.msg)
            return Analysis((finding,), ())
        except ValueError as exc:  # NUL bytes
            return Analysis((Finding(1, 0, "syntax_error", str(exc)),), ())
        except (RecursionError, MemoryError):  # the parser's nesting limit ('-' * 10**5 + '1' is a MemoryError)
            return Analysis((Finding(1, 0, "syntax_error", TOO_DEEP_MESSAGE),), ())
        visitor = _Visitor(self._imports, self._filesystem, enforced=self.enforced)
        try:
            visitor.visit(tree)
        except RecursionError:  # parsed, but too deep to walk: nothing can be vouched for
            return Analysis((Finding(1, 0, "syntax_error", TOO_DEEP_MESSAGE),), ())
        return Analysis(tuple(visitor.errors), tuple(visitor.warnings))


class _Visitor(ast.NodeVisitor):
    def __init__(self, imports: ImportPolicy, filesystem: FilesystemPolicy, *, enforced: bool) -> None:
        self._imports = imports
        self._filesystem = filesystem
        self._enforced = enforced
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    def _error(self, node: ast.AST, rule: str, message: str) -> None:
        self.errors.append(Finding(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), rule, message))

    def _warn(self, node: ast.AST, rule: str, message: str) -> None:
        self.warnings.append(Finding(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), rule, message))

    def _module(self, node: ast.AST, module: str) -> None:
        if self._imports.is_blocked(module):
            self._error(node, "blocked_import", f"import of {module!r} is blocked by the import policy")
        elif self._enforced and not self._imports.is_allowed(module):
            self._error(node, "blocked_import", f"import of {module!r} is not allowed by the import policy "
                        "(its 'allowed' list)")
        if module.split(".")[0] in NATIVE_MODULES:
            self._warn(node, "native_code", f"{module!r} calls native code")

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802 (ast's names)
        for alias in node.names:
            self._module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        if node.module and node.level == 0:
            self._module(node, node.module)
            for alias in node.names:
                if self._imports.is_blocked(f"{node.module}.{alias.name}"):
                    self._module(node, f"{node.module}.{alias.name}")
                elif self._enforced and alias.name in ALIASED_MODULES:
                    self._alias(node, alias.name)

    def _alias(self, node: ast.AST, module: str) -> None:
        if self._enforced and (self._imports.is_blocked(module) or not self._imports.is_allowed(module)):
            self._error(node, "blocked_import", f"{module!r} reached as an attribute is a module user code "
                        "may not import (import policy)")

    def visit_Name(self, node: ast.Name) -> None:  # noqa: N802
        if node.id in self._imports.blocked_builtins:
            self._error(node, "blocked_builtin", f"the builtin {node.id!r} is blocked by the import policy")
        elif node.id in INTROSPECTION_ATTRIBUTES:
            self._error(node, "introspection", f"{node.id!r} reaches interpreter internals")

    def visit_Attribute(self, node: ast.Attribute) -> None:  # noqa: N802
        if node.attr in INTROSPECTION_ATTRIBUTES:
            self._error(node, "introspection", f"attribute {node.attr!r} reaches interpreter internals")
        elif node.attr in ALIASED_MODULES:
            self._alias(node, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        literal = _literal_string(node.args[0]) if node.args else None
        name = _call_name(node.func)
        if literal is not None and name in ("__import__", "importlib.import_module", "import_module"):
            self._module(node, literal)
        if name in ("getattr", "setattr", "delattr", "hasattr") and len(node.args) >= 2:
            attribute = _literal_string(node.args[1])
            if attribute in INTROSPECTION_ATTRIBUTES:
                self._error(node, "introspection", f"attribute {attribute!r} reaches interpreter internals")
            elif attribute in ALIASED_MODULES:
                self._alias(node, attribute)
        if name == "open" and node.args and _literal_int(node.args[0]) in PROTOCOL_FDS:
            self._error(node, "blocked_operation", f"fd {_literal_int(node.args[0])} is the kernel's own pipe")
        if literal is not None and literal.startswith("/") and name not in ("open", "io.open"):
            path = _normalized(literal)
            if _under(path, self._filesystem.blocked_paths) or _under(path, UNWRITABLE_SHARED):
                self._warn(node, "path_outside_policy", f"{literal!r} leads to {path!r}, outside the filesystem "
                           "policy")
        if name in ("open", "io.open") and literal is not None and literal.startswith("/"):
            literal = _normalized(literal)
            mode = _literal_string(node.args[1]) if len(node.args) > 1 else None
            for keyword in node.keywords:
                if keyword.arg == "mode":
                    mode = _literal_string(keyword.value)
            writing = mode is not None and any(flag in mode for flag in "wax+")
            if writing and not self._filesystem.is_writable(literal):
                self._warn(node, "path_outside_policy", f"{literal!r} is outside the writable paths "
                           f"({', '.join(self._filesystem.allowed_paths)})")
            elif _under(literal, self._filesystem.blocked_paths) or (writing and _under(literal, UNWRITABLE_SHARED)):
                self._warn(node, "path_outside_policy", f"{literal!r} is under a blocked path")
        self.generic_visit(node)


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _literal_int(node: ast.AST) -> int | None:
    value = node.value if isinstance(node, ast.Constant) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _normalized(path: str) -> str:
    """path with the known links replaced and `.`/`..` taken (what the run-time layer resolves, as far as
    it can be known without the file system)."""
    parts: list[str] = []
    pending = path.split("/")
    pending.reverse()
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
        current = "/" + "/".join(parts)
        for link, target in KNOWN_LINKS:
            if current == link:
                parts = target.strip("/").split("/")
    return "/" + "/".join(parts)


def _literal_string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = _call_name(func.value)
        return f"{base}.{func.attr}" if base else func.attr
    return None
