"""Variable inspection: a bounded summary of every user variable in a namespace.

Bounded means constant work per variable whatever its size: len() and sys.getsizeof() are O(1), reprs
go through reprlib, and only the head of a DataFrame is rendered.
"""

from __future__ import annotations

import reprlib
import sys
import types
from typing import Any

from sandbox_runtime import protocol

MAX_VARIABLES = 200
REPR_LIMIT_CHARS = 200
PREVIEW_ROWS = 5
NAME_CHARS = 100  # a column's name or dtype in a summary (within protocol.MAX_VARIABLE_CHARS in all)

_repr = reprlib.Repr()
_repr.maxstring = REPR_LIMIT_CHARS
_repr.maxother = REPR_LIMIT_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = _repr.maxdict = 20
_repr.maxlevel = 3


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    name = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    return name[:protocol.MAX_NAME_CHARS]


def _short_repr(value: Any) -> str:
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a user's __repr__ may raise anything
        text = f"<repr failed: {type(exc).__name__}>"
    return text if len(text) <= REPR_LIMIT_CHARS else text[:REPR_LIMIT_CHARS] + "..."


def _is_user_variable(name: str, value: Any) -> bool:
    if len(name) > protocol.MAX_NAME_CHARS or name.startswith("__") or isinstance(value, types.ModuleType):
        return False
    return name != "_"


def describe(value: Any) -> dict[str, Any]:
    """{type, repr, size?, len?, shape?, dtype?, columns?, dtypes?, preview?} of one value."""
    info: dict[str, Any] = {"type": _type_name(value)}
    numpy = sys.modules.get("numpy")
    pandas = sys.modules.get("pandas")
    try:
        if numpy is not None and isinstance(value, numpy.ndarray):
            info.update(shape=list(value.shape), dtype=str(value.dtype)[:NAME_CHARS], size=int(value.nbytes))
            info["repr"] = numpy.array2string(value, threshold=20, edgeitems=3, max_line_width=120)[
                :REPR_LIMIT_CHARS]
            return info
        if pandas is not None and isinstance(value, pandas.DataFrame):
            info.update(shape=list(value.shape), columns=[str(c)[:NAME_CHARS] for c in value.columns[:100]],
                        dtypes={str(c)[:NAME_CHARS]: str(t)[:NAME_CHARS]
                                for c, t in list(value.dtypes.items())[:100]},
                        size=int(value.memory_usage(index=True, deep=False).sum()))
            info["preview"] = value.head(PREVIEW_ROWS).to_string(max_cols=20, max_colwidth=40)[:2000]
            info["repr"] = f"DataFrame {value.shape[0]} rows x {value.shape[1]} columns"
            return info
        if pandas is not None and isinstance(value, pandas.Series):
            info.update(shape=list(value.shape), dtype=str(value.dtype)[:NAME_CHARS],
                        size=int(value.memory_usage(index=True, deep=False)))
            info["preview"] = value.head(PREVIEW_ROWS).to_string()[:2000]
    except Exception:  # an odd subclass must not break the summary
        pass
    info["repr"] = _short_repr(value)
    try:
        info.setdefault("size", sys.getsizeof(value))
    except TypeError:
        pass
    if not isinstance(value, (str, bytes, type)) and hasattr(type(value), "__len__"):
        try:
            info["len"] = len(value)
        except Exception:
            pass
    elif isinstance(value, (str, bytes)):
        info["len"] = len(value)
    return info


def summarize(namespace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Summaries of the user variables of namespace (no modules, no dunders), at most MAX_VARIABLES."""
    summary: dict[str, dict[str, Any]] = {}
    for name, value in list(namespace.items()):
        if not _is_user_variable(name, value):
            continue
        if len(summary) >= MAX_VARIABLES:
            break
        summary[name] = describe(value)
    return summary
