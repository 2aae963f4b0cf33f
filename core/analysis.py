"""CodeAnalyzer: static analysis of user code against the import and filesystem policies (AST, never regex).

Rules (each finding has line, col, rule, message):
    syntax_error          the code does not parse
    blocked_import        `import a.b`, `from a import b`, `__import__('a')`, `importlib.import_module('a')`
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
    "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "func_globals",
})
NATIVE_MODULES = frozenset({"ctypes", "cffi", "_ctypes"})


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

    def analyze(self, code: str) -> Analysis:
        try:
            tree = ast.parse(code, filename="<cell>")
        except SyntaxError as exc:
            finding = Finding(exc.lineno or 1, max(0, (exc.offset or 1) - 1), "syntax_error", exc.msg)
            return Analysis((finding,), ())
        except ValueError as exc:  # NUL bytes
            return Analysis((Finding(1, 0, "syntax_error", str(exc)),), ())
        visitor = _Visitor(self._imports, self._filesystem)
        visitor.visit(tree)
        return Analysis(tuple(visitor.errors), tuple(visitor.warnings))


class _Visitor(ast.NodeVisitor):
    def __init__(self, imports: ImportPolicy, filesystem: FilesystemPolicy) -> None:
        self._imports = imports
        self._filesystem = filesystem
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    def _error(self, node: ast.AST, rule: str, message: str) -> None:
        self.errors.append(Finding(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), rule, message))

    def _warn(self, node: ast.AST, rule: str, message: str) -> None:
        self.warnings.append(Finding(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), rule, message))

    def _module(self, node: ast.AST, module: str) -> None:
        if self._imports.is_blocked(module):
            self._error(node, "blocked_import", f"import of {module!r} is blocked by the import policy")
        if module.split(".")[0] in NATIVE_MODULES:
            self._warn(node, "native_code", f"{module!r} calls native code")

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802 (ast's names)
        for alias in node.names:
            self._module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        if node.module and node.level == 0:
            self._module(node, node.module)
            for alias in node.names:
                self._module(node, f"{node.module}.{alias.name}")

    def visit_Name(self, node: ast.Name) -> None:  # noqa: N802
        if node.id in self._imports.blocked_builtins:
            self._error(node, "blocked_builtin", f"the builtin {node.id!r} is blocked by the import policy")
        elif node.id in INTROSPECTION_ATTRIBUTES:
            self._error(node, "introspection", f"{node.id!r} reaches interpreter internals")

    def visit_Attribute(self, node: ast.Attribute) -> None:  # noqa: N802
        if node.attr in INTROSPECTION_ATTRIBUTES:
            self._error(node, "introspection", f"attribute {node.attr!r} reaches interpreter internals")
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
        if name == "open" and literal is not None and literal.startswith("/"):
            mode = _literal_string(node.args[1]) if len(node.args) > 1 else None
            for keyword in node.keywords:
                if keyword.arg == "mode":
                    mode = _literal_string(keyword.value)
            writing = mode is not None and any(flag in mode for flag in "wax+")
            if writing and not self._filesystem.is_writable(literal):
                self._warn(node, "path_outside_policy", f"{literal!r} is outside the writable paths "
                           f"({', '.join(self._filesystem.allowed_paths)})")
            elif any(literal == p or literal.startswith(p + "/") for p in self._filesystem.blocked_paths):
                self._warn(node, "path_outside_policy", f"{literal!r} is under a blocked path")
        self.generic_visit(node)


def _literal_string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = _call_name(func.value)
        return f"{base}.{func.attr}" if base else func.attr
    return None
