"""The epoch, written once for every engine.

`run_epoch` drives an engine through one epoch: it cuts the epoch's batches into chunks that end at each tick
(losses and correct predictions are read back from the device every `tick` batches, never per step), at each
`training.eval_every` step, at each `training.probe_every` step and at the epoch's end; the engine trains each chunk
(`train(first, last)`), and the skeleton does the rest: evaluate and probe (bnbench.engines.probes) when due, hand each
trial's losses to its `LossLog` (progress events, the tutorial's "Loss after mini-batch N" windows), drop a trial
whose loss became non-finite, finish the epoch.

An engine (see `Engine`) holds one eager `Trainer` per trial (`trainers`; checkpoints and evaluation are the
eager code) and trains the trials `live` lists, their losses in that order.
"""

import math
import time
from typing import Callable, Protocol

import numpy as np
import torch

from bnbench.engines.events import EpochResult, Progress, batches_per_epoch
from bnbench.experiment.config import TrainingConfig
from bnbench.experiment.trials import Trial


def tick(training: TrainingConfig) -> int:
    """Batches between two reads of the losses: 100, or a divisor of `log_every` so that its windows land on one."""
    return math.gcd(100, training.log_every) if training.log_every else 100


class LossLog:
    """One trial's per-batch losses of one epoch, taken a tick at a time: progress events, the tutorial's
    "Loss after mini-batch N" windows, and where the loss first became NaN/inf."""

    def __init__(self, trial: Trial, epoch: int, batches: int, on_progress: Callable[[Progress], None]):
        self.trial, self.epoch, self.batches, self.on_progress = trial, epoch, batches, on_progress
        self.chunks: list[torch.Tensor] = []
        self.count = 0
        self.diverged: int | None = None  # batch number (1-based) of the first non-finite loss

    def add(self, chunk: torch.Tensor) -> bool:
        """Take the next losses; False once one is not finite (training should stop there)."""
        chunk = chunk.float().cpu()
        self.chunks.append(chunk)
        bad = (~torch.isfinite(chunk)).nonzero()
        if len(bad):
            self.diverged = self.count + int(bad[0]) + 1
            return False
        self.count += len(chunk)
        every = self.trial.config.training.log_every
        window = None
        if every and self.count % every == 0:
            window = float(torch.cat(self.chunks)[self.count - every : self.count].mean())
        self.on_progress(Progress(self.trial.index, self.epoch, self.count, self.batches, float(chunk.mean()), window))
        return True

    def losses(self) -> np.ndarray:
        return torch.cat(self.chunks)[: self.diverged].numpy()


class Engine(Protocol):
    trainers: list  # one eager Trainer per trial: step count, evaluation, finish_epoch, checkpoints
    live: list[int]  # indices into trainers of the trials being trained, in the row order of `train`'s losses
    epoch: int  # epochs finished

    def begin(self, epoch: int) -> None:
        """Get ready to train epoch `epoch` (1-based) of every live trial: its batch order, its random streams."""

    def train(self, first: int, last: int) -> torch.Tensor:
        """Train batches first..last-1 of the epoch; their losses, [live trials, last - first], on the device."""

    def correct(self) -> list[int]:
        """Per live trial, the correct predictions counted so far in this epoch."""

    def drop(self, keep: list[int]) -> None:
        """Train only the trials `keep` (a subset of live, in its order) from now on."""


def run_epoch(engine: Engine, on_progress: Callable[[Progress], None] = lambda p: None) -> list[EpochResult]:
    """One epoch of every live trial of `engine`; results in trial order. A trial whose loss becomes non-finite
    stops at the tick that reveals it (its later evaluations are dropped) and is not trained again."""
    start = time.perf_counter()
    epoch = engine.epoch + 1
    lanes = list(engine.live)
    if not lanes:  # every trial diverged
        engine.epoch = epoch
        return []
    first = engine.trainers[lanes[0]]
    cfg = first.trial.config.training
    batches = batches_per_epoch(len(first.data.train.y), cfg.batch_size)
    logs = {k: LossLog(engine.trainers[k].trial, epoch, batches, on_progress) for k in lanes}
    evals: dict[int, list] = {k: [] for k in lanes}
    correct = dict.fromkeys(lanes, 0)
    every, step, size = cfg.eval_every, first.step, tick(cfg)  # the live trials are all at step `step`
    probe_every, probes = cfg.probe_every, {k: [] for k in lanes}
    engine.begin(epoch)
    done = read = 0  # batches trained; batches whose losses went to the logs
    pending = []
    while done < batches and engine.live:
        end = min(read + size, batches)
        if every:  # a chunk ends at each evaluation step
            end = min(end, done + every - (step + done) % every)
        if probe_every:  # and at each probe step
            end = min(end, done + probe_every - (step + done) % probe_every)
        pending.append(engine.train(done, end))
        done = end
        if every and (step + done) % every == 0:
            for k in engine.live:
                evals[k].append((step + done, *engine.trainers[k].evaluate()))
        if probe_every and (step + done) % probe_every == 0:
            for k in engine.live:
                probes[k] += engine.trainers[k].probe(step + done)
        if done - read == size or done == batches:
            rows = torch.cat(pending, 1).float().cpu()
            pending.clear()
            correct.update(zip(engine.live, engine.correct()))
            keep = [k for k, row in zip(engine.live, rows) if logs[k].add(row)]
            if keep != engine.live:
                engine.drop(keep)
            read = done
    engine.epoch = epoch
    results = [engine.trainers[k].finish_epoch(logs[k], correct[k], evals[k]) for k in sorted(logs)]
    seconds = time.perf_counter() - start  # a stacked group's wall time, for every trial in it
    for k, result in zip(sorted(logs), results):
        result.seconds = seconds
        result.probes = [row for row in probes[k] if row[0] <= engine.trainers[k].step]  # none past a divergence
    return results
