"""A matplotlib backend (``MPLBACKEND=module://sandbox_runtime.plotting``) that hands figures to the kernel.

Like a notebook's inline backend: rendering is Agg (no display needed); ``plt.show()`` captures every
open figure, and the kernel captures the figures still open when a cell ends. Each figure is captured
once and then closed, so memory does not grow in a session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase

# Set by the kernel: called with each figure to capture.
capture: Callable[[Any], None] | None = None


def show(*_args: Any, **_kwargs: Any) -> None:
    """plt.show(): capture and close every open figure."""
    capture_open_figures()


def capture_open_figures() -> None:
    """Hand every open figure to `capture`, then close it."""
    import matplotlib.pyplot as plt

    for number in plt.get_fignums():
        figure = plt.figure(number)
        if capture is not None:
            capture(figure)
        plt.close(figure)
