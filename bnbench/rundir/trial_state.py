"""Each trial's state as the run folder records it: in its checkpoint's summary while it trains, and in
meta.json's `trials` (the runner's record of every trial, by key), which tells a finished trial even when its
checkpoint was pruned or deleted. The one set of words for a trial's status is here too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from bnbench.experiment.trials import Trial
from bnbench.rundir.meta import Meta

if TYPE_CHECKING:
    from bnbench.engines.events import EpochResult


def trial_status(epochs: int, needed: int, diverged: bool, begun: bool, live: bool) -> str:
    """The one set of words for a trial's state: diverged, complete (all `needed` epochs), pending (not begun),
    running (begun, in a run a live process holds), stopped (begun, in a run no process holds: resumable)."""
    if diverged:
        return "diverged"
    if epochs >= needed:
        return "complete"
    if not begun:
        return "pending"
    return "running" if live else "stopped"


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
        self.status = trial_status(result.epoch, epochs_total, result.diverged_step is not None, True, True)

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "diverged")


def state_of(summary: dict) -> TrialState:
    """A checkpoint's summary as a state (it also names its trial: `key`)."""
    return TrialState(**{k: summary[k] for k in vars(TrialState()) if k in summary})


def records(meta: Meta) -> dict:
    """meta.json's record of each trial, by key."""
    return {r["key"]: r for r in meta.fields.trials if isinstance(r, dict) and isinstance(r.get("key"), str)}


def finished_trials(trials: list[Trial], meta: Meta) -> list[Trial]:
    """The trials that meta.json records as finished for this config (what `bnbench prune` may prune)."""
    recorded = records(meta)
    return [trial for trial in trials if finished(recorded.get(trial.key), trial)]


def finished(record: Optional[dict], trial: Trial) -> Optional[TrialState]:
    """meta.json's record of a trial that finished all of this config's epochs (or diverged), else None."""
    try:
        state = TrialState(**{k: record[k] for k in vars(TrialState())})
    except (TypeError, KeyError):  # no record, or not one this bnbench wrote
        return None
    if not (isinstance(state.epochs, int) and isinstance(state.steps, int)):  # a hand edit: no record either
        return None
    done = state.status == "diverged" or (state.status == "complete" and state.epochs >= trial.config.training.epochs)
    return state if done else None
