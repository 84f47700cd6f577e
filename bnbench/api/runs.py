"""A run folder as an object: its config, meta.json and rows as read-only DataFrames, read when first asked for."""

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional, Union

import pandas as pd
import yaml

from bnbench.analysis.catalog import run_rows
from bnbench.analysis.reading import Results, index_of, load_run, read_probes
from bnbench.errors import BnbenchError
from bnbench.rundir import search
from bnbench.rundir.folder import RunFolder

PathLike = Union[str, Path]


@dataclass(frozen=True, eq=False)
class Run:
    """One run folder (results/<name>/<run id>). Nothing is read until asked for, and each file once; the
    DataFrames are the run's rows as `compare` reads them (checked: a damaged file raises BnbenchError)."""

    path: Path

    @cached_property
    def config(self) -> dict:
        """The resolved config the run trains (config.yaml), as a dict."""
        return yaml.safe_load(RunFolder(self.path).config_file.read_text())

    @cached_property
    def meta(self) -> dict:
        """meta.json as a dict: status, environment, seeds grown, the sequential plan."""
        return json.loads(RunFolder(self.path).meta_file.read_text())

    @cached_property
    def _results(self) -> Results:
        return load_run(self.path)

    @property
    def status(self) -> str:
        """complete, running or partial, as meta.json and the lock say (no row is read for it)."""
        folder = RunFolder(self.path)
        return folder.status(folder.meta())

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial: its number, sweep point values, variant and seed."""
        index = index_of(self.path)  # the config's trials: no row need be read
        rows = []
        for point, values in enumerate(index.points):
            config = index.resolved[point]
            for seed in config.seeds:
                rows += [{**values, "variant": v.name, "seed": seed} for v in config.variants]
        return pd.DataFrame(rows).rename_axis("trial").reset_index()

    @property
    def batches(self) -> pd.DataFrame:
        """batches.csv: the mini-batch losses."""
        return self._results.batches.copy()

    @property
    def epochs(self) -> pd.DataFrame:
        """epochs.csv: per trial and epoch, train loss, test loss and accuracy, seconds."""
        return self._results.epochs.copy()

    @property
    def evals(self) -> pd.DataFrame:
        """evals.csv: test loss and accuracy at each evaluation."""
        return self._results.evals.copy()

    @cached_property
    def probes(self) -> pd.DataFrame:
        """probes.csv (a run without probes raises BnbenchError saying how to make them)."""
        return read_probes(self.path)

    def show(self, fmt: str = "table", width: Optional[int] = 80) -> str:
        """What `bnbench show` prints: status, settings, each trial, the verdict (`fmt` table or json)."""
        from bnbench.analysis.show import summary
        from bnbench.views.show_text import show_output

        return show_output(summary(self.path), fmt, width)

    def export_tensorboard(self, logdir: PathLike) -> Path:
        """`bnbench export RUN --tensorboard LOGDIR`: every trial's curves as TensorBoard scalars (the
        `tensorboard` extra); returns the folder written."""
        from bnbench.views.tensorboard import export

        return export(self.path, Path(logdir))

    def prune(self, keep: str = "final") -> str:
        """`bnbench prune RUN --keep KEEP` (final or none): frees the disk its finished trials' checkpoints hold;
        returns what it freed, as the CLI prints it."""
        from bnbench.rundir.checkpoints import prune_run

        return prune_run(self.path, keep).text()

    def remove(self) -> str:
        """`bnbench rm RUN --yes`: deletes the run folder (refused while a run holds it); returns what it removed."""
        from bnbench.rundir.removal import remove_run

        return remove_run(self.path, lambda run_dir, holds: True)

    def __repr__(self) -> str:
        return f"Run('{self.path}')"


def load(path: PathLike) -> Run:
    """The run in folder `path` (a run folder, e.g. results/quick-digits/20261206-232516)."""
    path = Path(path)
    if not search.holds_run(path):
        raise BnbenchError(f"{path}: not a run folder (no config.yaml or meta.json); pass results/<name>/<run id>")
    return Run(path)


def init(folder: PathLike = ".") -> tuple[Path, Path]:
    """`bnbench init FOLDER`: writes my_net.yaml and my_net.py there (never over a file); returns their paths."""
    from bnbench.experiment.scaffold import init as write

    return write(Path(folder))


def runs(results: PathLike = "results") -> pd.DataFrame:
    """`bnbench list`'s runs under `results`, newest first: name, run, path, started, status, trials, seeds, epochs,
    overrides, device, tags, note; a run that cannot be read has its `error`."""
    return pd.DataFrame(run_rows(Path(results)))
