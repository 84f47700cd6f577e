"""The live display of `bnbench run`: a rich progress bar per running trial and the tutorial's log lines."""
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

from .train import EpochResult, Progress
from .trials import Trial


class RichReporter:
    """Prints "Loss after mini-batch N" lines (unless quiet) and per-epoch summaries above live progress bars."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console, self.quiet = console, quiet
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} batch/s"),
                       TimeRemainingColumn(), console=console, transient=True)
        self.tasks: dict[int, int] = {}
        self.clock: dict[int, tuple[float, int]] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def started(self, run_dir: Path, trials: list[Trial], done: dict[int, int]) -> None:
        self.trials = trials
        finished = sum(1 for t in trials if done.get(t.index, 0) >= t.config.training.epochs)
        self.console.print(f"[bold]{trials[0].config.name}[/]: {len(trials)} trials "
                           f"({finished} already done) -> {run_dir}")

    def progress(self, p: Progress) -> None:
        trial = self.trials[p.trial]
        epochs = trial.config.training.epochs
        if p.trial not in self.tasks:
            self.tasks[p.trial] = self.bar.add_task("", total=p.batches, loss="-", rate="-")
        now, last = time.perf_counter(), self.clock.get(p.trial)
        rate = "-"
        if last and p.batch > last[1]:
            rate = f"{(p.batch - last[1]) / (now - last[0]):,.0f}"
        self.clock[p.trial] = (now, p.batch)
        self.bar.update(self.tasks[p.trial], completed=p.batch, total=p.batches, loss=f"{p.running_loss:.3f}",
                        rate=rate, description=f"{trial.key} epoch {p.epoch}/{epochs}")
        if p.window_loss is not None and not self.quiet:
            self.console.print(f"{trial.key} epoch {p.epoch}: Loss after mini-batch {p.batch:5d}: "
                               f"{p.window_loss:.3f}", highlight=False, soft_wrap=True)

    def epoch_done(self, trial: Trial, result: EpochResult) -> None:
        epochs = trial.config.training.epochs
        status = f"  [red]diverged at step {result.diverged_step}[/]" if result.diverged_step is not None else ""
        self.console.print(f"{trial.key} epoch {result.epoch}/{epochs}: train loss {result.train_loss:.4f}, "
                           f"test loss {result.test_loss:.4f}, test acc {100 * result.test_acc:.2f}% "
                           f"({result.seconds:.1f} s){status}", highlight=False, soft_wrap=True)
        if result.epoch >= epochs or result.diverged_step is not None:
            task = self.tasks.pop(trial.index, None)
            self.clock.pop(trial.index, None)
            if task is not None:
                self.bar.remove_task(task)

    def note(self, message: str) -> None:
        """Something the run did that the user should know (a capped --jobs, a trial trained again)."""
        self.console.print(f"note: {message}", highlight=False, soft_wrap=True, markup=False)
