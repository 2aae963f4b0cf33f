"""Functions whose state nothing in Python can reach or change: what the audit hook is made of.

A Python function exposes everything it uses: its closure cells (`__closure__`, writable through
`cell_contents` with no audit event), its globals (`__globals__`, a dict), its defaults. The policy layer's
functions are therefore built here, once, when the hook is installed:

- `bind(template, namespace, **values)`: a copy of `template` whose trailing parameters default to
  `values` (a tuple: replacing `__defaults__` raises an audit event, which the hook refuses for these
  functions), whose globals are `namespace`, a private dict that no module holds (its identity is how the
  hook recognises its own frames). The template must look up no global and no builtin: the namespace's
  builtins are empty, so any such lookup fails loudly in the tests instead of reading patchable state.
- `seal(source, name, namespace, **constants)`: a function compiled from `source` in which string
  placeholders ("@name") are replaced by objects in the code's constants. Reading a function's code
  (`__code__`, `f_code`) raises an audit event, and the hook refuses it for these functions, so an object
  kept this way (an original native function behind a checking wrapper) is reachable from nothing.
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Callable
from typing import Any


def private_namespace(label: str, *, builtins: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fresh globals dict for functions built by bind() and seal(), with empty builtins unless given:
    the sealed functions look none up, but native code they call may (an extension module's init imports
    through the builtins of the frame that is running)."""
    return {"__builtins__": {} if builtins is None else builtins, "__name__": f"penny-guard:{label}"}


def bind(template: Callable[..., Any], namespace: dict[str, Any], *, filename: str | None = None,
         **values: Any) -> types.FunctionType:
    """A copy of template running in namespace, its trailing parameters defaulting to values (by name);
    filename: what its frames say they run (the user's tracebacks leave the policy layer's file out)."""
    if not isinstance(template, types.FunctionType):
        raise TypeError(f"{template!r} is not a Python function")
    code = template.__code__
    if filename is not None:
        code = code.replace(co_filename=filename)
    if code.co_kwonlyargcount or code.co_freevars:
        raise ValueError(f"{template.__name__}: bound functions take positional parameters and no closure")
    names = code.co_varnames[:code.co_argcount]
    trailing = names[len(names) - len(values):]
    if set(trailing) != set(values):
        raise ValueError(f"{template.__name__}: values must name its trailing parameters {trailing}")
    return types.FunctionType(code, namespace, template.__name__, tuple(values[name] for name in trailing))


def seal(source: str, name: str, namespace: dict[str, Any], *, filename: str = "<penny-guard>",
         **constants: Any) -> types.FunctionType:
    """The function `name` defined by source, with each "@key" string constant replaced by constants[key]."""
    code, defaults, kwdefaults = compiled(source, name, filename)
    placeholders = {f"@{key}": value for key, value in constants.items()}
    missing = set(placeholders) - set(code.co_consts)
    if missing:
        raise ValueError(f"{name}: placeholders not used: {sorted(missing)}")
    consts = tuple(placeholders[c] if isinstance(c, str) and c in placeholders else c for c in code.co_consts)
    function = types.FunctionType(code.replace(co_consts=consts), namespace, name, defaults)
    function.__kwdefaults__ = dict(kwdefaults) if kwdefaults is not None else None
    return function


@functools.lru_cache(maxsize=64)
def compiled(source: str, name: str, filename: str) -> tuple[types.CodeType, tuple[Any, ...] | None,
                                                              dict[str, Any] | None]:
    """The code of the function `name` defined by source, and its defaults (compiled once per process:
    the supervisor compiles them before it forks, so no kernel pays for it; the code is immutable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # calling a str constant: it is a placeholder
        module = compile(source, filename, "exec")
    (code,) = [c for c in module.co_consts if isinstance(c, types.CodeType) and c.co_name == name]
    scope: dict[str, Any] = {}
    exec(module, {"__builtins__": {}}, scope)  # for the defaults the source gives its parameters
    return code, scope[name].__defaults__, scope[name].__kwdefaults__
