"""What training reports while it runs (`Progress`) and once per epoch (`EpochResult`): plain records, free of
torch, so that the run's lines and bars (log, progress) import no engine."""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class Progress:
    trial: int  # trial index
    epoch: int
    batch: int  # batches done in this epoch
    batches: int  # batches in the epoch
    running_loss: float  # mean loss since the previous event
    window_loss: Optional[float] = None  # mean of the last `log_every` batches, at multiples of log_every


@dataclass
class EpochResult:
    epoch: int
    losses: np.ndarray  # float32, one per mini-batch; ends at the diverged step if the loss became NaN/inf
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float
    diverged_step: Optional[int] = None  # global 1-based step of the first non-finite loss
    evals: list[tuple] = field(default_factory=list)  # (step, test loss, test acc[, val loss, val acc]), in order
    fallback: Optional[str] = None  # why this epoch was trained again with eager (its engine failed), for meta.json
    probes: list[tuple[int, str, str, float]] = field(default_factory=list)  # (step, layer, measure, value)
    val: Optional[tuple[float, float]] = None  # (val loss, val acc) where the run holds a validation split


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Like DataLoader(drop_last=False), except that a last batch of one example is dropped (BN cannot train on it)."""
    return n // batch_size + (n % batch_size > 1) if batch_size > 1 else n
