"""`bnbench compare` as an object: the table, the per-seed numbers and the verdict lines of runs compared with
their baselines, a figure of their curves, and an HTML rendering for Jupyter. It calls what the CLI calls
(`analysis.compare_runs`, `views.compare_text`), so its numbers are the CLI's."""

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import pandas as pd

from bnbench.analysis import compare_runs
from bnbench.analysis import summary as analysed
from bnbench.api.runs import PathLike, Run
from bnbench.errors import BnbenchError
from bnbench.views.compare_text import SHOWN, comparison_output, frame

GLANCE = ["variant", "seeds", "test_acc_mean", "test_acc_delta", "test_acc_ci_low", "test_acc_ci_high"]
GLANCE += ["test_acc_p_holm", "test_acc_wins", "pairs"]


@dataclass(frozen=True)
class Comparison:
    """Runs compared with their baselines: `runs` as `compare_runs` grouped and pooled them (newest first),
    `measures` the --metric choices shown, `skipped` a line per run that could not be compared."""

    runs: list[analysed.Comparison]
    measures: list[str]
    skipped: list[str]
    paths: list[Path]
    baseline: Optional[str] = None

    @property
    def table(self) -> pd.DataFrame:
        """A row per run x sweep point x variant, every declared column of the measures shown (the meanings:
        bnbench.analysis.columns.COLUMNS), as `--format csv` has them."""
        return frame(self.runs, self.measures)

    @property
    def per_seed(self) -> pd.DataFrame:
        """A row per trial and measure: the numbers the table is made from (`--per-seed`)."""
        return frame(self.runs, self.measures, per_seed=True)

    @property
    def windows(self) -> pd.DataFrame:
        """The tutorial's "Loss after mini-batch N" lines: a row per run x variant x window (`--windows`)."""
        return frame(self.runs, self.measures, windows=True)

    @property
    def probes(self) -> pd.DataFrame:
        """`compare --probes`: per run with probes, sweep point, layer, measure, step and variant, the mean over
        seeds and the paired difference from the baseline with its t-interval."""
        from bnbench.analysis.probes import probe_summaries

        summaries = probe_summaries(self.paths, self.baseline)
        return pd.concat([s.table.assign(run=str(s.run_dir)) for s in summaries], ignore_index=True)

    @property
    def verdict(self) -> list[str]:
        """The verdict lines, run by run: a sequential run's decisions and design first, then a line per variant."""
        return [line for c in self.runs for line in [*c.decided, *c.verdicts]]

    def text(self, fmt: str = "table", width: Optional[int] = 80, full: bool = False) -> str:
        """What the CLI prints: the glance, or `full` every statistic, or an export format (markdown, csv, json,
        latex, html)."""
        return comparison_output(self.runs, fmt, self.measures if full else (), width=width, full=full)

    def plot(self, title: Optional[str] = None):
        """The curves of the first runs (up to plots.PER_PAGE) as a matplotlib Figure, as --plot draws them."""
        from bnbench.views import plots

        return plots.page(self.runs[: plots.PER_PAGE], title)

    def report(self, path: Optional[PathLike] = None) -> str:
        """The comparison as one self-contained HTML page to share (`bnbench compare --format html`): run facts,
        verdict, table, curves, per-seed values; also written to `path` (UTF-8) where given."""
        page = comparison_output(self.runs, "html", self.measures)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        """Jupyter's view: each run's title, its verdict lines, and the main columns of its table."""
        parts = []
        for c in self.runs:
            lines = [*c.decided, *c.verdicts]
            shown = c.table[[col for col in GLANCE if col in c.table.columns]]
            parts.append(
                f"<h4>{html.escape(c.title)}</h4>"
                + "".join(f"<p>{html.escape(line)}</p>" for line in lines)
                + shown.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}")
            )
        return "".join(parts)

    def __repr__(self) -> str:
        return self.text()


def compare(
    *runs: Union[PathLike, Run],
    baseline: Optional[str] = None,
    metric: Sequence[str] = (),
    test: str = "t",
    effect: Optional[float] = None,
    epoch: Optional[int] = None,
    pool: bool = True,
) -> Comparison:
    """Compare the runs under each argument (run folders, results folders, or `Run`s; default: "results") as
    `bnbench compare` does: `baseline` a variant name or VARIANT@RUN, `metric` the --metric choices to keep in the
    table, `test` "t" or "exact", `effect` the --effect difference to size seeds for, `epoch` the epoch compared,
    `pool` whether runs of one experiment are pooled."""
    unknown = [m for m in metric if m not in SHOWN]
    if unknown:
        raise BnbenchError(f"metric {unknown[0]}: unknown metric; choose from {', '.join(SHOWN)}")
    paths = [r.path if isinstance(r, Run) else Path(r) for r in runs] or [Path("results")]
    compared, skipped = compare_runs(paths, baseline, epoch=epoch, pool=pool, test=test, effect=effect)
    return Comparison(compared, [m for m in SHOWN if m in metric] or list(SHOWN), skipped, paths, baseline)
