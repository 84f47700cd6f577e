"""Training one trial, one epoch at a time (the eager engine).

The hot loop does only what a user would miss: gather a batch by index from the device-resident uint8 data,
forward, backward (by hand for the MLP on the CPU, see `direct`; autograd otherwise), a fused optimizer step, and
keep the loss and logits on the device. Losses and correct predictions are read back every `tick` batches
(progress, "Loss after mini-batch N" windows, divergence check), never per step.
"""
import inspect
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .config import OptimizerConfig
from .data import Dataset, batch_order
from .direct import DirectGradients, supported
from .errors import BnbenchError
from .models import build_model
from .seeding import kept_globals, seed_globals
from .trials import Trial

EVAL_CHUNK = 2000


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
    evals: list[tuple[int, float, float]] = field(default_factory=list)  # (step, test loss, test acc), in order
    fallback: Optional[str] = None  # why this epoch was trained again with eager (its engine failed), for meta.json


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if not available.get(name.split(":")[0], lambda: True)():
        raise BnbenchError(f"device: '{name}' is not available on this machine; use device: auto or cpu")
    return torch.device(name)


def _skip_dynamo_import() -> None:
    """Spare every run (and every --jobs worker) the slow import of torch._dynamo (README, *Speed*).

    torch.optim wraps `add_param_group`, `zero_grad`, `state_dict` and `load_state_dict` in `torch._disable_dynamo`,
    whose first call imports torch._dynamo only to make the method opaque to `torch.compile`
    (torch/_compile.py caches the result on the function as `__dynamo_disable`). bnbench never compiles, so while
    nothing in the process has imported torch._dynamo, each method is cached as its own "disabled" form: the
    wrapper then calls the very same function, so no arithmetic changes (the bitwise engine and resume tests run
    through it). Once torch._dynamo is imported (a user's own code compiling), torch's wrappers work as usual."""
    if "torch._dynamo" in sys.modules:
        return
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        method = getattr(torch.optim.Optimizer, name)
        fn = getattr(method, "__wrapped__", None)
        if fn is not None and getattr(fn, "__dynamo_disable", None) is None:
            fn.__dynamo_disable = fn


def make_optimizer(cfg: OptimizerConfig, params, capturable: bool = False) -> torch.optim.Optimizer:
    _skip_dynamo_import()
    params = list(params)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[cfg.name]
    kwargs = {"lr": cfg.lr}
    if cfg.weight_decay is not None:
        kwargs["weight_decay"] = cfg.weight_decay
    if cfg.name == "sgd":
        kwargs["momentum"] = cfg.momentum
    elif capturable:
        kwargs["capturable"] = True
    try:  # fused: the whole update in one kernel; foreach where the device has no fused kernel
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return cls(params, foreach=True, **kwargs)


def plain_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """`optimizer.step()` without its wrappers, which add a profiler record, step hooks (bnbench registers none)
    and, in `_use_grad_for_differentiable`, torch.compile graph breaks that import torch._dynamo (slow) on the
    first call. What is left is the optimizer's own update, run under no_grad as that wrapper runs it for an
    optimizer that is not `differentiable` (bnbench never makes one): the same arithmetic."""
    update = inspect.unwrap(type(optimizer).step, stop=lambda f: f.__code__.co_name == "step")

    def step() -> None:
        with torch.no_grad():
            update(optimizer)
    return step


