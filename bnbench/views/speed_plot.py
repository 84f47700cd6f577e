"""The speed figure of the HTML report: per measure of steps to target (`columns.SPEEDS`), each variant's speedup
over the baseline (baseline's steps ÷ the variant's) with its 95% interval, a row per variant and sweep point, on a
log axis (2× faster and 2× slower lie equally far from 1) with a line at 1, "as fast as the baseline".

A censored estimate (some seeds never reached the target) is only bounded: drawn as a thick bar from its low to its
high end, not a point. A measure without a number on any row (no variant reached the target, or the baseline's
curve has none) has no panel; `speed_figure` names it so the page can say so. Object API, Agg: headless.
"""

import math
from typing import TYPE_CHECKING

import pandas as pd

from bnbench.analysis import Comparison
from bnbench.analysis.columns import SPEEDS, col
from bnbench.views.plots import COLOURS

if TYPE_CHECKING:  # matplotlib is the optional `plot` extra: imported only where a figure is drawn
    from matplotlib.figure import Figure

PANEL_INCHES = (4.6, 0.45)  # a panel's width, and its height per row
STATS = ["speedup", "speedup_high", "ci_low", "ci_high"]


def speeds(c: Comparison) -> dict[str, pd.DataFrame]:
    """Per SPEEDS measure (keyed by its label): the rows of the variants other than the baseline, 'row' (variant
    and sweep point) and the STATS columns; a measure whose speedups are all NaN is left out."""
    t = c.table[~c.table.baseline.astype(bool)]
    labels = [", ".join([str(row["variant"]), *(f"{p}={row[p]}" for p in c.points)]) for row in t.to_dict("records")]
    out = {}
    for name, speed in SPEEDS.items():
        if col(name, "speedup") not in t.columns:
            continue
        frame = pd.DataFrame({s: pd.to_numeric(t[col(name, s)], errors="coerce").to_numpy() for s in STATS})
        frame.insert(0, "row", labels)
        frame = frame[_positive(frame.speedup)]
        if not frame.empty:
            out[speed.label] = frame.reset_index(drop=True)
    return out


def _positive(values: pd.Series) -> pd.Series:
    """Which values a log axis can place."""
    return values.map(lambda x: isinstance(x, float) and math.isfinite(x) and x > 0)


def speed_figure(c: Comparison, drawn: dict[str, pd.DataFrame]) -> "Figure":
    """A panel per measure of `drawn` (`speeds(c)`), side by side."""
    from matplotlib.figure import Figure

    rows = max(len(f) for f in drawn.values())
    figure = Figure(figsize=(PANEL_INCHES[0] * len(drawn), 1.2 + PANEL_INCHES[1] * rows), layout="constrained", dpi=100)
    axes = figure.subplots(1, len(drawn), squeeze=False)[0]
    for ax, (label, frame) in zip(axes, drawn.items()):
        _panel(ax, label, frame)
    figure.suptitle(f"{c.title}: speedup in steps to target, vs {c.baseline}", fontsize=9)
    return figure


def _panel(ax, label: str, frame: pd.DataFrame) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    y = list(range(len(frame)))[::-1]  # the first row on top
    for i, row in zip(y, frame.to_dict("records")):
        colour = COLOURS[(len(frame) - 1 - i) % len(COLOURS)]
        if _positive(pd.Series([row["ci_low"], row["ci_high"]])).all():
            ax.plot([row["ci_low"], row["ci_high"]], [i, i], color=colour, linewidth=1.2)
        high = row["speedup_high"]
        if _positive(pd.Series([high])).all() and high != row["speedup"]:
            ax.plot([row["speedup"], high], [i, i], color=colour, linewidth=5, alpha=0.6, solid_capstyle="butt")
        else:
            ax.plot([row["speedup"]], [i], "o", color=colour, markersize=5)
    ax.axvline(1.0, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 0.5, 1, 2, 5: read without exponents
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y, frame.row.tolist(), fontsize=8)
    ax.set_ylim(-0.7, len(frame) - 0.3)
    ax.set_title(f"{label} (1: as fast as the baseline)", fontsize=9)
    ax.set_xlabel("speedup (×, log scale; >1: fewer steps)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
