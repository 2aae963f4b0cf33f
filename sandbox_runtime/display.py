"""Rich output: plots (matplotlib, plotly), display(obj), and a value's richest representation.

Everything captured goes to `publish` as soon as it is captured (the kernel streams it as a `plot` or
`display` event); sizes are bounded per item and per cell, and what does not fit is dropped with a note.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Callable
from typing import Any

from sandbox_runtime import protocol

Publish = Callable[[protocol.KernelMessage], None]

TEXT_LIMIT_CHARS = 10_000


class DisplayCapture:
    """Captures one cell's rich output within its byte budget."""

    def __init__(self, publish: Publish, *, formats: list[str], max_plot_bytes: int, max_total_bytes: int) -> None:
        self._publish = publish
        self._formats = formats or ["png"]
        self._max_plot_bytes = max_plot_bytes
        self._max_total_bytes = max_total_bytes
        self.total_bytes = 0
        self.count = 0
        self.notes: list[str] = []

    # -- publishing within the budget ------------------------------------------------------------
    def _emit(self, kind: str, item: dict[str, Any], size: int) -> None:
        self.count += 1
        if size > self._max_plot_bytes:
            self.notes.append(f"{kind} {self.count} dropped: {size} bytes is over the "
                              f"{self._max_plot_bytes}-byte limit")
            return
        if self.total_bytes + size > self._max_total_bytes:
            self.notes.append(f"{kind} {self.count} dropped: the cell's output passed {self._max_total_bytes} bytes")
            return
        self.total_bytes += size
        self._publish(protocol.Plot(item) if kind == "plot" else protocol.Display(item))

    # -- matplotlib and plotly ---------------------------------------------------------------------
    def figure(self, figure: Any) -> None:
        """A matplotlib figure, in each requested format."""
        width, height = (int(round(v)) for v in figure.get_size_inches() * figure.dpi)
        for fmt in self._formats:
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt)
            data = buffer.getvalue()
            encoded = base64.b64encode(data).decode()
            self._emit("plot", {"format": fmt, "data": encoded, "width": width, "height": height}, len(encoded))

    def plotly(self, figure: Any) -> None:
        """A plotly figure, as its JSON."""
        text = figure.to_json()
        self._emit("plot", {"format": "plotly", "data": json.loads(text)}, len(text))

    # -- display() and values -------------------------------------------------------------------------
    def display(self, *objects: Any) -> None:
        """Notebook-style display(): figures become plots, other objects their richest representation."""
        for obj in objects:
            if _is_matplotlib_figure(obj):
                self.figure(obj)
                _close_matplotlib_figure(obj)
            elif _is_plotly_figure(obj):
                self.plotly(obj)
            else:
                bundle = rich_bundle(obj)
                if "png" in bundle:
                    self._emit("plot", {"format": "png", "data": bundle["png"]}, len(bundle["png"]))
                elif "svg" in bundle:
                    encoded = base64.b64encode(bundle["svg"].encode()).decode()
                    self._emit("plot", {"format": "svg", "data": encoded}, len(encoded))
                else:
                    self._emit("display", bundle, len(json.dumps(bundle, default=str)))

    def value(self, value: Any) -> dict[str, Any] | None:
        """A trailing expression's {type, repr, html?, json?}; figures are published as plots."""
        if _is_plotly_figure(value):
            self.plotly(value)
        bundle = rich_bundle(value)
        size = len(json.dumps(bundle, default=str))
        if size > self._max_plot_bytes:
            self.notes.append(f"the value's rich representation ({size} bytes) was dropped; its repr is kept")
            return {"type": bundle["type"], "repr": bundle["repr"]}
        return bundle


def rich_bundle(obj: Any) -> dict[str, Any]:
    """{type, repr} plus the richest representations the object offers (html, png, svg, json)."""
    from sandbox_runtime.cell import bounded_repr, type_name

    bundle: dict[str, Any] = {"type": type_name(obj), "repr": bounded_repr(obj)}
    for method, key in (("_repr_png_", "png"), ("_repr_svg_", "svg"), ("_repr_html_", "html"),
                        ("_repr_json_", "json")):
        render = getattr(obj, method, None)
        if render is None or isinstance(obj, type):
            continue
        try:
            rendered = render()
        except Exception:  # a broken _repr_*_ must not fail the cell
            continue
        if rendered is None:
            continue
        if isinstance(rendered, tuple):  # (data, metadata)
            rendered = rendered[0]
        if key == "png":
            rendered = base64.b64encode(rendered).decode() if isinstance(rendered, bytes) else rendered
        bundle[key] = rendered
    return bundle


def _is_matplotlib_figure(obj: Any) -> bool:
    figure_module = sys.modules.get("matplotlib.figure")
    return figure_module is not None and isinstance(obj, figure_module.Figure)


def _close_matplotlib_figure(figure: Any) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(figure)


def _is_plotly_figure(obj: Any) -> bool:
    base = sys.modules.get("plotly.basedatatypes")
    return base is not None and isinstance(obj, base.BaseFigure)