def fast_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """`optimizer.step`, minus its per-call bookkeeping where that is safe.

    For the fused Adam/AdamW the trainer builds, once the first step has created the state, this calls the same
    fused kernel with the same arguments as torch/optim/adam.py's `_fused_adam`, so the arithmetic is identical;
    it saves the Python of the wrappers, a fair part of a tutorial-MLP step (benchmarks/cpu.py). The parameters'
    step counters become views of one tensor, so that one add_ counts a step for all of them (`_foreach_add_` on
    ten 0-d tensors is slower: README, *Speed*); they are re-made whenever the state holds other tensors (a
    loaded state dict). Any other optimizer or setting calls `plain_step`.
    """
    group = optimizer.param_groups[0]
    if not (isinstance(optimizer, torch.optim.Adam) and len(optimizer.param_groups) == 1 and group.get("fused")
            and not (group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"])
            and not isinstance(group["lr"], torch.Tensor)):
        return plain_step(optimizer)
    params = group["params"]
    kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_

    counter, views = None, []  # one tensor, and its views: the states' step counters
    first_step = plain_step(optimizer)

    def step() -> None:
        nonlocal counter, views
        if len(optimizer.state) < len(params) or any(p.grad is None for p in params):
            first_step()
            return
        states = [optimizer.state[p] for p in params]
        if len(views) != len(states) or any(s["step"] is not v for s, v in zip(states, views)):
            counter = torch.stack([s["step"] for s in states])
            views = list(counter.unbind())
            for state, view in zip(states, views):
                state["step"] = view
        counter.add_(1)
        beta1, beta2 = group["betas"]
        kernel(params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
               [], views, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
               eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)
    return step


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Like DataLoader(drop_last=False), except that a last batch of one example is dropped (BN cannot train on it)."""
    return n // batch_size + (n % batch_size > 1) if batch_size > 1 else n


class LossLog:
    """One epoch's per-batch losses, read back from the device a tick at a time (never per step): progress events,
    the tutorial's "Loss after mini-batch N" windows, and where the loss first became NaN/inf."""

    def __init__(self, trial: Trial, epoch: int, batches: int, on_progress: Callable[[Progress], None]):
        self.trial, self.epoch, self.batches, self.on_progress = trial, epoch, batches, on_progress
        self.chunks: list[torch.Tensor] = []
        self.count = 0
        self.diverged: Optional[int] = None  # batch number (1-based) of the first non-finite loss

    @property
    def tick(self) -> int:
        every = self.trial.config.training.log_every
        return math.gcd(100, every) if every else 100

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
            window = float(torch.cat(self.chunks)[self.count - every:self.count].mean())
        self.on_progress(Progress(self.trial.index, self.epoch, self.count, self.batches, float(chunk.mean()), window))
        return True

    def losses(self) -> np.ndarray:
        return torch.cat(self.chunks)[:self.diverged].numpy()


class Trainer:
    capturable = False  # the graph engine needs an optimizer whose step can be captured

    def __init__(self, trial: Trial, data: Dataset, device: torch.device):
        cfg = trial.config
        self.trial, self.data, self.device = trial, data, device
        self.model = build_model(cfg.model, trial.variant, data.input_shape, data.num_classes, trial.seed).to(device)
        self.params = list(self.model.parameters())
        self.optimizer = make_optimizer(cfg.optimizer, self.params, capturable=self.capturable)
        self.optimizer_step = fast_step(self.optimizer)
        self.gradients = DirectGradients(self.model) if supported(self.model, device) else self._autograd
        self.epoch = 0  # epochs finished
        self.step = 0  # optimizer steps taken
        self.evals: list[tuple[int, float, float]] = []  # this epoch's evaluations so far (training.eval_every)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint; one that does not fit the model built now (a factory that builds another
        network on each call) is the user's to fix, in one line, and the run stays resumable."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError) as e:
            problem = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e))
            raise BnbenchError(f"{self.trial.key}: its checkpoint does not fit the model built now ({problem}); "
                               f"a model must be the same network on every build for its run to resume: fix "
                               f"model.factory, or start a new run") from None
        self.epoch, self.step = state["epoch"], state["step"]

    def train_epoch(self, on_progress: Callable[[Progress], None] = lambda p: None) -> EpochResult:
        cfg = self.trial.config.training
        start = time.perf_counter()
        epoch = self.epoch + 1
        n = len(self.data.train.y)
        log = LossLog(self.trial, epoch, batches_per_epoch(n, cfg.batch_size), on_progress)
        order = batch_order(n, self.trial.seed, epoch, cfg.shuffle).to(self.device)
        seed_globals(self.trial.seed, "train", epoch)  # dropout and the like: the same draws in any process
        self.model.train()
        self.evals = []
        correct = self._train_batches(order, log)
        return self.finish_epoch(log, correct.item(), start)

    def finish_epoch(self, log: LossLog, correct: int, start: float) -> EpochResult:
        """The epoch's result once its batches are trained (also for the stacked engine's trials): the counters
        move on, then the test split is evaluated. Evaluations made past a divergence (the loss is checked a
        tick at a time) are dropped; the epoch's last step is always evaluated."""
        trained = log.losses()
        self.epoch, self.step = log.epoch, self.step + len(trained)
        test_loss, test_acc = self.evaluate()
        evals = [e for e in self.evals if e[0] < self.step] + [(self.step, test_loss, test_acc)]
        seen = min(len(trained) * self.trial.config.training.batch_size, len(self.data.train.y))
        # on a diverged epoch predictions were counted through the end of the tick, past the rows kept: no number
        accuracy = correct / seen if log.diverged is None else float("nan")
        return EpochResult(log.epoch, trained, float(np.mean(trained)), accuracy, test_loss, test_acc,
                           time.perf_counter() - start, None if log.diverged is None else self.step, evals)

    def evaluate_if_due(self, done: int) -> None:
        """Evaluate after `done` steps of this epoch if `training.eval_every` divides the global step count."""
        every, step = self.trial.config.training.eval_every, self.step + done
        if every and step % every == 0:
            self.evals.append((step, *self.evaluate()))

    def _train_batches(self, order: torch.Tensor, log: LossLog) -> torch.Tensor:
        """Train on the epoch's batches in `order`, feeding `log`; returns the count of correct predictions
        (counted a tick at a time, like the losses)."""
        size = self.trial.config.training.batch_size
        labels = self.data.train.y.index_select(0, order)  # the epoch's labels in training order
        losses, logits, correct = [], [], torch.zeros((), dtype=torch.long, device=self.device)
        for i in range(log.batches):
            loss, out = self._step(order[i * size:(i + 1) * size], labels[i * size:(i + 1) * size])
            self.evaluate_if_due(i + 1)
            losses.append(loss)
            logits.append(out)
            if len(losses) == log.tick or i + 1 == log.batches:
                first = (i + 1 - len(losses)) * size
                correct += (torch.cat(logits).argmax(1) == labels[first:first + len(logits) * size]).sum()
                if not log.add(torch.stack(losses)):
                    break
                losses.clear()
                logits.clear()
        return correct

    def _step(self, idx: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the training examples `idx` (labels `y`); returns the loss and the logits."""
        # index_select: several times faster than advanced indexing for a CIFAR batch (README, *Speed*)
        loss, out = self.gradients(self.data.inputs(self.data.train.x.index_select(0, idx)), y)
        self.optimizer_step()
        return loss, out

    def _autograd(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Set every parameter's .grad for the batch (x, y); returns the loss and the logits."""
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        for p in self.params:  # = optimizer.zero_grad(set_to_none=True), without its per-call bookkeeping
            p.grad = None
        loss.backward()
        return loss.detach(), out.detach()  # kept for a tick: without its graph (a CNN's would hold MBs per step)

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the test split, in eval mode (BN uses its running statistics); the
        model's mode is restored, and nothing training uses (weights, BN statistics, random streams) changes: a model
        that draws in eval mode draws from the global RNGs as training left them, which are then put back, so an
        evaluation (`training.eval_every`) shifts no draw of the epoch around it."""
        training = self.model.training
        self.model.eval()
        x, y = self.data.test.x, self.data.test.y
        total, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        with kept_globals(self.device):
            for s in range(0, len(y), EVAL_CHUNK):
                out = self.model(self.data.inputs(x[s:s + EVAL_CHUNK]))
                total += F.cross_entropy(out, y[s:s + EVAL_CHUNK], reduction="sum")
                correct += (out.argmax(1) == y[s:s + EVAL_CHUNK]).sum()
        self.model.train(training)
        return total.item() / len(y), correct.item() / len(y)
