"""The stacked engine: K trials that share data, batch size and epochs trained at once, as one batched model.

Why: a model this small leaves an accelerator idle between kernel launches, so K models cost about what one
does when every layer runs once for all of them. The contract is equivalence with the eager `Trainer`:

* Each trial keeps an eager `Trainer` (model built by `build_model`, optimizer by `make_optimizer`). Its
  parameters and BN buffers are rebound to views of [K, ...] tensors, so the stacked forward and the eager
  model share memory: checkpoints, `load_state_dict` and evaluation reuse the eager code unchanged.
* Activations keep the trials along dim 1 ([B, K*C, H, W], [B, K*F]), the layout in which a grouped
  convolution, BatchNorm over K*C channels and max-pooling are per trial by construction. Linear layers are
  one batched matmul; BatchNorm runs on the trials that have it, in their placement (the trials are ordered
  none | BN before ReLU | BN after ReLU, so each kind is a contiguous slice).
* The optimizer is torch's own (fused) kernel, one call per distinct set of hyperparameters, over the trials'
  per-trial parameter views: the update is bitwise that of each trial's eager optimizer, per-trial lr included.
* Per-trial loss = mean cross-entropy; backward of their sum gives each trial exactly its own gradient.
"""
import json
import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset, batch_order
from .train import EpochResult, Progress, Trainer, batches_per_epoch, make_optimizer
from .trials import Trial

PER_TRIAL = {"optimizer": ("lr", "weight_decay", "momentum")}  # the config fields that may differ in one group
KINDS = {"none": 0, "before_activation": 1, "after_activation": 2}
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm's defaults, which build_model uses
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


