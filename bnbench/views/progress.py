"""The live display of `bnbench run`: one bar for the whole run above a bar per running trial, and the run's
lines (see `log`) as far as the verbosity asks.

Every line of it fits the terminal, drawn again at each frame for the terminal's width (a resized one too): the
label, the bar, the count (never cut: `6336/4…` told nothing) and the time left always, the loss and the rate
where there is room for them (`_layout`); four cells are kept free at the right, where the terminal echoes
Ctrl-C (`^C` after a full-width line wraps it, and rich, erasing the display, then left its top line behind).
Rates and times left are measured here (`Rate`), not by rich, whose estimate from updates that come in bursts
said 0:00:00 with half an epoch to go."""

import math
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.progress import Progress as Bar
from rich.table import Column, Table
from rich.text import Text

from bnbench.backends import stopping
from bnbench.engines.events import EpochResult, Progress, batches_per_epoch
from bnbench.errors import OutputRefused
from bnbench.experiment.trials import Trial
from bnbench.rundir.log import EPOCH, LOSS, NOTE, TRIAL, epoch_line, finishes, loss_line, trial_line

RIGHT_MARGIN = 4  # cells left free at the right of every line: the terminal's `^C` echo (two of them) fits there
BAR_MIN, BAR_LEAST, BAR_MAX = 8, 4, 40  # the loss and the rate are shown while the bar keeps BAR_MIN cells
LABEL_LEAST = 20  # cells a label is cut to (in its middle) to keep the loss and rate; "run: 100/100 trials" fits
LOSS_WIDTH = 12  # "loss 1.234", "loss 9999.9", "loss 1.2e+05" (`_loss`)
RATE_WIDTH = 13  # "9,999 batch/s", "999k steps/s" (`_rate`)
TIME_WIDTH = 7  # "1:23:45", "12h34m", "123h45m", "1234h" (`TimeLeft`)
RATE_SPAN, RATE_LEAST = 10.0, 1.0  # seconds: a rate is measured over the last 10 s of updates, and after 1 s


def _loss(value: float) -> str:
    """At most LOSS_WIDTH cells, whatever the loss (a diverging one grows large)."""
    if not math.isfinite(value) or abs(value) >= 10_000:
        return f"loss {value:.1e}"
    return f"loss {value:.3f}" if abs(value) < 10 else f"loss {value:.1f}"


def _rate(per_second: Optional[float], unit: str) -> str:
    """At most RATE_WIDTH cells; "-" while there is no rate yet."""
    if per_second is None:
        return "-"
    return f"{per_second:,.0f} {unit}" if per_second < 10_000 else f"{per_second / 1000:,.0f}k {unit}"


@contextmanager
def _output():
    """A line to standard output that it refuses (a full disk under a redirect) is OutputRefused, so that the run's
    message blames the output and not its run folder."""
    try:
        yield
    except OSError as e:
        if isinstance(e, OutputRefused):
            raise
        raise OutputRefused(e.errno, e.strerror) from e


class Rate:
    """Steps per second over the updates of the last RATE_SPAN seconds (at least the two last ones), measured
    only once RATE_LEAST seconds separate the first of them from the last: updates that come in a burst (a
    worker's events read from its pipe at once) or an epoch's end (the step count goes on across epochs) make
    no absurd rate."""

    def __init__(self, span: float = RATE_SPAN, least: float = RATE_LEAST):
        self.span, self.least = span, least
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, steps: int) -> Optional[float]:
        if self.samples and steps < self.samples[-1][1]:  # counted again from a start (a trial retrained)
            self.samples.clear()
        self.samples.append((now, steps))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.span:
            self.samples.popleft()
        then, before = self.samples[0]
        if now - then < self.least or steps <= before:
            return None
        return (steps - before) / (now - then)


