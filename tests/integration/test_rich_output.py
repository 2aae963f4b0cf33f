"""Plots and rich output: matplotlib PNG/SVG, plotly JSON, display(), DataFrame HTML, size bounds."""

from __future__ import annotations

import base64
import struct

import pytest
import requests

from tests.integration.conftest import Cluster, parse_sse

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data_b64: str) -> tuple[int, int]:
    raw = base64.b64decode(data_b64)
    assert raw[:8] == PNG_SIGNATURE and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


def test_a_line_plot_comes_back_as_a_valid_png_of_its_declared_size(cluster: Cluster) -> None:
    result = cluster.execute("import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3), dpi=100)\n"
                             "plt.plot([1, 3, 2])\nplt.show()")
    assert result["status"] == "success", result["error"]
    assert len(result["plots"]) == 1
    plot = result["plots"][0]
    assert plot["format"] == "png" and (plot["width"], plot["height"]) == (400, 300)
    assert png_size(plot["data"]) == (400, 300)


def test_two_figures_give_two_plots_each_once(cluster: Cluster) -> None:
    result = cluster.execute("import matplotlib.pyplot as plt\nplt.figure(); plt.plot([1, 2])\nplt.show()\n"
                             "plt.figure(); plt.bar([1, 2], [3, 4])")  # the second is captured at the end
    assert [p["format"] for p in result["plots"]] == ["png", "png"]
    assert result["plots"][0]["data"] != result["plots"][1]["data"]


def test_svg_is_given_when_asked(cluster: Cluster) -> None:
    result = cluster.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])", plotFormats=["png", "svg"])
    formats = [p["format"] for p in result["plots"]]
    assert formats == ["png", "svg"]
    assert base64.b64decode(result["plots"][1]["data"]).lstrip().startswith(b"<?xml")


def test_plotly_figures_come_back_as_json(cluster: Cluster) -> None:
    result = cluster.execute("import plotly.graph_objects as go\n"
                             "fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 5, 6]))\nfig.show()\nfig")
    plots = [p for p in result["plots"] if p["format"] == "plotly"]
    assert len(plots) == 2  # fig.show() and the trailing figure
    assert plots[0]["data"]["data"][0]["y"] == [4, 5, 6]


def test_a_dataframe_value_gives_html_and_text(cluster: Cluster) -> None:
    result = cluster.execute("import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'n': [1, 2]})")
    value = result["result"]
    assert value["type"] == "DataFrame" and "Oslo" in value["repr"]
    assert "<table" in value["html"] and "Lima" in value["html"]


def test_display_uses_the_richest_representation(cluster: Cluster) -> None:
    code = ("import pandas as pd\nimport matplotlib.pyplot as plt\n"
            "class Card:\n    def _repr_html_(self):\n        return '<b>card</b>'\n"
            "display(Card())\ndisplay(pd.DataFrame({'a': [1]}))\nfig = plt.figure()\ndisplay(fig)\n"
            "display({'plain': True})")
    result = cluster.execute(code)
    assert result["status"] == "success", result["error"]
    htmls = [d.get("html") for d in result["displays"]]
    assert htmls[0] == "<b>card</b>" and "<table" in htmls[1]
    assert result["displays"][2]["repr"] == "{'plain': True}" and "html" not in result["displays"][2]
    assert len(result["plots"]) == 1  # the displayed figure, once (closed after capture)


def test_each_plot_is_streamed_as_a_plot_event(cluster: Cluster) -> None:
    code = ("import time, matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\nprint('after', flush=True)\n"
            "time.sleep(0.5)")
    with requests.post(f"{cluster.url}/api/v1/execute/stream", json={"code": code}, stream=True,
                       timeout=60) as response:
        kinds = [e["event"] for e in parse_sse(response)]
    assert kinds.index("plot") < kinds.index("stdout") < kinds.index("result")


def test_plots_over_the_size_bound_are_dropped_with_a_note(cluster: Cluster) -> None:
    result = cluster.execute("import matplotlib.pyplot as plt, numpy as np\n"
                             "plt.figure(figsize=(20, 20), dpi=100)\nplt.imshow(np.random.rand(2000, 2000, 3))\n"
                             "plt.figure(); plt.plot([1, 2])", timeout=20000)
    assert result["status"] == "success", result["error"]
    assert len(result["plots"]) == 1 and any("dropped" in note for note in result["notes"])


def test_figures_do_not_accumulate_in_a_session(cluster: Cluster) -> None:
    session_id = requests.post(f"{cluster.url}/api/v1/sessions", json={}, timeout=60).json()["sessionId"]
    for _ in range(3):
        result = cluster.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])", sessionId=session_id)
        assert len(result["plots"]) == 1
    left = cluster.execute("len(plt.get_fignums())", sessionId=session_id)
    assert left["result"]["repr"] == "0"
    requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)
