"""The bench's outputs: the JSON of a run, a PNG of it, and a comparison with the previous run's JSON.

The JSON (`.cache/bench/<UTC date-time>.json`) holds {"machine": ..., "scenarios": {name: {"run1": figures,
"run2": figures}}}; the PNG beside it has three panels: latency CDF per scenario (run 1), executions per
minute against concurrent clients, and CPU ms per execution per tier as stacked bars.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

# Headline figures compared run to run: (scenario, key, lower is better).
HEADLINES = (
    ("print_c1", "p50_ms", True), ("print_c1", "p95_ms", True), ("print_c16", "per_min", False),
    ("print_c16", "p95_ms", True), ("numpy_c1", "p50_ms", True), ("numpy_c16", "per_min", False),
    ("session_create", "p50_ms", True), ("session_burst20", "p95_ms", True), ("in_session", "p50_ms", True),
    ("sse_first_stdout", "p50_ms", True), ("after_idle_c16", "p95_ms", True),
    ("idle_sessions", "memory_per_session_mb", True),
)
TIER_ORDER = ("api", "worker", "sandboxes", "redis", "flower", "docker", "loadgen")


def machine_facts() -> dict[str, object]:
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    return {"cpus": os.cpu_count(), "memory_gb": round(total_kb / 2**20, 1), "kernel": platform.release(),
            "python": platform.python_version()}


def figure(report: dict[str, Any], scenario: str, key: str, run: str = "run1") -> float | None:
    value = report.get("scenarios", {}).get(scenario, {}).get(run, {}).get(key)
    if value is None and key == "service_cpu_ms":
        value = report.get("scenarios", {}).get(scenario, {}).get(run, {}).get("cpu", {}).get("service_ms")
    return float(value) if isinstance(value, int | float) else None


def mean_figure(runs: dict[str, Any], key: str) -> float | None:
    """The mean of a figure over a scenario's runs; key may be dotted ("cpu.service_ms")."""
    values = []
    for figures in runs.values():
        value: Any = figures
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return sum(values) / len(values) if values else None


def previous_report(directory: Path, current: Path) -> tuple[Path, dict[str, Any]] | None:
    earlier = sorted(path for path in directory.glob("*.json") if path.name < current.name)
    return (earlier[-1], json.loads(earlier[-1].read_text())) if earlier else None


def comparison(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines `scenario key: before -> now (change)`, using both runs' mean where there are two."""
    def both(report: dict[str, Any], scenario: str, key: str) -> float | None:
        values = [v for v in (figure(report, scenario, key, run) for run in ("run1", "run2")) if v is not None]
        return sum(values) / len(values) if values else None

    lines = []
    for scenario, key, lower_better in (*HEADLINES, *((s, "service_cpu_ms", True) for s in ("print_c16",))):
        before, now = both(previous, scenario, key), both(current, scenario, key)
        if before is None or now is None or before == 0:
            continue
        change = (now - before) / before * 100
        better = (change < 0) == lower_better
        lines.append(f"  {scenario:<18} {key:<22} {before:>10.2f} -> {now:>10.2f}  ({change:+.0f} %"
                     f"{', better' if better and abs(change) >= 5 else ''}"
                     f"{', worse' if not better and abs(change) >= 5 else ''})")
    return lines


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    fig, (cdf_ax, tput_ax, cpu_ax) = plt.subplots(1, 3, figsize=(19, 6))
    for name, runs in scenarios.items():
        cdf = runs.get("run1", {}).get("cdf_ms")
        if cdf:
            points = sorted((float(p), ms) for p, ms in cdf.items())
            cdf_ax.plot([ms for _, ms in points], [p for p, _ in points], marker=".", label=name)
    cdf_ax.set_xscale("log")
    cdf_ax.set_xlabel("latency (ms, log)")
    cdf_ax.set_ylabel("percentile")
    cdf_ax.set_title("Latency CDF per scenario (run 1)")
    cdf_ax.grid(True, which="both", alpha=0.3)
    cdf_ax.legend(fontsize=7)

    for prefix, label in (("print", "print(1)"), ("numpy", "numpy one-liner")):
        points = sorted((int(runs["run1"]["connections"]), float(runs["run1"]["per_min"]))
                        for name, runs in scenarios.items()
                        if name.startswith(f"{prefix}_c") and "per_min" in runs.get("run1", {}))
        if points:
            tput_ax.plot([c for c, _ in points], [t for _, t in points], marker="o", label=label)
    tput_ax.set_xlabel("concurrent clients (wrk connections)")
    tput_ax.set_ylabel("executions / min")
    tput_ax.set_title("Throughput vs clients (run 1)")
    tput_ax.grid(True, alpha=0.3)
    if tput_ax.lines:
        tput_ax.legend()

    names = [name for name, runs in scenarios.items() if runs.get("run1", {}).get("cpu")]
    bottoms = [0.0] * len(names)
    for tier in TIER_ORDER:
        values = [float(scenarios[name]["run1"]["cpu"]["tiers_ms"].get(tier, 0.0)) for name in names]
        cpu_ax.bar(names, values, bottom=bottoms, label=tier)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    cpu_ax.set_ylabel("CPU ms per execution")
    cpu_ax.set_title("CPU per execution by tier (run 1)")
    cpu_ax.tick_params(axis="x", rotation=45, labelsize=8)
    cpu_ax.legend(fontsize=8)
    fig.suptitle(f"PENNY make bench, {report['started']} on {report['machine']['cpus']} CPUs")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
