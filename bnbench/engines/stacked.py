"""The stacked engine (`training.engine: stacked`): K trials that share data, model shape, batch size and epochs,
trained at once as one batched model.

Why: a model this small leaves an accelerator idle between kernel launches, so K models cost about what one
does when every layer runs once for all of them. On the CPU (one thread) the eager engine's hand-written MLP
backward (`direct`) leaves it little to win, and only from about 6 trials (docs/performance.md).
The contract is equivalence with the eager `Trainer`; on the CPU the weights are bitwise equal
(tests/engines/test_stacked.py):

* Each trial keeps an eager `Trainer` (model from `build_model`, optimizer from `make_optimizer`). Its
  parameters and BN buffers are rebound to views of [K, ...] tensors, so the stacked forward and the eager
  model share memory: checkpoints, `load_state_dict` and evaluation are the eager code, unchanged.
* Activations keep the trials along dim 1 ([B, K*C, H, W], [B, K*F]), where BatchNorm over K*C channels and
  max-pooling are per trial by construction. Linear layers are one batched matmul; convolutions run per trial
  (a grouped convolution rounds differently from eager's: 40% apart within 180 steps with BN and Adam);
  BatchNorm runs on the trials that have it, in their placement (the trials are ordered none | BN before ReLU |
  BN after ReLU, so each kind is a contiguous slice).
* The optimizer is torch's own fused kernel, one call per distinct set of hyperparameters, over the trials'
  parameter views: each update is bitwise that of the trial's eager optimizer, per-trial lr included.
* The loss is each trial's mean cross-entropy; backward of their sum gives each trial exactly its gradient.
"""

import copy
import json
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bnbench.engines import schedule
from bnbench.engines.eager import Trainer
from bnbench.engines.epoch import run_epoch
from bnbench.engines.events import EpochResult, Progress
from bnbench.engines.fast_optim import fast_step, make_optimizer
from bnbench.experiment import augment
from bnbench.experiment.data import Dataset, batch_order
from bnbench.experiment.trials import Trial

PER_TRIAL = {"optimizer": ("lr", "weight_decay", "momentum")}  # the config fields that may differ in one group
KINDS = {"none": 0, "before_activation": 1, "after_activation": 2}
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm's defaults, which build_model uses
NORM_CLASSES = (nn.BatchNorm1d, nn.BatchNorm2d)


