"""A trial's checkpoint files in `checkpoints/`: the trainer state saved after each finished epoch (with the trial's
summary), read back to resume; what a finished trial keeps of them is bnbench.rundir.checkpoints' business."""

import io
from pathlib import Path
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.experiment.trials import Trial
from bnbench.rundir import store

FOLDER = "checkpoints"  # the run folder's folder of checkpoints


def serialize(state: dict) -> bytes:
    """A state as torch.save writes it (a worker hands its trainer state over as bytes)."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def deserialize(data: bytes) -> dict:
    """The state `serialize` wrote (weights only: a checkpoint is never code)."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def files(run_dir: Path, trial: Trial) -> tuple[Path, Path]:
    """A trial's resume checkpoint and its weights-only file (bnbench.rundir.checkpoints)."""
    folder = run_dir / FOLDER
    return folder / f"{trial.key}.pt", folder / f"{trial.key}.weights.pt"


def save(run_dir: Path, trial: Trial, state: bytes, summary: dict) -> None:
    """The trainer state (already serialized, possibly by a worker) and the trial's summary, atomically."""
    path = files(run_dir, trial)[0]
    path.parent.mkdir(exist_ok=True)
    store.atomic_write(path, serialize({"summary": summary, "state": state}))


def _read(run_dir: Path, trial: Trial) -> Optional[dict]:
    import pickle

    import torch

    path = files(run_dir, trial)[0]
    if path.exists() and not path.is_file():  # opening a named pipe would wait for a writer forever
        raise BnbenchError(f"{path}: damaged checkpoint (not a regular file)")
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as e:
        raise BnbenchError(
            f"{path}: damaged checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None


def summary(run_dir: Path, trial: Trial) -> Optional[dict]:
    """The summary a trial's checkpoint records (its key and state), or None without a checkpoint."""
    checkpoint = _read(run_dir, trial)
    if checkpoint is not None and not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("summary"), dict)):
        raise BnbenchError(f"{files(run_dir, trial)[0]}: damaged checkpoint (no summary)")
    return checkpoint and checkpoint["summary"]


def drop(run_dir: Path, trial: Trial) -> None:
    """Remove a trial's resume checkpoint (damaged, or the trial starts over)."""
    files(run_dir, trial)[0].unlink(missing_ok=True)


def load(run_dir: Path, trial: Trial) -> Optional[dict]:
    """The trainer state of a trial's last finished epoch, or None if it has not finished one."""
    checkpoint = _read(run_dir, trial)
    return checkpoint and deserialize(checkpoint["state"])
