"""Run a callback right after a module is imported (or at once, if it already is)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.callbacks: dict[str, Callback] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        callback = self.callbacks.get(fullname)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module"):
                original = loader.exec_module

                def exec_module(module: ModuleType, _original: Any = original) -> None:
                    _original(module)
                    callback(module)

                loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec
        return None


_finder = _AfterImport()


def after_import(name: str, callback: Callback) -> None:
    """Call callback(module) once `name` is imported."""
    if name in sys.modules:
        callback(sys.modules[name])
        return
    _finder.callbacks[name] = callback
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