class StackedTrainer:
    def __init__(self, trials: list[Trial], data: Dataset, device: torch.device):
        if not trials or len(self.compatible(trials)) > 1:
            raise ValueError("StackedTrainer: trials must share everything but variant, seed, optimizer.lr, "
                             f"optimizer.weight_decay and optimizer.momentum; got {[t.key for t in trials]}")
        self.trials, self.data, self.device = list(trials), data, device
        self.training = trials[0].config.training
        self.epoch = 0  # epochs finished (all trials in the group advance together)
        self._trainers = [Trainer(t, data, device) for t in self.trials]
        self._assemble(sorted(range(len(trials)), key=lambda k: KINDS[_kind(self.trials[k])]))

    @staticmethod
    def compatible(trials: list[Trial]) -> list[list[Trial]]:
        """Groups of trials that can be stacked together, in order of first appearance."""
        groups: dict[str, list[Trial]] = {}
        for trial in trials:
            groups.setdefault(_group_key(trial), []).append(trial)
        return list(groups.values())

    @property
    def active(self) -> list[Trial]:
        """The trials that the next epoch trains (a diverged trial is dropped), in the order of `trials`."""
        return [self.trials[k] for k in sorted(self._stack)]

    # ---- checkpoints ---------------------------------------------------------------------------------------------

    def state_dicts(self) -> list[dict]:
        """Per trial, exactly `Trainer.state_dict()`; model tensors are copied out of the stack (a view would
        serialize the whole [K, ...] storage)."""
        return [state | {"model": {key: v.clone() for key, v in state["model"].items()}}
                for state in (t.state_dict() for t in self._trainers)]

    def load_state_dicts(self, states: list[dict]) -> None:
        """Resume every trial from `Trainer.state_dict()`-format states (written by either engine)."""
        if len(states) != len(self.trials) or len({s["epoch"] for s in states}) != 1:
            raise ValueError(f"load_state_dicts: expected {len(self.trials)} states at one epoch, got epochs "
                             f"{[s['epoch'] for s in states]}")
        for trainer, state in zip(self._trainers, states):
            trainer.load_state_dict(state)
        self.epoch = states[0]["epoch"]
        self._assemble(sorted(range(len(self.trials)), key=lambda k: KINDS[_kind(self.trials[k])]))

    # ---- training ------------------------------------------------------------------------------------------------

    def train_epoch(self, on_progress: Callable[[Progress], None] = lambda p: None) -> list[EpochResult]:
        """One epoch of every active trial; results in the order of `active` before the call. A trial whose loss
        becomes non-finite stops at the tick that reveals it, exactly where its eager `Trainer` would."""
        cfg = self.training
        start = time.perf_counter()
        epoch = self.epoch + 1
        n = len(self.data.train.y)
        batches = batches_per_epoch(n, cfg.batch_size)
        tick = math.gcd(100, cfg.log_every) if cfg.log_every else 100  # as Trainer.train_epoch
        started = sorted(self._stack)
        done: dict[int, list[torch.Tensor]] = {k: [] for k in started}
        correct = {k: 0 for k in started}
        diverged: dict[int, int] = {}
        orders = torch.stack([batch_order(n, self.trials[k].seed, epoch, cfg.shuffle) for k in self._stack])
        orders, counts, losses = orders.to(self.device), torch.zeros(len(self._stack), dtype=torch.long,
                                                                     device=self.device), []
        for i in range(batches):
            losses.append(self._step(orders[:, i * cfg.batch_size:(i + 1) * cfg.batch_size], counts))
            if (i + 1) % tick == 0 or i + 1 == batches:
                columns = torch.stack(losses).float().cpu().T.contiguous()  # [K, batches since the last tick]
                losses.clear()
                for k, column, count in zip(self._stack, columns, counts.tolist()):
                    done[k].append(column)
                    correct[k] = count
                    bad = (~torch.isfinite(column)).nonzero()
                    if len(bad):
                        diverged[k] = i + 2 - len(column) + int(bad[0])  # batch number within the epoch
                    else:
                        on_progress(self._trainers[k]._progress(epoch, i + 1, batches, done[k]))
                keep = [p for p, k in enumerate(self._stack) if k not in diverged]
                if len(keep) < len(self._stack):
                    orders, counts = orders[keep], counts[keep]
                    self._assemble([self._stack[p] for p in keep])
                if not self._stack:
                    break
        self.epoch = epoch
        results = [self._finish(k, epoch, done[k], correct[k], diverged.get(k)) for k in started]
        seconds = time.perf_counter() - start
        for result in results:
            result.seconds = seconds
        return results

    def _finish(self, k: int, epoch: int, done: list[torch.Tensor], correct: int, diverged) -> EpochResult:
        """The eager `Trainer.train_epoch` bookkeeping for trial k (seconds are set by the caller)."""
        trainer = self._trainers[k]
        trained = torch.cat(done)[:diverged].numpy()
        trainer.epoch, trainer.step = epoch, trainer.step + len(trained)
        test_loss, test_acc = trainer.evaluate()
        seen = min(len(trained) * self.training.batch_size, len(self.data.train.y))
        return EpochResult(epoch, trained, float(np.mean(trained)), correct / seen, test_loss, test_acc, 0.0,
                           None if diverged is None else trainer.step)

    def _step(self, idx: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """One optimizer step of every stacked trial on its own batch idx[k]; returns the K losses."""
        x, y = self.data.inputs(self.data.train.x[idx]), self.data.train.y[idx].T  # x [K, B, ...], y [B, K]
        out = self._forward(x)
        losses = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view_as(y).mean(0)
        for tensor in self._leaves:
            tensor.grad.zero_()
        losses.sum().backward()
        for optimizer in self._optimizers:
            optimizer.step()
        correct += (out.argmax(-1) == y).sum(0)
        return losses.detach()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """[K, B, C, H, W] inputs -> [B, K, classes] logits, walking the eager module list with trials along dim 1."""
        trials, batch = x.shape[:2]
        h = x.transpose(0, 1).reshape(batch, trials * x.shape[2], *x.shape[3:])
        layer = -1
        for module in self._template:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                layer += 1
                h = self._weighted(module, self._layers[layer], h)
            elif isinstance(module, nn.ReLU):
                h = self._activate(self._layers[layer], h)
            elif isinstance(module, nn.Flatten):
                h = h.reshape(batch, -1)
            elif not isinstance(module, NORMS):  # BN is part of _activate
                h = module(h)  # max-pooling: per channel, so per trial in this layout
        return h.view(batch, trials, -1)

    def _weighted(self, module: nn.Module, layer: dict, h: torch.Tensor) -> torch.Tensor:
        weight, bias = layer["weight"], layer["bias"]
        trials = len(weight)
        if isinstance(module, nn.Conv2d):
            width = h.shape[1] // trials
            return torch.cat([_dense_grad(F.conv2d(h[:, k * width:(k + 1) * width], weight[k], bias[k],
                                                   module.stride, module.padding, module.dilation))
                              for k in range(trials)], 1)
        out = torch.baddbmm(bias.unsqueeze(1), h.view(len(h), trials, -1).transpose(0, 1), weight.mT)
        return _dense_grad(out).transpose(0, 1).reshape(len(h), -1)  # [K, B, O] -> [B, K*O]

    def _activate(self, layer: dict, h: torch.Tensor) -> torch.Tensor:
        """ReLU, with BatchNorm before or after it for the trials that have it; trial slices along dim 1."""
        width = h.shape[1] // len(self._stack)
        parts, row = [], 0
        for kind, first, count in self._spans:
            part = h.narrow(1, first * width, count * width)
            if kind == "none":
                parts.append(F.relu(part))
                continue
            bn = {name: t[row:row + count].flatten() for name, t in layer["bn"].items()}
            row += count
            if kind == "before_activation":
                parts.append(F.relu(_batch_norm(part, bn)))
            else:
                parts.append(_batch_norm(F.relu(part), bn))
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    # ---- the stack -----------------------------------------------------------------------------------------------

    def _assemble(self, stack: list[int]) -> None:
        """Stack the trials `stack` (indices into `trials`, none | BN before | BN after): their eager tensors
        become views of [K, ...] tensors, and each set of hyperparameters gets one optimizer over their views.
        Called again without a diverged trial, whose tensors then keep their last values."""
        self._stack = stack
        trainers = [self._trainers[k] for k in stack]
        self._template = trainers[0].model
        kinds = [_kind(self.trials[k]) for k in stack]
        self._spans = [(kind, kinds.index(kind), kinds.count(kind)) for kind in KINDS if kind in kinds]
        stages = [_stages(t.model) for t in trainers]
        self._layers, self._leaves = [], []
        for j in range(len(stages[0]) if stages else 0):
            layer = {name: _stack([getattr(s[j][0], name) for s in stages]) for name in ("weight", "bias")}
            norms = [s[j][1] for s in stages if s[j][1] is not None]
            layer["bn"] = {name: _stack([getattr(m, name) for m in norms]) for name in BN_TENSORS} if norms else {}
            self._layers.append(layer)
            self._leaves += [layer["weight"], layer["bias"]] + [layer["bn"][n] for n in ("weight", "bias")
                                                               if layer["bn"]]
        self._optimizers = []
        for group in _by_optimizer(trainers).values():
            optimizer = make_optimizer(group[0].trial.config.optimizer,
                                       [p for t in group for p in t.model.parameters()])
            for trainer in group:  # share the per-parameter state dicts: the eager optimizer sees every update
                for p in trainer.model.parameters():
                    optimizer.state[p] = trainer.optimizer.state[p]
            self._optimizers.append(optimizer)


def _kind(trial: Trial) -> str:
    return "none" if trial.variant.norm == "none" else trial.variant.placement


def _group_key(trial: Trial) -> str:
    """The trial's config without the fields that may differ between stacked trials."""
    raw = trial.config.model_dump(mode="json")
    for section, fields in PER_TRIAL.items():
        for name in fields:
            raw[section].pop(name)
    return json.dumps(raw, sort_keys=True)


def _by_optimizer(trainers: list[Trainer]) -> dict[str, list[Trainer]]:
    groups: dict[str, list[Trainer]] = {}
    for trainer in trainers:
        groups.setdefault(trainer.trial.config.optimizer.model_dump_json(), []).append(trainer)
    return groups


def _stages(model: nn.Sequential) -> list[tuple[nn.Module, nn.Module | None]]:
    """Each weighted layer with the BatchNorm that belongs to it (None without BN)."""
    stages: list[list] = []
    for module in model:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            stages.append([module, None])
        elif isinstance(module, NORMS):
            stages[-1][1] = module
    return [tuple(s) for s in stages]


@torch.no_grad()
def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One [K, ...] tensor holding `tensors`, which are rebound (same objects, so optimizer state keyed by them
    stays valid) to views of it; for parameters, the stacked tensor is the autograd leaf and their .grad are
    views of its .grad."""
    stacked = torch.stack([t.detach() for t in tensors])
    for i, t in enumerate(tensors):
        t.data = stacked[i]
    if isinstance(tensors[0], nn.Parameter):
        stacked.requires_grad_()
        stacked.grad = torch.zeros_like(stacked)
        for i, t in enumerate(tensors):
            t.grad = stacked.grad[i]
    return stacked


def _batch_norm(x: torch.Tensor, bn: dict[str, torch.Tensor]) -> torch.Tensor:
    """Training-mode BatchNorm of several trials' channels at once; running statistics update in place.
    The input is made contiguous: the CPU kernel rounds differently on a strided slice than eager does."""
    bn["num_batches_tracked"].add_(1)
    return _dense_grad(F.batch_norm(x.contiguous(), bn["running_mean"], bn["running_var"], bn["weight"],
                                    bn["bias"], True, BN_MOMENTUM, BN_EPS))


def _dense_grad(x: torch.Tensor) -> torch.Tensor:
    """`x`, whose gradient is made contiguous before it reaches the op that produced `x`: the CPU backward
    kernels of linear, conv and BatchNorm sum in a layout-dependent order, and eager training hands them
    contiguous gradients (a strided one changed a bias gradient in the last bit, which Adam then amplifies)."""
    x.register_hook(torch.Tensor.contiguous)
    return x