def _layout(width: int, label: int, short: int, count: int) -> list[ProgressColumn]:
    """The columns of a display `width` cells wide, for labels of `label` cells ("batchnorm-s3 epoch 2/5") or
    `short` ones ("batchnorm-s3 e2/5"), and counts ("12/345") of `count`: label, bar, count and time left always,
    then the loss and the rate, the first of these that leaves the bar BAR_MIN cells: long labels with both,
    short ones with both, short ones cut to LABEL_LEAST cells with both (long sweep names), then the same with
    the loss alone, then long and short labels alone; a label too long for a bar of BAR_LEAST cells is cut
    (`Label`). Every width is fixed: the lines are at most `width` - RIGHT_MARGIN cells, and nothing in them is
    cut short by a neighbour."""
    room = width - RIGHT_MARGIN

    def bar_for(label: int, extra: list[int]) -> int:  # the cells left to the bar; one space between columns
        return room - label - count - TIME_WIDTH - sum(extra) - (3 + len(extra))

    least = min(short, LABEL_LEAST)
    both, loss = [LOSS_WIDTH, RATE_WIDTH], [LOSS_WIDTH]
    choices = [(label, both), (short, both), (least, both), (label, loss), (short, loss), (least, loss)]
    choices += [(label, []), (short, [])]
    cells, extra = next(((c, e) for c, e in choices if bar_for(c, e) >= BAR_MIN), (short, []))
    field = "description" if cells == label else "short"
    label = cells
    bar = bar_for(label, extra)
    if bar < BAR_LEAST:
        label, bar = max(1, label - (BAR_LEAST - bar)), BAR_LEAST
    bar = min(bar, BAR_MAX)
    fixed = {"no_wrap": True, "overflow": "ellipsis"}
    columns: list[ProgressColumn] = [
        Label(field, label, table_column=Column(width=label, **fixed)),
        BarColumn(bar_width=bar, table_column=Column(width=bar, **fixed)),
        MofNCompleteColumn(table_column=Column(width=count, justify="right", **fixed)),
    ]
    if len(extra) > 0:
        columns.append(TextColumn("{task.fields[loss]}", markup=False, table_column=Column(width=LOSS_WIDTH, **fixed)))
    if len(extra) > 1:
        columns.append(
            TextColumn(
                "{task.fields[rate]}",
                markup=False,
                justify="right",
                table_column=Column(width=RATE_WIDTH, justify="right", **fixed),
            )
        )
    columns.append(TimeLeft(table_column=Column(width=TIME_WIDTH, justify="right", **fixed)))
    return columns


def _fit(label: str, cells: int) -> str:
    """`label` in `cells` cells, cut in its middle: its start names the variant and seed, its end the sweep
    point's last value and the epoch ("batchnorm-s42-o…size=128 e2/5"); labels are ASCII (names are)."""
    if len(label) <= cells:
        return label
    end = (cells - 1) // 2
    return label[: cells - 1 - end] + "…" + (label[-end:] if end else "")


class Label(ProgressColumn):
    """A task's label (`field`: its description or its short label), cut in its middle to `cells` (`_fit`)."""

    def __init__(self, field: str, cells: int, table_column: Column):
        super().__init__(table_column=table_column)
        self.field, self.cells = field, cells

    def render(self, task) -> Text:
        label = task.description if self.field == "description" else task.fields.get("short", task.description)
        return Text(_fit(label, self.cells), no_wrap=True)


class TimeLeft(ProgressColumn):
    """The task's `left` field (seconds; None while unknown) in at most TIME_WIDTH cells: hours and minutes from
    10 hours on."""

    def render(self, task) -> Text:
        left = task.fields.get("left")
        if left is None:
            return Text("-:--:--", style="progress.remaining")
        seconds = math.ceil(left)
        minutes, hours = seconds // 60, seconds // 3600
        if hours < 10:
            text = f"{hours}:{minutes % 60:02d}:{seconds % 60:02d}"
        else:
            text = f"{hours}h{minutes % 60:02d}m" if hours < 1000 else f"{hours}h"
        return Text(text, style="progress.remaining")


def _left(remaining: float, per_second: Optional[float]) -> Optional[float]:
    return remaining / per_second if per_second else None


def _count_cells(total) -> int:
    return 2 * len(str(int(total or 0))) + 1


