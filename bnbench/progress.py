"""The live display of `bnbench run`: one bar for the whole run above a bar per running trial, and the run's
lines (see `log`) as far as the verbosity asks."""
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

from .log import EPOCH, LOSS, NOTE, TRIAL, epoch_line, finishes, loss_line, trial_line
from .train import EpochResult, Progress, batches_per_epoch
from .trials import Trial


class RichReporter:
    """Bars on a terminal (rich draws none into a pipe), lines up to `verbosity` (-1 quiet .. 3, see `log`)."""

    def __init__(self, console: Console, verbosity: int = TRIAL):
        self.console, self.verbosity = console, verbosity
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
                       TimeRemainingColumn(), console=console, transient=True)
        self.tasks: dict[int, int] = {}
        self.clock: dict[int, tuple[float, int]] = {}
        self.loading_task = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def _print(self, level: int, line: str) -> None:
        if self.verbosity >= level:
            # a terminal wraps long lines (notes) at words; a pipe gets each line whole
            self.console.print(line, highlight=False, soft_wrap=not self.console.is_terminal, markup=False)

    def loading(self, what: str, done: int, total: int) -> None:
        """The one-time decode of an image folder (a first CIFAR-10 run: ~25 s of 60,000 JPEGs)."""
        if self.loading_task is None:
            self.loading_task = self.bar.add_task(what, total=total, loss="", rate="images")
        self.bar.update(self.loading_task, completed=done, total=total, description=what)
        if done >= total:
            self.bar.remove_task(self.loading_task)
            self.loading_task = None

    def started(self, run_dir: Path, trials: list[Trial], done: dict[int, int], train_size: int) -> None:
        self.trials = trials
        self.steps = {t.index: batches_per_epoch(train_size, t.config.training.batch_size) for t in trials}
        self.finished = {t.index for t in trials if done.get(t.index, 0) >= t.config.training.epochs}
        self.done_before = {t.index: done.get(t.index, 0) * self.steps[t.index] for t in trials}
        self.step_now = dict(self.done_before)
        total = sum(t.config.training.epochs * self.steps[t.index] for t in trials)
        self.start = (time.perf_counter(), sum(self.step_now.values()))
        self.run_task = self.bar.add_task("", total=total, completed=self.start[1], loss="", rate="")
        self._update_run()
        self.console.print(f"[bold]{trials[0].config.name}[/]: {len(trials)} trials "
                           f"({len(self.finished)} already done) -> {run_dir}")

    def _update_run(self) -> None:
        """The whole run's bar: trials finished of all, steps/s since this process started, ETA over all steps."""
        now, steps = time.perf_counter(), sum(self.step_now.values())
        rate = (steps - self.start[1]) / (now - self.start[0]) if now > self.start[0] else 0.0
        self.bar.update(self.run_task, completed=steps, description=f"run: {len(self.finished)}/{len(self.trials)} "
                        f"trials", rate=f"{rate:,.0f} steps/s" if rate else "")

    def progress(self, p: Progress) -> None:
        trial = self.trials[p.trial]
        if p.trial not in self.tasks:
            self.tasks[p.trial] = self.bar.add_task("", total=p.batches, loss="-", rate="-")
        now, last = time.perf_counter(), self.clock.get(p.trial)
        rate = "-"
        if last and p.batch > last[1]:
            rate = f"{(p.batch - last[1]) / (now - last[0]):,.0f} batch/s"
        self.clock[p.trial] = (now, p.batch)
        self.bar.update(self.tasks[p.trial], completed=p.batch, total=p.batches, loss=f"loss {p.running_loss:.3f}",
                        rate=rate, description=f"{trial.key} epoch {p.epoch}/{trial.config.training.epochs}")
        self.step_now[p.trial] = (p.epoch - 1) * self.steps[p.trial] + p.batch
        self._update_run()
        if p.window_loss is not None:
            self._print(LOSS, loss_line(trial, p))

    def epoch_done(self, trial: Trial, result: EpochResult) -> None:
        self._print(EPOCH, epoch_line(trial, result))
        self.step_now[trial.index] = result.epoch * self.steps[trial.index]
        if finishes(trial, result):
            self._print(NOTE if result.diverged_step is not None else TRIAL, trial_line(trial, result))
            self.finished.add(trial.index)
            self.step_now[trial.index] = trial.config.training.epochs * self.steps[trial.index]  # a diverged rest
            task = self.tasks.pop(trial.index, None)
            self.clock.pop(trial.index, None)
            if task is not None:
                self.bar.remove_task(task)
        self._update_run()

    def note(self, message: str) -> None:
        """Something the run did that the user should know (a capped --jobs, a trial trained again)."""
        self._print(NOTE, f"note: {message}")
