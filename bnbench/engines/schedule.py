"""Learning-rate schedules (`optimizer.schedule`, `optimizer.warmup_epochs`): the lr of each optimizer step in
closed form, one pure function that every engine calls before each step.

Why closed form: torch's schedulers update the lr recursively (each value from the one before), so the float a
step gets depends on the history of calls; here step s's lr is a function of s alone, so a run resumed at any
step, a stacked group and an eager trial all set the same float for the same step (tests/engines/test_schedule.py).

The shape, for step s (0-based: the optimizer steps taken before it) of a run of T steps, E batches per epoch:
- warmup: W = round(warmup_epochs x E) steps at lr x (s + 1) / W (torch's LinearLR from 1/W), then the base lr;
- constant: the base lr; step: lr x gamma^(milestones <= s // E), the epoch-wise MultiStepLR;
- cosine and linear: from the base lr after warmup down towards 0 over the remaining T - W steps (torchvision's
  recipe: warmup, then CosineAnnealingLR over the rest); no step trains at 0: the last one's lr is the least.
"""

import math
from functools import partial
from typing import Callable, Optional

import torch

from bnbench.engines.events import batches_per_epoch
from bnbench.experiment.config import Config, OptimizerConfig


def lr_at(cfg: OptimizerConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) in a run of `total_steps` steps."""
    warmup = warmup_steps(cfg, steps_per_epoch)
    factor = (step + 1) / warmup if step < warmup else 1.0
    if cfg.schedule == "step":
        factor *= cfg.gamma ** sum(m <= step // steps_per_epoch for m in cfg.milestones)
    elif cfg.schedule != "constant":
        progress = max(step - warmup, 0) / max(total_steps - warmup, 1)  # a warmup rounded up to the whole run
        factor *= (1 + math.cos(math.pi * progress)) / 2 if cfg.schedule == "cosine" else 1 - progress
    return cfg.lr * factor


def warmup_steps(cfg: OptimizerConfig, steps_per_epoch: int) -> int:
    """`optimizer.warmup_epochs` in steps, to the nearest step."""
    return round(cfg.warmup_epochs * steps_per_epoch)


def scheduled(cfg: OptimizerConfig) -> bool:
    """Whether the lr changes during the run (the constant schedule without warmup never touches it)."""
    return cfg.schedule != "constant" or cfg.warmup_epochs > 0


def trial_lrs(config: Config, train_examples: int) -> Optional[Callable[[int], float]]:
    """step -> lr for one trial's config, whose training split holds `train_examples`; None where the lr is
    constant (the engines then leave it alone: a constant run's steps are the same calls as before)."""
    if not scheduled(config.optimizer):
        return None
    per_epoch = batches_per_epoch(train_examples, config.training.batch_size)
    return partial(lr_at, config.optimizer, steps_per_epoch=per_epoch, total_steps=config.training.epochs * per_epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group of `optimizer` the learning rate `lr` for its next step."""
    for group in optimizer.param_groups:
        group["lr"] = lr
