"""`bnbench compare --probes --plot FILE`: the probes of one run (bnbench.engines.probes) vs step, means over seeds.

A row of panels per layer measure, a panel per variant side by side (one y scale per row), the layers as lines;
then a row for the whole model as Santurkar et al. draw it (their Fig. 4), the variants in one panel each: the
loss variation (the band between the smallest and largest loss along the gradient), the gradient predictiveness
(the band of the gradient change) and the effective beta-smoothness. A colour is a variant's in every panel (as
in `compare --plot`: the baseline black); layers are told apart by their lines' dashes and markers. A run with a
sweep is drawn at its first sweep point. Same canvas as `plots` (object API, Agg: headless).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pandas as pd

from bnbench.analysis.probes import ProbeSummary
from bnbench.errors import BnbenchError
from bnbench.views.plot_file import check_path
from bnbench.views.plots import BASELINE_COLOUR, COLOURS, DASHES

if TYPE_CHECKING:  # matplotlib is the optional `plot` extra: imported only where a figure is drawn
    from matplotlib.figure import Figure

BANDS = [("loss variation", "loss_min", "loss_max"), ("gradient predictiveness", "grad_change_min", "grad_change_max")]
BETA = "beta_smoothness"
PANEL_INCHES = (4.2, 2.6)
MARKERS = ["o", "s", "^", "v", "D"]  # layers past the first len(DASHES): dashes again, with a marker


def save_probe_plot(summary: ProbeSummary, path: Path, title: Optional[str] = None, dpi: int = 110) -> Path:
    path = check_path(path)
    figure = probe_figure(summary, title)
    try:
        figure.savefig(path, dpi=dpi)
    except OSError as e:
        raise BnbenchError(f"--plot {path}: cannot save ({e.strerror or e}); choose a writable path") from None
    return path


def probe_figure(s: ProbeSummary, title: Optional[str] = None) -> "Figure":
    from matplotlib.figure import Figure

    means, colours = _means(s), _colours(s)
    layer_measures = list(dict.fromkeys(means.loc[means.layer != "model", "measure"]))
    cols = max(len(s.variants), len(BANDS) + 1)
    figure = Figure(figsize=(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * (len(layer_measures) + 1)), layout="constrained")
    axes = figure.subplots(len(layer_measures) + 1, cols, squeeze=False)
    for row, measure in enumerate(layer_measures):
        for col in range(cols):
            ax = axes[row, col]
            if col >= len(s.variants):
                ax.set_visible(False)
                continue
            if col:
                ax.sharey(axes[row, 0])
            variant = s.variants[col]
            here = means[(means.variant == variant) & (means.measure == measure) & (means.layer != "model")]
            for i, (layer, lines) in enumerate(here.groupby("layer", sort=False)):
                ax.plot(lines.step, lines.value, color=colours[variant], label=layer, **_layer_style(i))
            ax.set_title(f"{variant}: {measure}", fontsize=9)
            ax.ticklabel_format(axis="y", useOffset=False)  # an offset ("1e-5+9.999e-1") sat on the title
            ax.legend(fontsize=7)
    model = means[means.layer == "model"]
    last = axes[len(layer_measures)]
    for ax, (name, low, high) in zip(last, BANDS):
        for variant in s.variants:
            lo, hi = (model[(model.variant == variant) & (model.measure == m)] for m in (low, high))
            ax.fill_between(lo.step, lo.value, hi.value.to_numpy(), color=colours[variant], alpha=0.35, label=variant)
        ax.set_title(f"model: {name}", fontsize=9)
        ax.legend(fontsize=7)
    ax = last[len(BANDS)]
    for variant in s.variants:
        line = model[(model.variant == variant) & (model.measure == BETA)]
        ax.plot(line.step, line.value, color=colours[variant], label=variant)
    ax.set_title("model: effective beta-smoothness", fontsize=9)
    ax.legend(fontsize=7)
    for ax in last[len(BANDS) + 1 :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    figure.suptitle(title or f"{s.run_dir}: probes, mean over {s.seeds} seeds", fontsize=10)
    return figure


def _colours(s: ProbeSummary) -> dict[str, str]:
    """Each variant's colour: the baseline BASELINE_COLOUR, the others COLOURS in the config's order."""
    others = [v for v in s.variants if v != s.baseline]
    return {v: BASELINE_COLOUR if v == s.baseline else COLOURS[others.index(v) % len(COLOURS)] for v in s.variants}


def _layer_style(i: int) -> dict:
    """The i-th layer's line: DASHES in turn, then again with MARKERS."""
    turn, dash = divmod(i, len(DASHES))
    return {"linestyle": DASHES[dash]} | (
        {"marker": MARKERS[(turn - 1) % len(MARKERS)], "markersize": 3} if turn else {}
    )


def _means(s: ProbeSummary) -> pd.DataFrame:
    """Mean over seeds per variant, layer, measure and step, at the run's first sweep point."""
    probes = s.probes
    if s.sweep:
        first = probes[s.sweep].iloc[0]
        probes = probes[(probes[s.sweep] == first).all(axis=1)]
    return probes.groupby(["variant", "layer", "measure", "step"], sort=False).value.mean().reset_index()
