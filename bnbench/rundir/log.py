"""The run's text lines, and `run.log`: every one of them, in the run folder.

Four kinds of line, each shown on the terminal from a verbosity level up (`bnbench run -q`, default, `-v`, `-vv`):
notes (always), one line per finished trial (default), per-epoch summaries (-v), and the tutorial's
"Loss after mini-batch N" lines (-vv), the seed experiment's own output. `RunLog` appends all four to RUN/run.log
whatever the terminal shows, so a quiet terminal loses nothing; the log ends with the verdict lines and
"finished", or with "stopped" and why.
"""

import sys
import time
from contextlib import suppress
from pathlib import Path

from bnbench.engines.events import EpochResult, Progress
from bnbench.errors import BnbenchError, Interrupted
from bnbench.experiment.trials import Trial
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.store import unwritable

NOTE, TRIAL, EPOCH, LOSS = 0, 1, 2, 3  # the verbosity from which each kind of line is printed


def loss_line(trial: Trial, p: Progress) -> str:
    return f"{trial.key} epoch {p.epoch}: Loss after mini-batch {p.batch:5d}: {p.window_loss:.3f}"


def held_out(result: EpochResult) -> tuple[str, float, float]:
    """What a progress line reports besides the training loss: the validation split where the run holds one (a run
    that keeps a validation split is watched on it, and a tune's tuning stage must show no test number), else the
    test split; as (name, loss, accuracy)."""
    return ("val", *result.val) if result.val else ("test", result.test_loss, result.test_acc)


def epoch_line(trial: Trial, result: EpochResult) -> str:
    diverged = f"  diverged at step {result.diverged_step}" if result.diverged_step is not None else ""
    split, loss, acc = held_out(result)
    return (
        f"{trial.key} epoch {result.epoch}/{trial.config.training.epochs}: train loss {result.train_loss:.4f}, "
        f"{split} loss {loss:.4f}, {split} acc {100 * acc:.2f}% ({result.seconds:.1f} s){diverged}"
    )


def trial_line(trial: Trial, result: EpochResult) -> str:
    """The last epoch of a trial (or the one it diverged in): what the trial ended with."""
    if result.diverged_step is not None:
        return f"{trial.key}: diverged at step {result.diverged_step} (epoch {result.epoch}), stopped"
    epochs = f"{result.epoch} epoch{'s' * (result.epoch != 1)}"
    split, _, acc = held_out(result)
    return f"{trial.key}: done, {epochs}, train loss {result.train_loss:.4f}, {split} acc {100 * acc:.2f}%"


def finishes(trial: Trial, result: EpochResult) -> bool:
    return result.epoch >= trial.config.training.epochs or result.diverged_step is not None


def _stamped(line: str) -> str:
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n"


def _why(error: BaseException) -> str:
    if isinstance(error, (KeyboardInterrupt, Interrupted)):
        return str(error) or "interrupted"
    return str(error) if isinstance(error, BnbenchError) else f"{type(error).__name__}: {error}"


def finished(run_dir: Path, verdicts: list[str]) -> None:
    """The end of a run that trained every trial: its verdict lines and the end line, after every other line."""
    lines = [*(f"verdict: {line}" for line in verdicts), "finished: every trial trained"]
    _append(run_dir, lines, f"see the verdict of the complete run with: bnbench compare {run_dir}")


def noted(run_dir: Path, lines: list[str]) -> None:
    """Notes made between two trainings of a run (a sequential run's looks), after every other line."""
    _append(run_dir, [f"note: {line}" for line in lines], f"continue with: bnbench run --resume {run_dir}")


def _append(run_dir: Path, lines: list[str], then: str) -> None:
    """Append stamped lines to run.log; a disk that refuses them (full, read-only) is one line saying `then`: the
    run folder itself is as complete as before."""
    path = RunFolder(run_dir).log_file
    try:
        with open(path, "a", encoding="utf-8") as file:
            file.writelines(_stamped(line) for line in lines)
    except OSError as e:
        raise BnbenchError(unwritable(path, e, then)) from None


class RunLog:
    """A reporter that appends every line to RUN/run.log (with the time), then passes each event on to `inner`."""

    def __init__(self, run_dir: Path, inner):
        self.inner, self.dir = inner, run_dir
        self.file = open(RunFolder(run_dir).log_file, "a", encoding="utf-8", buffering=1)

    def _write(self, line: str) -> None:
        self.file.write(_stamped(line))

    def close(self) -> None:
        """Called as the run's process leaves the run folder: when an exception is on its way out (Ctrl-C, a
        signal, an error), the log's end line says the run stopped and why (a finished run's end line is written
        with its verdict, see `finished`)."""
        error = sys.exc_info()[1]
        if error is not None:
            why = _why(error)
            resume = f"bnbench run --resume {self.dir}"
            with suppress(OSError):  # the disk refused it (full, read-only): the error on its way out says so
                self._write(f"stopped: {why}" + ("" if resume in why else f"; continue with: {resume}"))
        with suppress(OSError):
            self.file.close()

    def loading(self, what: str, done: int, total: int) -> None:
        self.inner.loading(what, done, total)

    def started(self, run_dir: Path, trials: list[Trial], done: dict[int, int], train_size: int) -> None:
        finished = sum(1 for t in trials if done.get(t.index, 0) >= t.config.training.epochs)
        self.trials = trials
        self._write(f"{'resumed' if any(done.values()) else 'started'}: {len(trials)} trials, {finished} done")
        self.inner.started(run_dir, trials, done, train_size)

    def progress(self, p: Progress) -> None:
        if p.window_loss is not None:
            self._write(loss_line(self.trials[p.trial], p))
        self.inner.progress(p)

    def epoch_done(self, trial: Trial, result: EpochResult) -> None:
        self._write(epoch_line(trial, result))
        if finishes(trial, result):
            self._write(trial_line(trial, result))
        self.inner.epoch_done(trial, result)

    def note(self, message: str) -> None:
        self._write(f"note: {message}")
        self.inner.note(message)
