"""The eager engine: one trial, one optimizer step at a time.

The hot loop does only what a user would miss: gather a batch by index from the device-resident uint8 data,
forward, backward (by hand for the MLP on the CPU, see `direct`; autograd otherwise), a fused optimizer step
(`fast_optim`), and keep the loss and logits on the device; the epoch around it is `epoch.run_epoch`'s.
`Trainer` is also each trial's state for the other engines: model, optimizer, checkpoints, evaluation.
"""

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bnbench.engines import probes, schedule
from bnbench.engines.direct import DirectGradients, supported
from bnbench.engines.epoch import LossLog, run_epoch
from bnbench.engines.events import EpochResult, Progress
from bnbench.engines.fast_optim import fast_step, make_optimizer
from bnbench.errors import BnbenchError
from bnbench.experiment import augment
from bnbench.experiment.data import Dataset, Split, batch_order
from bnbench.experiment.seeding import kept_globals, seed_globals
from bnbench.experiment.trials import Trial
from bnbench.nets.models import build_model

EVAL_CHUNK = 2000


class Trainer:
    capturable = False  # the graph engine needs an optimizer whose step can be captured

    def __init__(self, trial: Trial, data: Dataset, device: torch.device):
        cfg = trial.config
        self.trial, self.data, self.device = trial, data, device
        self.model = build_model(cfg.model, trial.variant, data.input_shape, data.num_classes, trial.seed).to(device)
        self.params = list(self.model.parameters())
        self.optimizer = make_optimizer(cfg.optimizer, self.params, capturable=self.capturable)
        self.optimizer_step = fast_step(self.optimizer)
        self.lrs = schedule.trial_lrs(cfg, len(data.train.y))  # step -> lr (engines.schedule); None: constant
        self.gradients = DirectGradients(self.model) if supported(self.model, device) else self._autograd
        self.epoch = 0  # epochs finished
        self.step = 0  # optimizer steps taken
        self.correct_count = torch.zeros((), dtype=torch.long, device=device)  # this epoch's correct predictions
        self.draws = None  # this epoch's augmentation draws, by example (`begin`; bnbench.experiment.augment)
        self.trials, self.trainers, self.live = [trial], [self], [0]  # `epoch.Engine`: one trial, this one
        self.probe_every = cfg.training.probe_every
        if self.probe_every:  # the fixed probe batch (bnbench.engines.probes), and the weights before the probed step
            idx = probes.batch_indices(len(data.train.y), trial.seed, cfg.training.probe_batch).to(device)
            self.probe_batch = (data.inputs(data.train.x.index_select(0, idx)), data.train.y.index_select(0, idx))
            self.before = probes.weights(self.model)

    @property
    def active(self) -> list[Trial]:
        """The trial, until its loss became non-finite (`run_epoch` then drops it)."""
        return [self.trials[k] for k in self.live]

    def state_dicts(self) -> list[dict]:
        return [self.state_dict()]

    def load_state_dicts(self, states: list[dict]) -> None:
        self.load_state_dict(states[0])

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint; one that does not fit the model built now (a factory that builds another
        network on each call) is the user's to fix, in one line, and the run stays resumable."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError) as e:
            problem = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e))
            raise BnbenchError(
                f"{self.trial.key}: its checkpoint does not fit the model built now ({problem}); "
                f"a model must be the same network on every build for its run to resume: fix "
                f"model.factory, or start a new run"
            ) from None
        self.epoch, self.step = state["epoch"], state["step"]

    def train_epoch(self, on_progress: Callable[[Progress], None] = lambda p: None) -> EpochResult:
        """The next epoch (also after a divergence: the trial is trained again)."""
        self.live = [0]
        return run_epoch(self, on_progress)[0]

    # ---- what `run_epoch` asks of an engine ----------------------------------------------------------------------

    def begin(self, epoch: int) -> None:
        cfg = self.trial.config.training
        order = batch_order(len(self.data.train.y), self.trial.seed, epoch, cfg.shuffle).to(self.device)
        self.draws = augment.draws(self.trial.config.dataset.augment, order, self.trial.seed, epoch)
        self.epoch_order, self.epoch_labels = order, self.data.train.y.index_select(0, order)  # labels in that order
        seed_globals(self.trial.seed, "train", epoch)  # dropout and the like: the same draws in any process
        self.model.train()
        self.correct_count.zero_()

    def train(self, first: int, last: int) -> torch.Tensor:
        size = self.trial.config.training.batch_size
        order, labels, losses, logits = self.epoch_order, self.epoch_labels, [], []
        probed = self.probe_every and (self.step + last) % self.probe_every == 0  # a probe follows this chunk
        for i in range(first, last):
            if probed and i == last - 1:
                self.before = probes.weights(self.model)
            if self.lrs:  # self.step: the steps taken before this epoch
                schedule.set_lr(self.optimizer, self.lrs(self.step + i))
            loss, out = self._step(order[i * size : (i + 1) * size], labels[i * size : (i + 1) * size])
            losses.append(loss)
            logits.append(out)
        logits = torch.cat(logits)
        self.correct_count += (logits.argmax(1) == labels[first * size : first * size + len(logits)]).sum()
        return torch.stack(losses).view(1, -1)

    def correct(self) -> list[int]:
        return [self.correct_count.item()]

    def drop(self, keep: list[int]) -> None:
        self.live = keep

    def finish_epoch(self, log: LossLog, correct: int, evals: list[tuple]) -> EpochResult:
        """The epoch's result once its batches are trained: the counters move on, then the test split is
        evaluated (and the validation split). Evaluations made past a divergence (the loss is checked a tick at a
        time) are dropped; the epoch's last step is always evaluated. (`seconds` is the caller's.)"""
        trained = log.losses()
        self.epoch, self.step = log.epoch, self.step + len(trained)
        scores = self.evaluate()
        evals = [e for e in evals if e[0] < self.step] + [(self.step, *scores)]
        seen = min(len(trained) * self.trial.config.training.batch_size, len(self.data.train.y))
        # on a diverged epoch predictions were counted through the end of the tick, past the rows kept: no number
        accuracy = correct / seen if log.diverged is None else float("nan")
        return EpochResult(
            log.epoch,
            trained,
            float(np.mean(trained)),
            accuracy,
            scores[0],
            scores[1],
            0.0,
            None if log.diverged is None else self.step,
            evals,
            val=scores[2:] or None,
        )

    def probe(self, step: int) -> list[tuple[int, str, str, float]]:
        """The probes (engines.probes) after step `step`, as (step, layer, measure, value); training is unchanged."""
        rows = probes.update_ratios(self.model, self.before)
        lr = self.optimizer.param_groups[0]["lr"]  # the probed step's (optimizer.lr unless scheduled)
        rows += probes.measure(self.model, *self.probe_batch, lr, self.trial.seed, step)
        return [(step, *row) for row in rows]

    def _step(self, idx: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the training examples `idx` (labels `y`); returns the loss and the logits."""
        # index_select: several times faster than advanced indexing for a CIFAR batch (docs/performance.md)
        loss, out = self.gradients(self.data.inputs(self._images(idx)), y)
        self.optimizer_step()
        return loss, out

    def _images(self, idx: torch.Tensor) -> torch.Tensor:
        """The uint8 training images `idx`, augmented as this epoch's draws say (bnbench.experiment.augment)."""
        x = self.data.train.x.index_select(0, idx)
        return x if self.draws is None else augment.apply(x, self.draws.index_select(0, idx))

    def _autograd(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Set every parameter's .grad for the batch (x, y); returns the loss and the logits."""
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        for p in self.params:  # = optimizer.zero_grad(set_to_none=True), without its per-call bookkeeping
            p.grad = None
        loss.backward()
        return loss.detach(), out.detach()  # kept for a tick: without its graph (a CNN's would hold MBs per step)

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, ...]:
        """Mean cross-entropy and accuracy on the test split, then on the validation split where the run holds one
        (test loss, test acc[, val loss, val acc]), in eval mode (BN uses its running statistics); the model's mode
        is restored, and nothing training uses (weights, BN statistics, random streams) changes: a model that
        draws in eval mode draws from the global RNGs as training left them, which are then put back, so an
        evaluation (`training.eval_every`) shifts no draw of the epoch around it."""
        training = self.model.training
        self.model.eval()
        with kept_globals(self.device):
            scores = self._scores(self.data.test) + (() if self.data.val is None else self._scores(self.data.val))
        self.model.train(training)
        return scores

    def _scores(self, split: Split) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the model as it is on `split`, in chunks."""
        x, y = split.x, split.y
        total, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for s in range(0, len(y), EVAL_CHUNK):
            out = self.model(self.data.inputs(x[s : s + EVAL_CHUNK]))
            total += F.cross_entropy(out, y[s : s + EVAL_CHUNK], reduction="sum")
            correct += (out.argmax(1) == y[s : s + EVAL_CHUNK]).sum()
        return total.item() / len(y), correct.item() / len(y)
