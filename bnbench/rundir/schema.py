"""The run folder's row files, batches.csv, epochs.csv and evals.csv (and probes.csv, see bnbench.engines.probes): each
file's columns after the trial's labels, declared once, as a typed row. The header, the text the runner appends
and the types `compare` reads all come from these declarations.

A line is the trial's labels (as csv.writer writes them), then each field as `format(value, spec)` writes it:
integers as Python writes them, losses and accuracies to 9 significant digits (a diverged loss as 'nan'), seconds
to 0.1 ms.
"""

import csv
import io
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, Iterable

NAN_TEXT = ["nan", "NaN", "-nan"]  # how a NaN field reads back ('nan' is written); an empty field is damage, not NaN


def column(spec: str = "") -> Any:
    """A field written as `format(value, spec)` writes it (spec '' for integers: as Python writes them)."""
    return field(metadata={"spec": spec})


@dataclass(frozen=True)
class BatchRow:
    """batches.csv: one line per training step."""

    epoch: int
    batch: int  # 1, 2, ... within the epoch
    step: int  # 1, 2, ... within the trial
    loss: float = column(".9g")


@dataclass(frozen=True)
class EpochRow:
    """epochs.csv: one line per epoch."""

    epoch: int
    train_loss: float = column(".9g")
    train_acc: float = column(".9g")
    test_loss: float = column(".9g")
    test_acc: float = column(".9g")
    seconds: float = column(".4f")


@dataclass(frozen=True)
class ValEpochRow:
    """epochs.csv of a run with a validation split (dataset.validation): its numbers after test's, wall seconds
    still last."""

    epoch: int
    train_loss: float = column(".9g")
    train_acc: float = column(".9g")
    test_loss: float = column(".9g")
    test_acc: float = column(".9g")
    val_loss: float = column(".9g")
    val_acc: float = column(".9g")
    seconds: float = column(".4f")


@dataclass(frozen=True)
class _AtStep:
    """The columns a row taken at a training step begins with."""

    epoch: int
    step: int  # 1, 2, ... within the trial


@dataclass(frozen=True)
class EvalRow(_AtStep):
    """evals.csv: one line every training.eval_every steps and at each epoch's end."""

    test_loss: float = column(".9g")
    test_acc: float = column(".9g")


@dataclass(frozen=True)
class ValEvalRow(EvalRow):
    """evals.csv of a run with a validation split (dataset.validation)."""

    val_loss: float = column(".9g")
    val_acc: float = column(".9g")


@dataclass(frozen=True)
class ProbeRow(_AtStep):
    """probes.csv (with training.probe_every): one line per probe step, layer and measure (bnbench.engines.probes)."""

    layer: str  # "linear1", "conv2", ...; "model" for the whole-model measures
    measure: str
    value: float = column(".9g")


def csv_fields(values: list[Any]) -> str:
    """One CSV line's fields, as csv.writer writes them, without the line's end."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


@dataclass(frozen=True)
class Columns:
    """A row file: its name, its row (the columns after the trial's labels, in file order), whether a run may
    lack it, and the row of a run with a validation split (None: the same row)."""

    file: str
    row: type
    optional: bool = False
    validated: type | None = None

    def of(self, config: Any) -> "Columns":
        """This file's columns in the run of `config`: with the validation split's where the run holds one, so
        that a run without it writes the files it always did."""
        if self.validated is None or config.dataset.validation is None:
            return self
        return replace(self, row=self.validated, validated=None)

    @cached_property
    def _specs(self) -> tuple[tuple[str, type, str], ...]:
        return tuple((f.name, f.type, f.metadata.get("spec", "")) for f in fields(self.row))

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self._specs]

    @property
    def ints(self) -> list[str]:
        return [name for name, kind, _ in self._specs if kind is int]

    @property
    def floats(self) -> list[str]:
        return [name for name, kind, _ in self._specs if kind is float]

    @property
    def numbers(self) -> list[bool]:
        """Whether each column holds a number (probes.csv's layer and measure are text)."""
        return [kind is not str for _, kind, _ in self._specs]

    def __len__(self) -> int:
        return len(self._specs)

    def header(self, labels: list[str]) -> str:
        """The header line, under the trial's label columns `labels`."""
        return csv_fields([*labels, *self.names]) + "\n"

    def text(self, prefix: str, rows: Iterable[Any]) -> str:
        """`rows` (of this file's row type) as lines, each after the trial's labels `prefix` (see csv_fields)."""
        specs = [(name, spec) for name, _, spec in self._specs]
        return "".join(
            prefix + "," + ",".join(format(getattr(row, name), spec) for name, spec in specs) + "\n" for row in rows
        )


# In the order the runner appends an epoch's rows (compare's reading of a live run relies on it).
BATCHES = Columns("batches.csv", BatchRow)
EPOCHS = Columns("epochs.csv", EpochRow, validated=ValEpochRow)
EVALS = Columns("evals.csv", EvalRow, optional=True, validated=ValEvalRow)  # runs made before evals.csv lack it
ROW_FILES = {c.file: c for c in (BATCHES, EPOCHS, EVALS)}
PROBES = Columns("probes.csv", ProbeRow, optional=True)  # written from the first probe on (training.probe_every)
CUT_FILES = ROW_FILES | {PROBES.file: PROBES}  # the row files that resuming cuts back to each trial's checkpoint
