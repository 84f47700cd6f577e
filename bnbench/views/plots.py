"""`bnbench compare --plot`: training loss and test accuracy vs step, one row of two panels per run, PER_PAGE runs a
page: FILE.png, FILE-2.png, ... (or .svg), or one FILE.pdf of pages.

Pages have fixed margins: constrained layout, over one figure with a row per run, grew far faster than the rows
(benchmarks/compare_speed.py). Drawing a run still takes matplotlib a while (docs/statistics.md), so at most
MAX_RUNS runs are drawn, the first in the comparison's order, and the caller says how many were left out.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display), so it works headless and leaves the
global backend alone.
"""

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from bnbench.analysis import Comparison
from bnbench.analysis.columns import SPEEDS, col
from bnbench.analysis.outcomes import by_rank
from bnbench.analysis.sentences import speed_value
from bnbench.errors import BnbenchError
from bnbench.views.glance import separating
from bnbench.views.plot_file import check_path

if TYPE_CHECKING:  # matplotlib is the optional `plot` extra: imported only where a figure is drawn
    from matplotlib.figure import Figure

PER_PAGE = 5
MAX_RUNS = 20
WIDTH_INCHES, TITLE_INCHES, DPI = 13, 0.5, 110
# A row of panels, in inches: its panels AXES; above them its title and first verdict line ABOVE, each further
# verdict line LINE; below them the step axis's ticks and label LABELS, then its legend (LEGEND_COLUMNS entries a
# line, LEGEND_ROW each): BELOW + LEGEND_ROW per legend line in all.
AXES_INCHES, ABOVE_INCHES, LINE_INCHES = 2.85, 0.8, 0.17  # a run without a sweep: 4.6 inches, as before
LABELS_INCHES, BELOW_INCHES, LEGEND_ROW_INCHES, LEGEND_COLUMNS = 0.55, 0.75, 0.2, 4
BASELINE_COLOUR = "black"
COLOURS = [
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
]  # the other variants, in the config's order (tab10 without its grey: the target lines')
DASHES = ["-", "--", "-.", (0, (3, 1, 1, 1, 1, 1))]  # sweep points; ":" is the target lines'


def save_plot(comparisons: list[Comparison], path: Path, title: Optional[str] = None, dpi: int = DPI) -> list[Path]:
    """Draw the first MAX_RUNS comparisons, PER_PAGE a page, under `title` (default: each run's); `dpi` for PNG.
    Returns the files written."""
    from matplotlib.backends.backend_pdf import PdfPages

    path = check_path(path)
    shown = comparisons[:MAX_RUNS]
    pages = [shown[i : i + PER_PAGE] for i in range(0, len(shown), PER_PAGE)]
    try:
        if path.suffix.lower() == ".pdf":
            with PdfPages(path) as pdf:
                for group in pages:
                    pdf.savefig(page(group, title))
            return [path]
        files = [path.with_name(f"{path.stem}-{i + 1}{path.suffix}") if i else path for i in range(len(pages))]
        for group, file in zip(pages, files):
            page(group, title).savefig(file, dpi=dpi)
        return files
    except OSError as e:
        raise BnbenchError(f"--plot {path}: cannot save ({e.strerror or e}); choose a writable path") from None


