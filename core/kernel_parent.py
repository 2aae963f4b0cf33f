"""Which process should fork a stateless job's kernel: a performance hint for the sandbox runtime.

A stateless sandbox forks kernels either from its supervisor, which has the heavy libraries loaded
(numpy, pandas, matplotlib), or from a light parent that has none (sandbox_runtime.light_parent): a light
kernel costs about half the CPU. Code whose static imports are all standard-library modules gets "light";
anything else, code that does not parse, or code too long to be worth parsing gets "heavy". The hint changes
no guarantee: both kernels run the same code under the same filter and limits, and code that imports a heavy
library dynamically in a light kernel imports it itself (slower, never wrong).
"""

from __future__ import annotations

import ast
import sys

LIGHT = "light"
HEAVY = "heavy"
# Longer code is sent to the heavy parent without being parsed (the parse would cost more than it saves).
MAX_PARSED_CHARS = 20_000
_STDLIB = frozenset(sys.stdlib_module_names)


def kernel_parent(code: str) -> str:
    """LIGHT when every module the code imports statically is in the standard library, else HEAVY."""
    if len(code) > MAX_PARSED_CHARS:
        return HEAVY
    if "import" not in code:
        return LIGHT
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return HEAVY
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        if any(name.split(".")[0] not in _STDLIB for name in names):
            return HEAVY
    return LIGHT
