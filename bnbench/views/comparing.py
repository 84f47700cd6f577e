"""What `bnbench compare` shows: the runs compared (or their probes) as text in the asked format, and with --plot
drawn as figures. Notes on the way (a run skipped, a figure written) go to `note` as they happen, before the text,
so that a later error still leaves them said."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from bnbench.analysis import compare_runs
from bnbench.analysis.probes import probe_summaries
from bnbench.errors import BnbenchError
from bnbench.views.compare_text import comparison_output
from bnbench.views.plot_file import check_path
from bnbench.views.probe_report import probes_output

Note = Callable[[str], None]


@dataclass(frozen=True)
class Figure:
    """--plot FILE with its --title and --dpi."""

    path: Path
    title: Optional[str]
    dpi: int

    @classmethod
    def asked(cls, path: Optional[Path], title: Optional[str], dpi: int) -> Optional["Figure"]:
        """The figure asked for, its path checked now (matplotlib installed, a file it can save): before the
        comparison, which can take a while. None without --plot."""
        return None if path is None else cls(check_path(path), title, dpi)


@dataclass(frozen=True)
class Shown:
    """How the comparison is shown (views.compare_text): the format, the measures, the tutorial's windows, every
    statistic, the per-seed numbers, each run in full."""

    fmt: str = "table"
    metrics: Sequence[str] = ()
    windows: bool = False
    full: bool = False
    per_seed: bool = False
    every: bool = False


def comparison_text(
    paths: list[Path],
    baseline: Optional[str],
    figure: Optional[Figure],
    note: Note,
    width: Optional[int],
    terminal: bool,
    compared: dict,
    shown: Shown,
) -> str:
    """The comparison of the runs under `paths` (`compared`: compare_runs's epoch, pool, test and effect), shown as
    `shown` says. `width`: the terminal's (None for a file); the glance always fits it, the detailed tables (--full,
    --windows, --metric) only on a terminal (in a pipe they are whole)."""
    comparisons, skipped = compare_runs(paths, baseline, **compared)
    for warning in skipped:
        note(f"warning: {warning}")
    detail = shown.full or shown.windows or bool(shown.metrics)
    text = comparison_output(
        comparisons,
        shown.fmt,
        shown.metrics,
        shown.windows,
        width=width if terminal or not detail else None,
        full=shown.full,
        per_seed=shown.per_seed,
        every=shown.every,
    )
    if figure is not None:
        _draw(comparisons, figure, note)
    return text


def _draw(comparisons: list, figure: Figure, note: Note) -> None:
    """The runs' curves, a page per PER_PAGE runs, at most MAX_RUNS of them (the rest named in a note)."""
    from bnbench.views import plots

    for file in plots.save_plot(comparisons, figure.path, figure.title, figure.dpi):
        note(f"plot: {file}")
    if len(comparisons) > plots.MAX_RUNS:
        note(
            f"plot: drew the first {plots.MAX_RUNS} of {len(comparisons)} runs ({plots.PER_PAGE} a page); to draw "
            f"others, pass their folders"
        )


def probes_text(
    paths: list[Path], baseline: Optional[str], figure: Optional[Figure], note: Note, width: Optional[int]
) -> str:
    """`compare --probes`: the probe table of every run with probes (views.probe_report), the first run's probes
    drawn with --plot."""
    summaries = probe_summaries(paths, baseline)
    if figure is not None:
        from bnbench.views.probe_plots import save_probe_plot

        note(f"plot: {save_probe_plot(summaries[0], figure.path, figure.title, figure.dpi)}")
    return probes_output(summaries, width)


def save_text(text: str, output: Path) -> None:
    """--output FILE: the text written to it; a write refused is one line naming the file."""
    try:
        output.write_text(text)
    except OSError as e:
        raise BnbenchError(f"--output {output}: cannot write ({e.strerror or e})") from None
