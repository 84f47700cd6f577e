"""A run's row files (their columns: bnbench.rundir.schema): each epoch's rows appended durably, and the rows cut
back and sorted into trial order.

Every epoch appends its rows (flushed and fsynced) before the trial's checkpoint is replaced, so after a crash the
checkpoint never claims an epoch whose rows are missing; resuming drops rows beyond each trial's checkpoint and a
run's last act is to sort rows into trial order, so a resumed or parallel run's files equal those of one
uninterrupted sequential run, byte for byte.
"""

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bnbench.experiment.trials import Trial
from bnbench.rundir import store
from bnbench.rundir.schema import (
    CUT_FILES,
    EPOCHS,
    EVALS,
    PROBES,
    ROW_FILES,
    BatchRow,
    Columns,
    ProbeRow,
    csv_fields,
)
from bnbench.rundir.store import read_regular

if TYPE_CHECKING:  # torch is imported only where checkpoints are touched, so `compare` and `list` start fast
    from bnbench.engines.events import EpochResult


def header(trials: list[Trial], columns: Columns) -> str:
    """A row file's header line (`columns`: one of ROW_FILES, see bnbench.rundir.schema)."""
    return columns.of(trials[0].config).header(list(trials[0].labels))


def append_epoch(run_dir: Path, trial: Trial, result: "EpochResult", first_step: int) -> None:
    """Append one epoch's rows to batches.csv and epochs.csv, durably, before the checkpoint moves on."""
    prefix = csv_fields(list(trial.labels.values()))
    steps = range(first_step + 1, first_step + len(result.losses) + 1)
    rows = {
        "batches.csv": [
            BatchRow(result.epoch, b, s, loss)
            for b, (s, loss) in enumerate(zip(steps, result.losses.tolist()), start=1)
        ],
        "epochs.csv": [
            EPOCHS.of(trial.config).row(
                epoch=result.epoch,
                train_loss=result.train_loss,
                train_acc=result.train_acc,
                test_loss=result.test_loss,
                test_acc=result.test_acc,
                seconds=result.seconds,
                **(dict(zip(("val_loss", "val_acc"), result.val)) if result.val else {}),
            )
        ],
        "evals.csv": [EVALS.of(trial.config).row(result.epoch, *scores) for scores in result.evals],
    }
    for name, columns in ROW_FILES.items():
        if columns.optional and not (run_dir / name).exists():
            continue
        columns = columns.of(trial.config)
        with open(run_dir / name, "a") as f:
            f.write(columns.text(prefix, rows[name]))
            f.flush()
            os.fsync(f.fileno())
    if result.probes:  # probes.csv begins with the first probe (bnbench.engines.probes)
        path = run_dir / PROBES.file
        head = "" if path.exists() else PROBES.header(list(trial.labels))
        with open(path, "a") as f:
            f.write(head + PROBES.text(prefix, [ProbeRow(result.epoch, *row) for row in result.probes]))
            f.flush()
            os.fsync(f.fileno())


Kept = dict[str, dict[int, list[int]]]  # per file and trial, the epoch of each row kept
Lines = dict[str, dict[int, list[str]]]  # per file and trial, the lines kept (without their newline), in order


def rewrite_rows(run_dir: Path, trials: list[Trial], keep_epochs: dict[int, int]) -> tuple[Kept, Lines]:
    """Keep each trial's rows up to epoch keep_epochs[trial.index] (see `kept_rows`), in trial order, under the
    right header. Returns, per file and trial, the epoch of each row kept and the lines, for the caller to check
    against the checkpoints and digests (bnbench.rundir.digests).

    Used when resuming (rows past a checkpoint are recomputed) and at the end of a run (rows sorted into trial
    order, so that --jobs and resumes do not change the file).
    """
    texts, kept, lines = kept_rows(run_dir, trials, keep_epochs)
    for name, text in texts.items():
        store.atomic_write(run_dir / name, text)
    return kept, lines


def kept_rows(run_dir: Path, trials: list[Trial], keep_epochs: dict[int, int]) -> tuple[dict[str, str], Kept, Lines]:
    """What `rewrite_rows` would write, without writing: per file, its new text (header and each trial's rows up
    to epoch keep_epochs[trial.index], in trial order; a torn last line and any row that is not one of ours --
    another trial's labels, a wrong number of fields, a field that is not a number -- dropped), and per file and
    trial the epoch of each row kept, and the row's line. A file whose text equals its new text holds nothing that
    resuming drops."""
    n_labels = len(trials[0].labels)
    order = {tuple(str(v) for v in _parse(csv_fields(list(t.labels.values())))): t.index for t in trials}
    texts, kept, groups_of = {}, {}, {}
    for name, columns in CUT_FILES.items():
        path = run_dir / name
        if columns.optional and not path.exists():
            continue
        columns = columns.of(trials[0].config)
        lines = read_regular(path).decode(errors="replace").split("\n") if path.exists() else [""]
        groups: dict[int, list[str]] = {t.index: [] for t in trials}
        kept[name], groups_of[name] = {t.index: [] for t in trials}, groups
        for line in lines[1:-1]:  # the header is written anew; the last element is "" or a torn line
            fields = _parse(line)
            index = order.get(tuple(fields[:n_labels]))
            values = fields[n_labels:]
            if (
                index is not None
                and len(values) == len(columns)
                and all(_is_number(value) for value, number in zip(values, columns.numbers) if number)
                and values[0].isdigit()
                and int(values[0]) <= keep_epochs.get(index, 0)
            ):
                groups[index].append(line)
                kept[name][index].append(int(values[0]))
        texts[name] = header(trials, columns) + "".join(line + "\n" for t in trials for line in groups[t.index])
    return texts, kept, groups_of


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _parse(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # a NUL byte or a stray quote: not a row of ours
        return []


def write_header(run_dir: Path, trials: list[Trial], name: str) -> None:
    """A row file with its header alone (a new run's, or one a resume makes anew after it was deleted)."""
    store.atomic_write(run_dir / name, header(trials, ROW_FILES[name]))
