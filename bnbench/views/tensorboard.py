"""A run folder's rows as TensorBoard scalars (`bnbench export RUN --tensorboard DIR`).

One TensorBoard run per trial, DIR/<name>/<run id>/[<sweep point>/]<variant>/seed<seed>, so that TensorBoard's run
filter selects a variant, a seed or a sweep point by its path. Tags by section: `train/loss` (each batch of
batches.csv), `test/loss` and `test/acc` (each evaluation of evals.csv; `val/loss` and `val/acc` too in a run with a
validation split), `epoch/<column>` (each row of epochs.csv, at the epoch's last step, so that every curve shares
the step axis). Values are the CSVs' own: accuracies as fractions, not percent.

The events are written here, synchronously, with TensorBoard's protobufs and record writer: torch's SummaryWriter
and TensorBoard's EventFileWriter hand each scalar to a thread, which costs several times the writing itself.
A step's scalars go in one event and steps in order, as a training loop writes them (TensorBoard's readers expect
that order).
"""

import fcntl
import os
import shutil
import socket
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bnbench.analysis import Results, load_run
from bnbench.analysis.row_checks import spans
from bnbench.errors import BnbenchError
from bnbench.experiment.trials import _file_safe

MISSING = "--tensorboard needs TensorBoard: pip install 'bnbench[tensorboard]'"
EPOCH_COLUMNS = ["train_loss", "train_acc", "test_loss", "test_acc", "seconds"]


def _protos():
    """TensorBoard's Event, Summary and RecordWriter; TensorBoard is an optional extra."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise BnbenchError(MISSING) from None
    return Event, Summary, RecordWriter


def trial_folder(variant: str, seed: int, point: dict) -> str:
    """'optimizer.lr=0.001/batchnorm/seed0' ('batchnorm/seed0' without a sweep): a trial's TensorBoard run."""
    sweep = _file_safe(",".join(f"{path}={value}" for path, value in point.items()))
    return "/".join([*([sweep] if point else []), variant, f"seed{seed}"])


def export(run_dir: Path, out: Path) -> Path:
    """Write every trial of the run in `run_dir` as TensorBoard scalars under out/<name>/<run id>; returns that
    folder. An export already there is refused (writing it again would show every point twice), and so is one
    while another export writes to out/<name> (both would write the same partial folder); a failed export leaves
    nothing behind."""
    protos = _protos()
    results = load_run(run_dir)
    target = out / results.config.name / run_dir.name
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _only_export(target.parent, out):
            if target.exists():
                raise BnbenchError(
                    f"--tensorboard {out}: {target} already holds an export of this run; delete that folder to "
                    f"export it again, or pass another --tensorboard folder"
                )
            shutil.rmtree(partial, ignore_errors=True)  # left by an export that was killed
            try:
                for folder, scalars in _trial_scalars(results):
                    with EventFile(partial / folder, protos) as file:
                        file.write(scalars, time.time())
                partial.rename(target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except OSError as e:
        raise BnbenchError(f"--tensorboard {out}: cannot write ({e.strerror or e})") from None
    return target


@contextmanager
def _only_export(folder: Path, out: Path):
    """An exclusive flock on `folder` (out/<name>) while an export writes in it: the kernel drops it when the
    exporter dies, and it leaves no file among TensorBoard's."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BnbenchError(
                f"--tensorboard {out}: another export is writing {folder}; wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


def _trial_scalars(results: Results):
    """Per trial, its TensorBoard run's folder and its scalars as (tag, steps, values)."""
    trials = results.trials
    b, e, v = results.batches, results.epochs, results.evals
    ends = b.groupby(["trial", "epoch"]).step.max().rename("end")
    e = e.join(ends, on=["trial", "epoch"])
    sb, se, sv = (spans(frame, trials.size) for frame in (b, e, v))
    labels = {number: key for key, number in trials.numbers.items()}
    val = [c for c in ("val_loss", "val_acc") if c in v]  # a run with a validation split (dataset.validation)
    evaluated = ["test_loss", "test_acc", *val]
    for k in range(trials.size):
        variant, seed, *values = labels[k]
        own_b, own_e, own_v = b.iloc[sb[k] : sb[k + 1]], e.iloc[se[k] : se[k + 1]], v.iloc[sv[k] : sv[k + 1]]
        scalars = [("train/loss", own_b.step.to_numpy(), own_b.loss.to_numpy())]
        scalars += [(c.replace("_", "/"), own_v.step.to_numpy(), own_v[c].to_numpy()) for c in evaluated]
        scalars += [(f"epoch/{c}", own_e.end.to_numpy(), own_e[c].to_numpy()) for c in EPOCH_COLUMNS + val]
        yield trial_folder(variant, int(seed), dict(zip(trials.config.sweep, values))), scalars


class EventFile:
    """One TensorBoard event file in `folder` (made if missing), named as TensorBoard's writers name theirs."""

    def __init__(self, folder: Path, protos):
        self.Event, self.Summary, RecordWriter = protos
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.bnbench"
        self.file = open(folder / name, "wb")
        self.records = RecordWriter(self.file)
        self._event(self.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _event(self, event) -> None:
        self.records.write(event.SerializeToString())

    def write(self, scalars: list[tuple[str, np.ndarray, np.ndarray]], wall_time: float) -> None:
        """`scalars` as (tag, steps, values): one event per step, in step order, then to the disk."""
        by_step = defaultdict(list)
        for tag, steps, values in scalars:
            for step, value in zip(steps.tolist(), values.tolist()):
                by_step[step].append(self.Summary.Value(tag=tag, simple_value=value))
        for step in sorted(by_step):
            self._event(self.Event(wall_time=wall_time, step=step, summary=self.Summary(value=by_step[step])))
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()