class StackedTrainer:
    """The trials of one `compatible` group, trained together; per trial, what an eager `Trainer` would do."""

    def __init__(self, trials: list[Trial], data: Dataset, device: torch.device):
        if not trials or len(self.compatible(trials)) > 1:
            raise ValueError(
                "StackedTrainer: trials must share everything but variant, seed, optimizer.lr, "
                f"optimizer.weight_decay and optimizer.momentum; got {[t.key for t in trials]}"
            )
        self.trials, self.data, self.device = list(trials), data, device
        self.training = trials[0].config.training
        self.epoch = 0  # epochs finished (all trials in the group advance together)
        self._trainers = [Trainer(t, data, device) for t in self.trials]
        self._groups: list[tuple[torch.optim.Optimizer, list[Trainer]]] = []  # one optimizer per hyperparameters
        self._assemble(_stack_order(self.trials))

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
        """Per trial, a snapshot in exactly the format of `Trainer.state_dict()`. Copies, unlike a state_dict:
        a view would serialize the whole [K, ...] storage, and optimizer state loaded elsewhere in this process
        must not be the tensors this engine goes on updating."""
        self._publish()
        states = [t.state_dict() for t in self._trainers]
        for state in states:
            state["model"] = copy.copy(state["model"])  # keeps its _metadata (module versions) for loading
            for key in state["model"]:
                state["model"][key] = state["model"][key].clone()
            state["optimizer"] = copy.deepcopy(state["optimizer"])
        return states

    def load_state_dicts(self, states: list[dict]) -> None:
        """Resume every trial from `Trainer.state_dict()`-format states (written by either engine)."""
        if len(states) != len(self.trials) or len({s["epoch"] for s in states}) != 1:
            raise ValueError(
                f"load_state_dicts: expected {len(self.trials)} states at one epoch, got epochs "
                f"{[s['epoch'] for s in states]}"
            )
        self._groups = []  # their state is about to be replaced
        for trainer, state in zip(self._trainers, states):
            trainer.load_state_dict(state)
        self.epoch = states[0]["epoch"]
        self._assemble(_stack_order(self.trials))

    # ---- training ------------------------------------------------------------------------------------------------

    def train_epoch(self, on_progress: Callable[[Progress], None] = lambda p: None) -> list[EpochResult]:
        """One epoch of every active trial (`epoch.run_epoch`); results in the order of `active` before the call.
        A trial whose loss becomes non-finite leaves the stack at the tick that reveals it, where its eager
        `Trainer` would stop."""
        return run_epoch(self, on_progress)

    # ---- what `run_epoch` asks of an engine ----------------------------------------------------------------------

    @property
    def trainers(self) -> list[Trainer]:
        return self._trainers

    @property
    def live(self) -> list[int]:
        return self._stack

    def begin(self, epoch: int) -> None:
        """The live trials' batch orders; no global seeding (see `choose.unsupported`): the built-ins draw nothing."""
        n, shuffle = len(self.data.train.y), self.training.shuffle
        orders = torch.stack([batch_order(n, self.trials[k].seed, epoch, shuffle) for k in self._stack])
        self._orders = orders.to(self.device)
        kinds = self.trials[0].config.dataset.augment
        draws = [augment.draws(kinds, o, self.trials[k].seed, epoch) for o, k in zip(self._orders, self._stack)]
        self._draws = torch.stack(draws) if kinds else None  # [K, examples, 3]
        self._counts = torch.zeros(len(orders), dtype=torch.long, device=self.device)

    def train(self, first: int, last: int) -> torch.Tensor:
        size = self.training.batch_size
        before = self._trainers[self._stack[0]].step  # the steps every live trial took before this epoch
        losses = []
        for i in range(first, last):
            for optimizer, lrs in self._schedules:
                schedule.set_lr(optimizer, lrs(before + i))
            losses.append(self._step(self._orders[:, i * size : (i + 1) * size], self._counts))
        return torch.stack(losses, 1)

    def correct(self) -> list[int]:
        return self._counts.tolist()

    def drop(self, keep: list[int]) -> None:
        rows = [self._stack.index(k) for k in keep]
        self._orders, self._counts = self._orders[rows], self._counts[rows]
        self._draws = None if self._draws is None else self._draws[rows]
        self._assemble(keep)

    def _step(self, idx: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """One optimizer step of every stacked trial on its own batch idx[k]; returns the K losses."""
        x = self.data.inputs(self._images(idx))  # [K*B, C, H, W]
        y = self.data.train.y.index_select(0, idx.T.flatten()).view(idx.T.shape)  # [B, K]
        out = self._forward(x.view(*idx.shape, *x.shape[1:]))  # [B, K, classes]
        # each trial's mean over its own contiguous row: summed in an order that does not depend on how many
        # trials share the stack (a column mean over [B, K] did, so a resumed, regrouped run differed in the
        # last bit)
        losses = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view_as(y).T.contiguous().mean(1)
        for stacked, _ in self._leaves:
            stacked.grad = None
        losses.sum().backward()
        # Each trial parameter's .grad becomes a view of the fresh stacked gradient: cheap, where accumulating into
        # kept .grad tensors is memory traffic (benchmarks/gpu.py).
        for stacked, params in self._leaves:
            for p, grad in zip(params, stacked.grad):
                p.grad = grad
        for step in self._steps:
            step()
        correct += (out.argmax(-1) == y).sum(0)
        return losses.detach()

    def _images(self, idx: torch.Tensor) -> torch.Tensor:
        """The uint8 training images of every stacked trial's batch idx[k], each augmented as its trial's draws
        of this epoch say (bnbench.experiment.augment), as [K*B, C, H, W]."""
        x = self.data.train.x.index_select(0, idx.flatten())
        if self._draws is None:
            return x
        trials, n = self._draws.shape[:2]
        rows = idx + n * torch.arange(trials, device=idx.device)[:, None]  # into the [K * examples, 3] draws
        return augment.apply(x, self._draws.flatten(0, 1).index_select(0, rows.flatten()))

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
            elif not isinstance(module, NORM_CLASSES):  # BN is part of _activate
                h = module(h)  # max-pooling: per channel, so per trial in this layout
        return h.view(batch, trials, -1)

    def _weighted(self, module: nn.Module, layer: dict, h: torch.Tensor) -> torch.Tensor:
        """The Conv2d or Linear `module`, with each trial's own weights from `layer`."""
        weight, bias = layer["weight"], layer["bias"]
        trials = len(weight)
        if isinstance(module, nn.Conv2d):
            return torch.cat(
                [
                    _dense_grad(F.conv2d(x, w, b, module.stride, module.padding, module.dilation))
                    for x, w, b in zip(h.chunk(trials, 1), weight.unbind(), bias.unbind())
                ],
                1,
            )
        out = _Linear.apply(h.view(len(h), trials, -1).transpose(0, 1), weight, bias)
        return out.transpose(0, 1).reshape(len(h), -1)  # [K, B, O] -> [B, K*O]

    def _activate(self, layer: dict, h: torch.Tensor) -> torch.Tensor:
        """ReLU, with BatchNorm before or after it for the trials that have it; trial slices along dim 1."""
        width = h.shape[1] // len(self._stack)
        parts, row = [], 0
        for kind, first, count in self._spans:
            part = h.narrow(1, first * width, count * width)
            if kind == "none":
                parts.append(F.relu(part))
                continue
            bn = {name: t[row : row + count].flatten() for name, t in layer["bn"].items()}
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
        self._publish()
        self._stack, self._groups, self._steps, self._schedules = stack, [], [], []
        if not stack:
            return
        trainers = [self._trainers[k] for k in stack]
        self._template = trainers[0].model  # the layer sequence the stacked forward follows (BN aside)
        kinds = [_kind(self.trials[k]) for k in stack]
        self._spans = [(kind, kinds.index(kind), kinds.count(kind)) for kind in KINDS if kind in kinds]
        self._layers, self._leaves = [], []  # leaves: (stacked parameter, the trials' parameters it holds)
        for modules in zip(*(_stages(t.model) for t in trainers)):  # one weighted layer, in every trial
            layer = {name: self._stacked([getattr(m, name) for m, _ in modules]) for name in ("weight", "bias")}
            norms = [bn for _, bn in modules if bn is not None]
            layer["bn"] = {name: self._stacked([getattr(bn, name) for bn in norms]) for name in BN_TENSORS if norms}
            self._layers.append(layer)
        for group in _by_optimizer(trainers).values():
            optimizer = make_optimizer(group[0].trial.config.optimizer, [p for t in group for p in t.params])
            schedule.set_lr(optimizer, group[0].optimizer.param_groups[0]["lr"])  # a resumed trial's last lr
            for trainer in group:  # resume from the trial's own (loaded or published) optimizer state
                for p in trainer.params:
                    if p in trainer.optimizer.state:
                        optimizer.state[p] = trainer.optimizer.state[p]
            self._groups.append((optimizer, group))
            lrs = schedule.trial_lrs(group[0].trial.config, len(self.data.train.y))
            if lrs:  # step -> lr, from this group's own optimizer.lr
                self._schedules.append((optimizer, lrs))
        self._steps = [fast_step(optimizer) for optimizer, _ in self._groups]

    def _stacked(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """`_stack`, noting each stacked parameter (an autograd leaf) with the trial parameters it holds."""
        stacked = _stack(tensors)
        if stacked.requires_grad:
            self._leaves.append((stacked, tensors))
        return stacked

    def _publish(self) -> None:
        """Give each trial's eager optimizer the per-parameter state the stacked optimizers keep, so that
        `Trainer.state_dict()` writes it. The state dicts are shared from then on: one copy, updated in place."""
        for optimizer, group in self._groups:
            for trainer in group:
                for p in trainer.params:
                    if p in optimizer.state:
                        trainer.optimizer.state[p] = optimizer.state[p]
                schedule.set_lr(trainer.optimizer, optimizer.param_groups[0]["lr"])  # the last step's, as eager's


def _stack_order(trials: list[Trial]) -> list[int]:
    """Trial indices with the kinds contiguous, none | BN before ReLU | BN after ReLU."""
    return sorted(range(len(trials)), key=lambda k: KINDS[_kind(trials[k])])


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
    stages = []
    for module in model:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            stages.append((module, None))
        elif isinstance(module, NORM_CLASSES):
            stages[-1] = (stages[-1][0], module)
    return stages


@torch.no_grad()
def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One [K, ...] tensor holding `tensors`, which are rebound to views of it (the same objects, so optimizer
    state keyed by them stays valid); stacked parameters are the autograd leaves of the stacked forward."""
    stacked = torch.stack([t.detach() for t in tensors])
    for t, view in zip(tensors, stacked):
        t.data = view
    return stacked.requires_grad_(isinstance(tensors[0], nn.Parameter))


def _batch_norm(x: torch.Tensor, bn: dict[str, torch.Tensor]) -> torch.Tensor:
    """Training-mode BatchNorm of several trials' channels at once; running statistics update in place.
    The input is made contiguous: the CPU kernel rounds differently on a strided slice than eager does."""
    bn["num_batches_tracked"].add_(1)
    return _dense_grad(
        F.batch_norm(
            x.contiguous(), bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], True, BN_MOMENTUM, BN_EPS
        )
    )


class _Linear(torch.autograd.Function):
    """x[k] @ weight[k].T + bias[k] for each trial k, x [K, B, F] -> [K, B, O], differentiated with the formulas
    of eager F.linear's backward (addmm with a transposed weight: grad_weight = grad.T @ x), batched. Autograd's
    own bmm backward yields grad_weight transposed, which costs a copy of all K weights per step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.mT)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # eager hands F.linear's backward contiguous gradients; sums depend on layout
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(grad.mT, x), grad.sum(1)


def _dense_grad(x: torch.Tensor) -> torch.Tensor:
    """`x`, whose gradient is made contiguous before it reaches the op that produced `x`: the CPU backward
    kernels of conv and BatchNorm sum in a layout-dependent order, and eager training hands them contiguous
    gradients (a strided one changed a bias gradient in the last bit, which Adam then amplifies)."""
    x.register_hook(torch.Tensor.contiguous)
    return x
