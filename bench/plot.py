"""The latency plot: every loaded side's percentile curve, one panel per load shape.

Reads the report itself: any result whose details carry `latency_curves`
(`{"panel", "reference", "curves": {label: [[percentile, ms], ...]}}`, written
by `bench.load.Pair`) adds its curves to its panel. The x axis stretches the
tail (HdrHistogram style: 50, 90, 99, 99.9, 99.99 are evenly spaced), the y
axis is logarithmic; references are dashed.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a benchmark machine

import matplotlib.pyplot as plt  # after the backend is chosen

FILENAME = "latency.png"
TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99)

Curve = list[list[float]]


def _tail_x(percentile: float) -> float:
    """-log10 of the fraction of requests slower than this: 90 → 1, 99 → 2, 99.9 → 3."""
    return -math.log10(max(1e-6, 1 - percentile / 100))


def panels(report: dict) -> dict[str, dict[str, tuple[Curve, bool]]]:
    """panel → label → (curve, is_reference), in report order; a label's first curve wins."""
    found: dict[str, dict[str, tuple[Curve, bool]]] = {}
    for comparison in report["comparisons"]:
        for result in comparison["results"]:
            spec = result.get("details", {}).get("latency_curves")
            if not spec:
                continue
            panel = found.setdefault(spec["panel"], {})
            for label, curve in spec["curves"].items():
                if curve and label not in panel:
                    panel[label] = (curve, label == spec.get("reference"))
    return found


def latency_png(report: dict, results_dir: Path) -> Path | None:
    """Write `latency.png` next to the report; None when no result carried curves."""
    found = panels(report)
    if not found:
        return None
    fig, axes = plt.subplots(
        1, len(found), figsize=(7.5 * len(found), 6.5), squeeze=False, constrained_layout=True
    )
    for ax, (title, curves) in zip(axes[0], found.items(), strict=True):
        colours = plt.get_cmap("tab10").colors
        greys = iter(("black", "dimgray", "darkgray", "silver"))
        drawn = 0
        for label, (curve, is_reference) in curves.items():
            xs = [_tail_x(p) for p, _ in curve]
            ys = [max(ms, 1e-3) for _, ms in curve]  # log axis: no zeros
            if is_reference:
                ax.plot(xs, ys, "--", color=next(greys, "gray"), linewidth=2.2, label=label)
                continue
            # Ten distinct colours, then the same ones dash-dotted.
            style = "-" if drawn < len(colours) else "-."
            ax.plot(xs, ys, style, color=colours[drawn % len(colours)], linewidth=1.5, label=label)
            drawn += 1
        ax.set_title(title)
        ax.set_yscale("log")
        ax.set_xticks([_tail_x(p) for p in TICKS], [f"{p:g}" for p in TICKS])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left")
    fig.suptitle(f"Nimbus latency distributions ({report['mode']} run, {report['date']})")
    path = results_dir / FILENAME
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