def page(comparisons: list[Comparison], title: Optional[str] = None) -> "Figure":
    """One row of panels per comparison, under its title; `title` replaces a lone run's, and heads a page of
    several. Each row is as tall as its verdict lines and legend need, its panels AXES_INCHES whatever they are:
    a sweep's lines (lr: 4 points) ran into the panels' titles, and its legend, inside a panel, hid the curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    several = title is not None and len(comparisons) > 1
    head = TITLE_INCHES * several
    verdicts = [_verdicts(c) for c in comparisons]
    legends = [math.ceil(_entries(c) / LEGEND_COLUMNS) for c in comparisons]
    above = [ABOVE_INCHES + LINE_INCHES * text.count("\n") for text in verdicts]
    below = [BELOW_INCHES + LEGEND_ROW_INCHES * n for n in legends]
    heights = [AXES_INCHES + a + b for a, b in zip(above, below)]
    figure = Figure(figsize=(WIDTH_INCHES, sum(heights) + head))
    FigureCanvasAgg(figure)
    rows = figure.subfigures(len(comparisons) + several, 1, squeeze=False, height_ratios=[head] * several + heights)[
        :, 0
    ]
    if several:
        rows[0].suptitle(title, fontweight="bold", fontsize="x-large", va="center", y=0.5)
        rows = rows[1:]
    settings = separating([c.results.config for c in comparisons])
    for row, comparison, extra, text, height, top, bottom in zip(
        rows, comparisons, settings, verdicts, heights, above, below
    ):
        heading = title if title is not None and len(comparisons) == 1 else comparison.title
        row.suptitle(heading + (f" · {extra}" if extra else ""), fontweight="bold", y=1 - 0.12 / height, va="top")
        row.text(0.5, 1 - 0.4 / height, text, ha="center", va="top", fontsize="small", linespacing=1.3)
        loss, accuracy = row.subplots(1, 2, width_ratios=[3, 2])
        row.subplots_adjust(left=0.07, right=0.98, bottom=bottom / height, top=1 - top / height, wspace=0.18)
        styles = _styles(comparison)
        _loss_panel(loss, comparison, styles)
        _accuracy_panel(accuracy, comparison, styles)
        _legend(row, (loss, accuracy), (bottom - LABELS_INCHES) / height)
        last = max([1, *(c.step.max() for c in (comparison.loss_curves, comparison.accuracy_curves) if len(c))])
        for ax, ticks in ((loss, 9), (accuracy, 5)):  # step 0 to the last, whole-number ticks that never touch
            ax.set_xlim(0, last)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=ticks, integer=True, steps=[1, 2, 2.5, 5, 10]))
            for step in _epoch_ends(comparison)[:-1]:
                ax.axvline(step, color="0.85", linewidth=0.8, zorder=0)
    return figure


def _verdicts(comparison: Comparison) -> str:
    """'bn_before: Δ test acc +6.17 [+4.84, +7.49] · to loss 1.98× · to acc 4.66–6.11×', a variant a part. A run
    made with --until-decided leads with its decisions (their repeated CIs are the intervals that hold) and labels
    the table's interval as the fixed-n one it is, as the text output does."""
    parts = []
    fixed = " fixed-n CI" if comparison.sequential is not None else ""  # else labelled as the verdicts label it
    for row in comparison.table.to_dict("records"):
        ranked = by_rank(row, "test_acc")
        if row["baseline"] or not (row["pairs"] or ranked):
            continue
        point = "".join(f" {p}={row[p]}" for p in comparison.points)
        delta = f"Δ test acc {row[col('test_acc', 'delta')]:+.2f}"
        if row[col("test_acc", "ci_low")] == row[col("test_acc", "ci_low")]:
            label = fixed or " unadjusted CI" * (row[col("test_acc", "ci_unadjusted")] is True)
            delta += f"{label} [{row[col('test_acc', 'ci_low')]:+.2f}, {row[col('test_acc', 'ci_high')]:+.2f}]"
        if ranked:  # the pairs where neither diverged are not the comparison
            wins, n = row[col("test_acc", "ranked_wins")], row[col("test_acc", "ranked")]
            delta = f"test acc {wins}/{n} seeds better (a diverged trial the worst)"
        speeds = [
            f"to {'loss' if m == 'steps' else 'acc'} "
            + speed_value(row[col(m, "speedup")], row[col(m, "speedup_high")], row[col(m, "estimator")])
            for m in SPEEDS
            if row[col(m, "speedup")] == row[col(m, "speedup")]
        ]
        parts.append(" · ".join([f"{row['variant']}{point}: {delta}", *speeds]))
    parts = [*comparison.decided, *parts]
    return "\n".join(parts[:3]) + (f"\n(+{len(parts) - 3} more: bnbench compare)" if len(parts) > 3 else "")


def _epoch_ends(comparison: Comparison) -> list[int]:
    """The steps at which the compared trials' epochs end (of the first trial with rows): where to mark them."""
    batches = comparison.results.batches
    first = batches[batches.trial == batches.trial.iloc[0]] if len(batches) else batches
    return [int(s) for s in first.groupby("epoch").step.max()]


