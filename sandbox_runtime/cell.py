"""Running one piece of user code as a notebook cell: statements, then the trailing expression's value."""

from __future__ import annotations

import ast
import linecache
import os
import reprlib
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox_runtime import protocol

CELL_FILENAME = "<cell>"
GUARD_FILENAME = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard.py")
REPR_LIMIT_CHARS = 10_000
TRACEBACK_LIMIT_FRAMES = 50

_repr = reprlib.Repr()
_repr.maxstring = REPR_LIMIT_CHARS
_repr.maxother = REPR_LIMIT_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 1000
_repr.maxdict = 1000
_repr.maxlevel = 6


@dataclass
class CellOutcome:
    """How a cell ended: `error` is None on success; `result` is None when there is no value to show."""

    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def bounded_repr(value: Any, limit_chars: int = REPR_LIMIT_CHARS) -> str:
    """repr(value) cut to limit_chars; containers are summarised without building a huge string."""
    try:
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            text = _repr.repr(value)
        else:
            text = repr(value)
    except Exception as exc:  # a user's __repr__ may raise anything
        text = f"<repr of {type(value).__name__} failed: {type(exc).__name__}: {exc}>"
    if len(text) > limit_chars:
        text = text[:limit_chars] + f"... [{len(text) - limit_chars} more characters]"
    return text


def describe_value(value: Any) -> dict[str, str]:
    """The API's {type, repr} of a trailing expression's value."""
    return {"type": type_name(value), "repr": bounded_repr(value)}


def compile_cell(source: str) -> tuple[types.CodeType | None, types.CodeType | None]:
    """Compile source as (statements, trailing expression); either may be None. Raises SyntaxError."""
    tree = ast.parse(source, filename=CELL_FILENAME, mode="exec")
    linecache.cache[CELL_FILENAME] = (len(source), None, source.splitlines(True), CELL_FILENAME)
    tail: ast.expr | None = None
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        tail = last.value
    body = compile(tree, CELL_FILENAME, "exec") if tree.body else None
    expression = compile(ast.Expression(tail), CELL_FILENAME, "eval") if tail is not None else None
    return body, expression


def format_error(exc: BaseException) -> dict[str, Any]:
    """{type, message, traceback} with the traceback trimmed to the user's own frames."""
    te = traceback.TracebackException.from_exception(exc, limit=-TRACEBACK_LIMIT_FRAMES)
    frames = list(te.stack)
    first_user = next((i for i, frame in enumerate(frames) if frame.filename == CELL_FILENAME), len(frames))
    # The policy layer's own frames (the guarded import, the audit hook) say nothing about the user's code.
    te.stack = traceback.StackSummary.from_list([f for f in frames[first_user:] if f.filename != GUARD_FILENAME])
    lines = [line[:protocol.MAX_TEXT_CHARS] for chunk in te.format() for line in chunk.splitlines()]
    if len(lines) > protocol.MAX_TRACEBACK_LINES:
        lines = [*lines[:protocol.MAX_TRACEBACK_LINES // 2 - 1], "...",
                 *lines[-(protocol.MAX_TRACEBACK_LINES // 2):]]
    try:
        message = str(exc)
    except Exception:  # a user's __str__ may raise anything
        message = "<the exception's message could not be shown>"
    if len(message) > REPR_LIMIT_CHARS:
        message = message[:REPR_LIMIT_CHARS] + "..."
    return {"type": type_name(exc), "message": message, "traceback": lines}


def type_name(value: Any) -> str:
    """The name of value's type, bounded as the protocol requires (a class name can be any length)."""
    return type(value).__name__[:protocol.MAX_NAME_CHARS]


def run_cell(source: str, namespace: dict[str, Any], *,
             describe: Callable[[Any], dict[str, Any] | None] = describe_value,
             enter: Callable[[], None] = lambda: None,
             leave: Callable[[], None] = lambda: None) -> CellOutcome:
    """Execute source in namespace; user exceptions become the outcome's error, never propagate.

    describe(value) renders the trailing expression's value (the kernel passes its rich renderer);
    enter() is called once the cell compiled, just before the user's statements run (the kernel takes
    interrupts from there); leave() the moment they are over, however they ended, before anything else
    (the kernel stops taking interrupts there, so none can land in the bookkeeping that follows).
    """
    try:
        body, expression = compile_cell(source)
    except (SyntaxError, ValueError) as exc:  # ValueError: source with NUL bytes
        leave()
        return CellOutcome(error=format_error(exc))
    try:
        try:
            enter()
            if body is not None:
                exec(body, namespace)
            value = eval(expression, namespace) if expression is not None else None
        finally:
            leave()
    except SystemExit as exc:
        if exc.code in (None, 0):
            return CellOutcome()
        return CellOutcome(error=format_error(exc))
    except BaseException as exc:  # KeyboardInterrupt included: an interrupted cell is a user error
        return CellOutcome(error=format_error(exc))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    if value is None:
        return CellOutcome()
    return CellOutcome(result=describe(value))
