"""`bnbench tune --plot FILE`: the sensitivity figure, the validation metric of each variant across the grid (mean
over tuning seeds, its 95% interval as error bars), the chosen point starred, the points within the margin of it
filled, a point where a seed diverged crossed. Matplotlib's object API on the Agg canvas, as `views.plots`."""

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bnbench.analysis import tuning
from bnbench.analysis.tuning import describe, tune_scores
from bnbench.errors import BnbenchError
from bnbench.rundir.tunes import Tune
from bnbench.views.plots import BASELINE_COLOUR, COLOURS, DPI
from bnbench.views.tune_text import LABEL

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_sensitivity(tune: Tune, path: Path, dpi: int = DPI) -> Path:
    """Draw the tune's sensitivity into `path` (checked by views.plot_file.check_path)."""
    try:
        figure(tune, tune_scores(tune)).savefig(path, dpi=dpi)
    except OSError as e:
        raise BnbenchError(f"--plot {path}: cannot save ({e.strerror or e}); choose a writable path") from None
    return path


def figure(tune: Tune, scored: pd.DataFrame) -> "Figure":
    """One panel of `scored` (analysis.tuning.tune_scores of `tune`): x the grid's points in their listed order
    (labelled with their values), y the metric."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric, listed = tune.spec["metric"], tuning.points(tune.grid)
    scale = tuning.SCALE[metric]
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    baseline = tune.config.baseline
    others, count = iter(COLOURS), scored.variant.nunique()
    for k, (variant, part) in enumerate(scored.groupby("variant", sort=False)):
        colour = BASELINE_COLOUR if variant == baseline else next(others)
        shift = 0.06 * (k - (count - 1) / 2)  # side by side, so that equal means do not hide each other
        x, mean = part.point.to_numpy() + shift, part["mean"].to_numpy() * scale
        low, high = part.ci_low.to_numpy() * scale, part.ci_high.to_numpy() * scale
        ax.errorbar(x, mean, yerr=[mean - low, high - mean], color=colour, capsize=3, label=variant, marker="")
        for p, m, good, best, gone in zip(x, mean, part.good, part.best, part.diverged > 0):
            marker = "*" if best else "x" if gone else "o"
            ax.plot(
                p, m, marker=marker, color=colour, markersize=12 if best else 6, fillstyle="full" if good else "none"
            )
    if len(tune.grid) == 1:
        ((path, values),) = tune.grid.items()
        ax.set_xticks(range(len(values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in values])
        ax.set_xlabel(path)
    else:
        ax.set_xticks(range(len(listed)), [describe(p).replace(", ", "\n") for p in listed], fontsize="small")
    ax.set_ylabel(f"{LABEL[metric]} (mean over {len(tune.spec['tune_seeds'])} tuning seeds, 95% CI)")
    ax.set_title(
        f"{tune.config.name} · tune {tune.dir.name}: * chosen, filled: within {tune.spec['margin']:g} of it, "
        f"x: a seed diverged",
        fontsize="medium",
    )
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
