"""What a run is while it trains or resumes: its folder, config, trials and each trial's state, and where its
lines go (a `Reporter`); shared by `runner` (which trains) and `resume` (which makes a run folder ready to)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bnbench.experiment.config import Config
from bnbench.experiment.trials import Trial
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta
from bnbench.rundir.trial_state import TrialState

if TYPE_CHECKING:
    from bnbench.engines.events import EpochResult, Progress


class Reporter(Protocol):
    def loading(self, what: str, done: int, total: int) -> None: ...
    def started(self, run_dir: Path, trials: list[Trial], done: dict[int, int], train_size: int) -> None: ...
    def progress(self, p: Progress) -> None: ...
    def epoch_done(self, trial: Trial, result: EpochResult) -> None: ...
    def note(self, message: str) -> None: ...


class Silent:
    def loading(self, what, done, total):
        pass

    def started(self, run_dir, trials, done, train_size):
        pass

    def progress(self, p):
        pass

    def epoch_done(self, trial, result):
        pass

    def note(self, message):
        pass


@dataclass
class Run:
    dir: Path
    config: Config
    trials: list[Trial]
    meta: Meta  # as meta.json holds it, less each trial's record (`runner.execute._meta` adds them)
    states: dict[int, TrialState] = field(default_factory=dict)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.dir)