class Bars(Bar):
    """rich's Progress, its table laid out (`_layout`) for the console's width at each frame, with room for the
    widest labels and count seen or announced (`reserve`): the columns keep their places as bars come and go.
    Each task has its label (`description`) and a shorter one (the field `short`) for a narrow terminal."""

    def __init__(self, console: Console):
        self.cells = (0, 0, 0)  # label, short label, count
        self.screen = console  # (rich's `console` is its Live's, which rich's __init__ draws before it is made)
        self.layouts: dict[tuple[int, int, int, int], list[ProgressColumn]] = {}
        # no display in a pipe: rich would print its last (empty) frame there, a blank line before an error
        super().__init__(console=console, transient=True, disable=not console.is_terminal)

    def reserve(self, label: int, short: int, count: int) -> None:
        self.cells = tuple(map(max, self.cells, (label, short, count)))

    def make_tasks_table(self, tasks) -> Table:
        """A passing task's widths (the data set's decode) hold for its own frames only: the run's bars, after it,
        lost their loss and rate to its long label for the rest of the run."""
        shown = [task for task in tasks if task.visible]
        cells = self.cells
        for t in shown:
            seen = (cell_len(t.description), cell_len(t.fields.get("short", t.description)), _count_cells(t.total))
            if not t.fields.get("passing"):
                self.reserve(*seen)
            cells = tuple(map(max, cells, self.cells, seen))
        key = (self.screen.width, *cells)
        if key not in self.layouts:
            self.layouts[key] = _layout(*key)
        columns = self.layouts[key]
        table = Table.grid(*(column.get_table_column().copy() for column in columns), padding=(0, 1))
        for task in shown:
            table.add_row(*(column(task) for column in columns))
        return table


