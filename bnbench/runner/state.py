"""What a run is while it trains or resumes: its folder, config, trials and each trial's state, and where its
lines go (a `Reporter`); shared by `runner` (which trains) and `resume` (which makes a run folder ready to)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

import numpy as np

from bnbench.experiment.config import Config
from bnbench.experiment.trials import Trial
from bnbench.rundir import store

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
class TrialState:
    """What the run folder says about one trial (from its checkpoint)."""

    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    diverged_step: Optional[int] = None
    last_finite_loss: Optional[float] = None
    status: str = "pending"

    def record(self, result: EpochResult, epochs_total: int) -> None:
        self.epochs, self.steps = result.epoch, self.steps + len(result.losses)
        self.seconds += result.seconds
        finite = result.losses[np.isfinite(result.losses)]
        if len(finite):
            self.last_finite_loss = float(finite[-1])
        if result.diverged_step is not None:
            self.diverged_step = result.diverged_step
        self.status = store.trial_status(result.epoch, epochs_total, result.diverged_step is not None, True, True)

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "diverged")


@dataclass
class Run:
    dir: Path
    config: Config
    trials: list[Trial]
    meta: dict
    states: dict[int, TrialState] = field(default_factory=dict)


def now() -> str:
    """The time as meta.json records it (started, ended, resumed, grown)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
