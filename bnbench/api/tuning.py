"""`bnbench.tune`: each variant at its own best setting, from Python, as `bnbench tune` does it (the same library
steps: runner.tune), returning the tune folder as an object that prints nothing."""

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd

from bnbench.api.comparing import Comparison, compare
from bnbench.api.runs import PathLike, Run
from bnbench.api.training import Options, _config, _console, _json, _options, _reporter, _seeds


@dataclass(frozen=True, eq=False)
class Tuned:
    """A tune folder (results/<name>/<tune id>): `choices` each variant's chosen setting, `scores` the validation
    metric per variant and grid point (the sensitivity table), `tuned` and `shared` its two compared runs."""

    path: Path

    @cached_property
    def _tune(self):
        from bnbench.rundir.tunes import read

        return read(self.path)

    @property
    def choices(self) -> dict[str, dict[str, Any]]:
        """{variant: {path: value}}, chosen on the validation metric of the tuning seeds."""
        return self._tune.choices

    @cached_property
    def scores(self) -> pd.DataFrame:
        """A row per variant and grid point: the grid's values, then the columns of `analysis.tuning.scores`
        (mean and 95% interval over tuning seeds, diverged seeds, `best`, `good`: within the margin)."""
        from bnbench.analysis import tuning

        scored = tuning.tune_scores(self._tune)
        grid = pd.DataFrame(tuning.points(self._tune.grid)).rename_axis("point").reset_index()
        return grid.merge(scored, on="point").drop(columns="point")

    @property
    def tuned(self) -> Run:
        """The run of each variant at its own chosen setting, on the final seeds."""
        return Run(self.path / "tuned")

    @property
    def shared(self) -> Run:
        """The run of every variant at the config's own setting, on the same seeds."""
        return Run(self.path / "shared")

    def compare(self, **options) -> Comparison:
        """`compare` of the tuned and the shared runs on test (each on its own); `options` are compare's."""
        return compare(self.tuned, self.shared, pool=False, **options)

    def plot(self):
        """The sensitivity figure (`bnbench tune --plot`), a matplotlib Figure."""
        from bnbench.analysis.tuning import tune_scores
        from bnbench.views.tune_plot import figure

        return figure(self._tune, tune_scores(self._tune))

    def text(self, width: Optional[int] = 80) -> str:
        """What `bnbench tune` prints: the choices, both verdicts, the sensitivity table."""
        from bnbench.views.tune_text import tune_output

        return tune_output(self._tune, width)

    def __repr__(self) -> str:
        return self.text()


def tune(
    config: PathLike,
    grid: Options = None,
    *,
    tune_seeds: Union[str, Iterable[int], None] = None,
    seeds: Union[str, Iterable[int], None] = None,
    metric: str = "val_acc",
    margin: Optional[float] = None,
    set: Options = None,  # the CLI's --set
    out: PathLike = "results",
    jobs: int = 1,
    backend: str = "local",
    device: Optional[str] = None,
    progress: bool = False,
    resume: bool = False,
) -> Tuned:
    """`bnbench tune CONFIG --grid ...` from Python; returns the tune folder as a `Tuned`.

    `config`: as `bnbench.run`'s (a file, a shipped name or a dict of fields); `grid`: 'PATH=V1,V2' texts as
    --grid takes them, or a dict ({"optimizer.lr": [1e-4, 1e-3, 1e-2]}); `set` as `bnbench.run`'s; `tune_seeds`,
    `seeds`: as --seeds takes them, or integers. With `resume=True`, `config` is a tune folder to continue (a
    complete one is returned as it is)."""
    from bnbench.backends.dispatch import Dispatch
    from bnbench.runner import tune as tuning

    dispatch = Dispatch(backend, jobs, quiet=not progress)
    if resume:
        started = tuning.read(Path(config))
    else:
        started = tuning.start(
            _config(config),
            _options(grid, lambda values: _json(list(values))[1:-1]),
            tune_seeds=_seeds(tune_seeds),
            seeds=_seeds(seeds),
            metric=metric,
            margin=margin,
            set_=_options(set, _json),
            device=device,
            out=Path(out),
        )
    console = _console() if progress else None
    done = tuning.train(started, dispatch, None, lambda: _reporter(console))
    return Tuned(done.dir)
