"""A run's rows grouped by trial, and checked across files: steps and epochs numbered 1, 2, 3, ... per trial, only
a trial's last loss not finite, the same epochs in batches.csv, epochs.csv and evals.csv."""

from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import pandas as pd

from bnbench.errors import BnbenchError
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.schema import BATCHES, EPOCHS, EVALS


class Trials(Protocol):
    """What the checks need of a run's trial index (bnbench.analysis.reading.TrialIndex)."""

    size: int
    labels: list[str]

    def describe(self, number: int) -> str: ...


def by_trial(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by trial, file order within one; the index stays each row's position in the file. A finished
    run's files are in trial order already."""
    trial = frame.trial.to_numpy()
    return frame if (trial[1:] >= trial[:-1]).all() else frame.iloc[np.argsort(trial, kind="stable")]


def spans(frame: pd.DataFrame, trials: int) -> np.ndarray:
    """Where each trial's rows start in a frame sorted by trial: trial i's are rows spans[i]:spans[i + 1]."""
    return np.searchsorted(frame.trial.to_numpy(), np.arange(trials + 1))


def _first(frame: pd.DataFrame, mask: np.ndarray) -> int:
    """The position (in `frame`) of the earliest row in the file among those in `mask`."""
    rows = np.flatnonzero(mask)
    return int(rows[np.argmin(frame.index.to_numpy()[rows])])


def per_trial_max(frame: pd.DataFrame, column: str, trials: int) -> np.ndarray:
    out = np.zeros(trials, dtype=np.int64)
    np.maximum.at(out, frame.trial.to_numpy(), frame[column].to_numpy())
    return out


def _check_numbering(path: Path, frame: pd.DataFrame, column: str, trials: int) -> None:
    """`column` runs 1, 2, 3, ... within each trial."""
    values = frame[column].to_numpy()
    order = np.arange(len(frame)) - spans(frame, trials)[frame.trial.to_numpy()] + 1
    wrong = values != order
    if wrong.any():
        i = _first(frame, wrong)
        raise BnbenchError(
            f"{path}: line {frame.index[i] + 2}: {column} {values[i]} should be {order[i]}; rows "
            f"were deleted, repeated or reordered"
        )


def check_rows(folder: RunFolder, batches: pd.DataFrame, epochs: pd.DataFrame, trials: Trials) -> None:
    """Steps and epochs run 1, 2, 3, ... per trial, only a trial's last loss may be NaN/inf, and both files
    hold the same epochs of each trial."""
    _check_numbering(folder.file(BATCHES.file), batches, "step", trials.size)
    _check_numbering(folder.file(EPOCHS.file), epochs, "epoch", trials.size)
    last = np.diff(spans(batches, trials.size))[batches.trial.to_numpy()]  # steps are 1..n: the last is n
    early = ~np.isfinite(batches.loss.to_numpy()) & (batches.step.to_numpy() != last)
    if early.any():
        raise BnbenchError(
            f"{folder.file(BATCHES.file)}: line {batches.index[_first(batches, early)] + 2}: the loss "
            f"is not finite but the trial goes on; the file was edited"
        )
    ran, done = per_trial_max(batches, "epoch", trials.size), per_trial_max(epochs, "epoch", trials.size)
    differ = ran != done
    if differ.any():
        trial = int(np.argmax(differ))
        raise BnbenchError(
            f"{folder.file(EPOCHS.file)}: {trials.describe(trial)} has {_epochs(done[trial])} here but "
            f"{ran[trial]} in batches.csv; one of the files was truncated or edited"
        )


def evals_checked(
    folder: RunFolder, evals: Optional[pd.DataFrame], batches: pd.DataFrame, epochs: pd.DataFrame, trials: Trials
) -> pd.DataFrame:
    """evals.csv, checked against epochs.csv (same epochs per trial, steps increasing); without it (older runs),
    one evaluation per epoch end: epochs.csv's test numbers at the epoch's last step."""
    if evals is None:
        ends = batches.groupby(["trial", "epoch"]).step.max().reset_index()
        return ends.merge(epochs[trials.labels + ["trial", "epoch", "test_loss", "test_acc"]], on=["trial", "epoch"])
    path = folder.file(EVALS.file)
    evals = by_trial(evals)
    trial, step = evals.trial.to_numpy(), evals.step.to_numpy()
    backwards = np.append(False, (trial[1:] == trial[:-1]) & (step[1:] <= step[:-1]))
    if backwards.any():
        i = _first(evals, backwards)
        raise BnbenchError(
            f"{path}: line {evals.index[i] + 2}: step {step[i]} does not follow the step before it; "
            f"rows were deleted, repeated or reordered"
        )
    have, want = per_trial_max(evals, "epoch", trials.size), per_trial_max(epochs, "epoch", trials.size)
    differ = (want > 0) & (have != want)
    if differ.any():
        trial = int(np.argmax(differ))
        raise BnbenchError(
            f"{path}: {trials.describe(trial)} has {_epochs(have[trial])} here but {want[trial]} in "
            f"epochs.csv; one of the files was truncated or edited"
        )
    return evals


def _epochs(n: int) -> str:
    n = int(n)
    return f"{n} epoch{'s' * (n != 1)}"