def _styles(comparison: Comparison) -> dict:
    """(sweep values..., variant) -> line colour and style: the baseline always BASELINE_COLOUR, the other variants
    COLOURS in the config's order, sweep points told apart by the line's dashes, so that one variant has one
    colour in every figure of the run."""
    names = [v.name for v in comparison.results.config.variants if v.name != comparison.baseline]
    keys = comparison.table[comparison.points + ["variant"]].itertuples(index=False, name=None)
    points = list(dict.fromkeys(tuple(key[:-1]) for key in keys))
    return {
        (*point, variant): {
            "color": BASELINE_COLOUR
            if variant == comparison.baseline
            else COLOURS[names.index(variant) % len(COLOURS)],
            "linestyle": DASHES[points.index(point) % len(DASHES)],
        }
        for point in points
        for variant in [comparison.baseline, *names]
    }


def _label(comparison: Comparison, keys: tuple) -> str:
    """'batchnorm (baseline), optimizer.lr=0.001'; variants with diverged seeds say how many were left out."""
    *point, variant = keys
    row = comparison.table[comparison.table.variant == variant]
    for path, value in zip(comparison.points, point):
        row = row[row[path] == value]
    parts = [
        variant + " (baseline)" * (variant == comparison.baseline),
        *(f"{p}={v}" for p, v in zip(comparison.points, point)),
    ]
    diverged = row.diverged.iloc[0].count("diverged") if len(row) else 0
    return ", ".join(parts) + (f" ({diverged} diverged seed{'s' * (diverged > 1)} left out)" if diverged else "")


def _loss_panel(ax, comparison: Comparison, styles: dict) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    curves, keys = comparison.loss_curves, comparison.points + ["variant"]
    for group, curve in curves.groupby(keys, sort=False):
        (line,) = ax.plot(curve.step, curve.loss_mean, linewidth=1.2, label=_label(comparison, group), **styles[group])
        _band(ax, curve.step, curve.loss_mean, curve.loss_std, line.get_color())
    _targets(ax, comparison, "steps")
    window = ", ".join(dict.fromkeys(str(w) for w in comparison.table.smoothing))
    ax.set(
        xlabel="training step (mini-batch)",
        ylabel=f"training loss (mean of last {window} batches)",
        title="training loss, mean ± std over seeds",
    )
    if (curves.loss_mean > 0).all():  # log scale: the late, small differences stay visible; plain tick labels
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def _accuracy_panel(ax, comparison: Comparison, styles: dict) -> None:
    curves = comparison.accuracy_curves
    for group, curve in curves.groupby(comparison.points + ["variant"], sort=False):
        (line,) = ax.plot(
            curve.step, curve.acc_mean, marker="o", markersize=3, label=_label(comparison, group), **styles[group]
        )
        _band(ax, curve.step, curve.acc_mean, curve.acc_std, line.get_color())
    _targets(ax, comparison, "steps_acc")
    ax.set(
        xlabel="training step (mini-batch)",
        ylabel="test accuracy (%), eval mode",
        title="test accuracy, mean ± std over seeds",
    )
    ax.grid(True, alpha=0.3)


def _band(ax, steps, mean, std, colour: str) -> None:
    """mean ± std over seeds, shaded in the line's colour (no band where one seed leaves std undefined)."""
    ax.fill_between(steps, mean - std.fillna(0), mean + std.fillna(0), color=colour, alpha=0.2, linewidth=0)


def _targets(ax, comparison: Comparison, measure: str) -> None:
    """The steps-to-target measure's target levels (the baseline's, per sweep point: the mean over seeds)."""
    targets = comparison.table.loc[comparison.table.baseline.astype(bool), col(measure, "target")].dropna()
    for i, target in enumerate(targets):
        ax.axhline(
            target,
            color="0.3",
            linestyle=":",
            linewidth=1,
            label=f"target: {comparison.baseline}'s {SPEEDS[measure].label}" if i == 0 else None,
        )


def _entries(comparison: Comparison) -> int:
    """The legend's entries: a line per sweep point and variant, and the two target lines."""
    return len(comparison.table) + 2


def _legend(row, panels, top: float) -> None:
    """One legend for a row's panels (the same lines in both), under them: inside a panel it hid the curves."""
    found = {}
    for ax in panels:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            found.setdefault(label, handle)
    if found:  # every trial of the run may have diverged
        row.legend(
            found.values(),
            found.keys(),
            loc="upper center",
            bbox_to_anchor=(0.5, top),
            ncol=LEGEND_COLUMNS,
            fontsize="small",
            frameon=False,
        )