class RichReporter:
    """Bars on a terminal (rich draws none into a pipe), lines up to `verbosity` (-1 quiet .. 3, see `log`).

    What it draws is kept from Ctrl-C (`stopping.held`): a KeyboardInterrupt raised in the middle of a frame
    left rich's idea of the lines on the screen wrong, and the display's end then erased too few of them."""

    def __init__(self, console: Console, verbosity: int = TRIAL):
        self.console, self.verbosity = console, verbosity
        self.bar = Bars(console)
        self.tasks: dict[int, int] = {}
        self.rates: dict[int, Rate] = {}
        self.loading_task = None
        self.run_task = None

    def __enter__(self):
        with stopping.held():
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        """The display goes, with every bar, however the block ends (an exception, Ctrl-C, Interrupted): its
        bars are removed first, so that rich's last frame (drawn whole, however tall) is empty."""
        with stopping.held():  # a Ctrl-C now (the run's end) takes effect once the display is gone
            try:
                for task in list(self.bar.task_ids):
                    self.bar.remove_task(task)
            finally:
                self.bar.__exit__(*exc)

    def _print(self, level: int, line: str) -> None:
        if self.verbosity >= level:
            # a terminal wraps long lines (notes) at words; a pipe gets each line whole
            with stopping.held(), _output():
                self.console.print(line, highlight=False, soft_wrap=not self.console.is_terminal, markup=False)

    def loading(self, what: str, done: int, total: int) -> None:
        """The one-time decode of an image folder (a first CIFAR-10 run decodes 60,000 JPEGs)."""
        with stopping.held():
            if self.loading_task is None:
                self.loading_task = self.bar.add_task(what, total=total, loss="", rate="-", short=what, passing=True)
                self.loading_rate = Rate()
            rate = self.loading_rate.add(time.perf_counter(), done)
            self.bar.update(
                self.loading_task,
                completed=done,
                total=total,
                description=what,
                short=what,
                rate=_rate(rate, "images/s"),
                left=_left(total - done, rate),
            )
            if done >= total:
                self.bar.remove_task(self.loading_task)
                self.loading_task = None

    def started(self, run_dir: Path, trials: list[Trial], done: dict[int, int], train_size: int) -> None:
        self.trials = trials
        self.steps = {t.index: batches_per_epoch(train_size, t.config.training.batch_size) for t in trials}
        self.finished = {t.index for t in trials if done.get(t.index, 0) >= t.config.training.epochs}
        self.done_before = {t.index: done.get(t.index, 0) * self.steps[t.index] for t in trials}
        self.step_now = dict(self.done_before)
        self.trained = 0  # steps trained by this process (a diverged trial's rest is done, not trained)
        self.run_rate = Rate()
        self.run_rate.add(time.perf_counter(), 0)
        total = self.total = sum(t.config.training.epochs * self.steps[t.index] for t in trials)
        widest = {
            short: max(
                cell_len(label)
                for label in [
                    self._run_label(len(trials)),
                    *(self._trial_label(t, t.config.training.epochs, short) for t in trials),
                ]
            )
            for short in (False, True)
        }
        self.bar.reserve(widest[False], widest[True], _count_cells(total))
        label = self._run_label(len(self.finished))
        with stopping.held():
            if self.run_task is not None:  # the bar of the round before (--until-decided)
                self.bar.remove_task(self.run_task)
            self.run_task = self.bar.add_task(
                label, total=total, completed=sum(self.step_now.values()), loss="", rate="-", short=label
            )
            with _output():
                self.console.print(
                    f"[bold]{trials[0].config.name}[/]: {len(trials)} trials "
                    f"({len(self.finished)} already done) -> {run_dir}",
                    soft_wrap=not self.console.is_terminal,
                )  # one line in a pipe, whatever its length

    def _run_label(self, finished: int) -> str:
        return f"run: {finished}/{len(self.trials)} trials"

    @staticmethod
    def _trial_label(trial: Trial, epoch: int, short: bool = False) -> str:
        return f"{trial.key} {'e' if short else 'epoch '}{epoch}/{trial.config.training.epochs}"

    def _advance(self, trial: int, step: int, trained: bool = True) -> None:
        """Trial `trial` is at step `step` of its run (epochs before included)."""
        if trained and step > self.step_now[trial]:
            self.trained += step - self.step_now[trial]
        self.step_now[trial] = step

    def _update_run(self) -> None:
        """The whole run's bar: trials finished of all, steps/s of late, ETA over all steps."""
        rate, label = self.run_rate.add(time.perf_counter(), self.trained), self._run_label(len(self.finished))
        completed = sum(self.step_now.values())
        self.bar.update(
            self.run_task,
            completed=completed,
            description=label,
            short=label,
            rate=_rate(rate, "steps/s"),
            left=_left(self.total - completed, rate),
        )

    def progress(self, p: Progress) -> None:
        trial = self.trials[p.trial]
        step = (p.epoch - 1) * self.steps[p.trial] + p.batch
        rate = self.rates.setdefault(p.trial, Rate()).add(time.perf_counter(), step)
        fields = {
            "completed": p.batch,
            "total": p.batches,
            "loss": _loss(p.running_loss),
            "rate": _rate(rate, "batch/s"),
            "left": _left(p.batches - p.batch, rate),
            "description": self._trial_label(trial, p.epoch),
            "short": self._trial_label(trial, p.epoch, short=True),
        }
        with stopping.held():
            if p.trial not in self.tasks:  # its label from the start: no bar without one
                self.tasks[p.trial] = self.bar.add_task(**fields)
            else:
                self.bar.update(self.tasks[p.trial], **fields)
            self._advance(p.trial, step)
            self._update_run()
        if p.window_loss is not None:
            self._print(LOSS, loss_line(trial, p))

    def epoch_done(self, trial: Trial, result: EpochResult) -> None:
        self._print(EPOCH, epoch_line(trial, result))
        with stopping.held():
            self._advance(
                trial.index, result.epoch * self.steps[trial.index], trained=result.diverged_step is None
            )  # a diverged epoch's rest is not trained
            if finishes(trial, result):
                self._print(NOTE if result.diverged_step is not None else TRIAL, trial_line(trial, result))
                self.finished.add(trial.index)
                self._advance(
                    trial.index, trial.config.training.epochs * self.steps[trial.index], trained=False
                )  # a diverged trial's rest
                task = self.tasks.pop(trial.index, None)
                self.rates.pop(trial.index, None)
                if task is not None:
                    self.bar.remove_task(task)
            self._update_run()

    def note(self, message: str) -> None:
        """Something the run did that the user should know (a capped --jobs, a trial trained again)."""
        self._print(NOTE, f"note: {message}")
