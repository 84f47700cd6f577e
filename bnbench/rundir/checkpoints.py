"""Checkpoint retention: what a trial keeps in `checkpoints/` once it has finished (complete or diverged).

While a trial trains, `checkpoints/<key>.pt` always holds what resuming needs (model, optimizer, its summary).
Once it finishes, `training.checkpoints` (or a later `bnbench prune`) decides what stays: `resume` keeps it all,
`final` keeps only the model's weights (`<key>.weights.pt`, a plain state_dict: no optimizer state, a fraction of
the size), `none` keeps nothing. Finished trials are known from meta.json's records and their rows, so a pruned
run still resumes and grows by seeds; only growing by epochs needs the optimizer state, and is refused.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.trials import Trial, expand
from bnbench.rundir import checkpoint_files, digests, store
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta, now
from bnbench.rundir.store import unwritable
from bnbench.rundir.trial_state import finished_trials

KEEP = ("resume", "final", "none")  # from most kept to least: a run keeps the least any setting or prune left
ALLOWS = {
    "resume": "resume checkpoints of every trial (can grow by epochs)",
    "final": "final weights only (cannot grow by epochs)",
    "none": "none for finished trials (cannot grow by epochs)",
}


def prune_trial(run_dir: Path, trial: Trial, keep: str) -> int:
    """Cut a finished trial's checkpoint down to `keep`; returns the bytes freed. The weights are written (atomically)
    before the resume checkpoint goes, so a stop in between loses nothing; pruning again frees nothing."""
    resume, weights = checkpoint_files.files(run_dir, trial)
    before = _size(resume) + _size(weights)
    if keep == "final" and resume.is_file():
        store.atomic_write(weights, checkpoint_files.serialize(checkpoint_files.load(run_dir, trial)["model"]))
    if keep != "resume":
        resume.unlink(missing_ok=True)
    if keep == "none":
        weights.unlink(missing_ok=True)
    return before - _size(resume) - _size(weights)


def prune_finished(run_dir: Path, trials: list[Trial], keep: str) -> tuple[int, int]:
    """Prune each of these (finished) trials; returns (bytes freed, trials that freed any)."""
    freed = [prune_trial(run_dir, trial, keep) for trial in trials]
    return sum(freed), sum(1 for n in freed if n)


def kept(config: Config, meta: Meta) -> str:
    """What the run's finished trials keep: the least that its config or any `bnbench prune` (meta.json's `pruned`)
    left them."""
    pruned = [p.get("keep") for p in meta.fields.pruned if isinstance(p, dict)]
    return max([config.training.checkpoints, *(k for k in pruned if k in KEEP)], key=KEEP.index)


def refuse_epoch_growth(run_dir: Path, config: Config, meta: Meta, epochs: Optional[int]) -> None:
    """More epochs continue each trial from its optimizer state, which a pruned run no longer has."""
    left = kept(config, meta)
    if left != "resume" and epochs not in (None, config.training.epochs):
        raise BnbenchError(
            f"--set training.epochs={epochs}: {run_dir} keeps "
            f"{'only the final weights' if left == 'final' else 'no checkpoints'} of its finished trials, not the "
            f"optimizer state more epochs continue from; start a new run with --set training.epochs={epochs}"
        )


@dataclass(frozen=True)
class Pruned:
    """What `prune_run` did: bytes freed, from how many trials, and what the run's checkpoints now allow."""

    bytes: int
    trials: int
    allows: str

    def text(self) -> str:
        trials = f"{self.trials} trial{'s' * (self.trials != 1)}"
        return f"freed {size_text(self.bytes)} from {trials}; checkpoints: {self.allows}"


def prune_run(run_dir: Path, keep: str) -> Pruned:
    """`bnbench prune RUN --keep final|none`: prune the finished trials of a run no process is working on (its lock
    is taken), and record it in meta.json (`pruned`), so that `show` and a grow by epochs know."""
    if keep not in KEEP[1:]:
        raise BnbenchError(f"--keep {keep}: choose final (the weights only) or none")
    folder = RunFolder(run_dir)
    lock = folder.lock().acquire()
    try:
        meta, config = folder.meta(), folder.config()
        finished = finished_trials(expand(config), meta)
        _refuse_foreign_files(run_dir, finished)
        original, record = meta, {"at": now(), "keep": keep, "trials": 0, "bytes": 0}
        meta = meta.with_(pruned=meta.fields.pruned + [record])
        try:
            folder.remove_temporaries()  # a prune or run killed mid-write left them
            folder.write_meta(meta)  # before any file goes: a stop midway never leaves a run claiming more
            record["bytes"], record["trials"] = prune_finished(run_dir, finished, keep)
            _redigest(run_dir, finished, meta)
            if not record["bytes"] and kept(config, original) == kept(config, meta):
                meta = original  # pruned before: nothing to record
            folder.write_meta(meta)
        except OSError as e:  # a full disk or a read-only mount: what was pruned stays pruned, the run resumes
            raise BnbenchError(unwritable(Path(e.filename or run_dir), e, "prune again")) from None
        return Pruned(record["bytes"], record["trials"], ALLOWS[kept(config, meta)])
    finally:
        lock.release()


def _refuse_foreign_files(run_dir: Path, trials: list[Trial]) -> None:
    """Before anything changes: a `checkpoints` that is not a folder, or a folder (pipe, device) where a finished
    trial's checkpoint file belongs, is not ours to remove."""
    folder = run_dir / checkpoint_files.FOLDER
    if folder.exists() and not folder.is_dir():
        raise BnbenchError(
            f"{folder}: not a folder (a run keeps its checkpoints in one); move it away, then prune again"
        )
    for path in (path for trial in trials for path in checkpoint_files.files(run_dir, trial)):
        if path.exists() and not path.is_file():
            raise BnbenchError(
                f"{path}: not a checkpoint file (a folder, pipe or device); move it away, then prune again"
            )


def _redigest(run_dir: Path, trials: list[Trial], meta: Meta) -> None:
    """Record in the pruned trials' digests the checkpoints they keep now (rundir.digests); a trial without one (a run
    made before digests, or stopped before its end) gets it when a run ends."""
    recorded = digests.recorded(meta)
    for trial in (t for t in trials if t.key in recorded):
        recorded[trial.key]["checkpoint"] = digests.of_checkpoint(run_dir, trial)
    if recorded:
        meta.update(digests=recorded)


def size_text(n: int) -> str:
    """Bytes in decimal units, as `du --si` and file managers print them: '1.2 GB'."""
    power = min((len(str(n)) - 1) // 3, 3)
    return f"{n} B" if power == 0 else f"{n / 1000**power:.1f} {('kB', 'MB', 'GB')[power - 1]}"


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0
