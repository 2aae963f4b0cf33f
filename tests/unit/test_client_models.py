"""Typed answers: plots decode to bytes and save to files; every event kind becomes its class."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from penny_client.events import MetricsEvent, PlotEvent, UnknownEvent, event_from_sse
from penny_client.models import ExecutionResult, Plot
from tests.unit.client_fakes import BreakingStream, make_client, result_api, sse_event

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
FIGURE = {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {}}


def test_a_png_plot_decodes_to_its_bytes_and_saves_to_a_file(tmp_path: Path) -> None:
    plot = Plot.from_api({"format": "png", "data": base64.b64encode(PNG).decode(), "width": 640, "height": 480})
    assert plot.png_bytes() == PNG
    assert (plot.width, plot.height, plot.extension) == (640, 480, "png")
    path = plot.save(tmp_path / "plots" / "one.png")
    assert path.read_bytes() == PNG


def test_svg_and_plotly_plots_save_as_svg_and_json_but_are_not_png(tmp_path: Path) -> None:
    svg = Plot.from_api({"format": "svg", "data": base64.b64encode(SVG).decode()})
    plotly = Plot.from_api({"format": "plotly", "data": FIGURE})
    assert svg.to_bytes() == SVG and svg.extension == "svg"
    assert json.loads(plotly.save(tmp_path / "fig.json").read_text()) == FIGURE and plotly.extension == "json"
    with pytest.raises(ValueError, match="svg, not png"):
        svg.png_bytes()


def test_a_plot_with_corrupt_base64_raises_instead_of_saving_garbage() -> None:
    with pytest.raises(ValueError):
        Plot(format="png", data="not base64!").png_bytes()


def test_plots_of_a_result_are_typed() -> None:
    result = ExecutionResult.from_api(result_api(plots=[{"format": "png", "data": base64.b64encode(PNG).decode()}]))
    assert result.plots[0].png_bytes() == PNG


def test_plot_and_metrics_events_arrive_typed_in_a_stream() -> None:
    chunks = [sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
              sse_event("2-0", "metrics", {"elapsedMs": 500, "cpuPercent": 97.5, "memoryBytes": 80_000_000,
                                           "diskBytes": 4096}),
              sse_event("3-0", "plot", {"format": "png", "data": base64.b64encode(PNG).decode()}),
              sse_event("4-0", "result", result_api())]
    client, _, _ = make_client(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=BreakingStream(chunks, None)))
    _, metrics, plot, _ = list(client.execute_stream("plot"))
    assert metrics == MetricsEvent(id="2-0", elapsed_ms=500, cpu_percent=97.5, memory_bytes=80_000_000,
                                   disk_bytes=4096)
    assert isinstance(plot, PlotEvent) and plot.plot.png_bytes() == PNG


def test_an_event_this_client_does_not_know_is_kept_not_dropped() -> None:
    event = event_from_sse("9-0", "progress", {"percent": 50})
    assert isinstance(event, UnknownEvent) and event.type == "progress" and event.data == {"percent": 50}


def test_a_result_from_a_newer_server_with_extra_fields_still_reads() -> None:
    data = result_api(newField=1, metrics={"queuedMs": 1, "durationMs": 2, "cpuMs": 3, "peakMemoryBytes": 4,
                                           "diskBytes": 5, "gpuMs": 0})
    result = ExecutionResult.from_api(data)
    assert result.metrics.disk_bytes == 5 and result.to_api()["newField"] == 1
