"""Why a norm helps, measured while a trial trains (`training.probe_every`): per layer, what its activations and
gradients look like, and for the whole model how smooth the loss is along the gradient (Santurkar et al. 2018,
"How Does Batch Normalization Help Optimization?", Sec. 2.1 and 3.2).

Every measure is taken on one fixed probe batch per trial (`batch_indices`: drawn once from the training split
with a generator seeded by (seed, "probe"), so every variant of a seed sees the same examples), on a deep copy of
the model in training mode: the trained model's weights, gradients, BatchNorm statistics and optimizer state are
never touched, and the global RNGs are put back (`seeding.kept_globals`), so training with probes is bitwise
training without them. Inside a probe every forward draws from the RNGs seeded by (seed, "probe", step), so a
model with dropout draws the same masks in each of the probe's forwards.

Probed layers (`layers`): every Linear and Conv2d but the last weighted layer (the classifier), i.e. the layers
that carry a norm in the built-in norm variants, labelled by type and rank ("linear1", "conv2"): the rank is what
names a layer alike in every variant (a norm layer shifts the Sequential's indices).
"""

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from bnbench.experiment.seeding import generator, kept_globals, seed_globals

STEP_SIZES = tuple(2 ** (-1 + 3 * k / 4) for k in range(5))  # times the lr: 0.5 to 4, geometric (Santurkar Fig. 4)
Row = tuple[str, str, float]  # (layer, measure, value); layer "model" for the whole-model measures


def batch_indices(n: int, seed: int, size: int) -> torch.Tensor:
    """The probe batch: `size` training examples (all of them if fewer), the same for every variant of `seed`."""
    return torch.randperm(n, generator=generator(seed, "probe"))[:size]


def layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The probed layers, labelled by type and rank among the Linear/Conv2d layers (see the module's docstring)."""
    weighted = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]
    return [(f"{'conv' if isinstance(m, nn.Conv2d) else 'linear'}{i}", m) for i, m in enumerate(weighted, 1)]


def weights(model: nn.Module) -> list[torch.Tensor]:
    """The probed layers' weights as they are now: taken before the step that `update_ratios` measures."""
    return [m.weight.detach().clone() for _, m in layers(model)]


def update_ratios(model: nn.Module, before: list[torch.Tensor]) -> list[Row]:
    """||W - W_before|| / ||W_before|| per probed layer: the size of the optimizer's real step relative to the
    weights (training's own step; nothing is computed on the model)."""
    return [
        (label, "update_ratio", float((m.weight.detach() - w).norm() / w.norm()))
        for (label, m), w in zip(layers(model), before)
    ]


def measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, seed: int, step: int) -> list[Row]:
    """The probe of `model` at its current weights W on the batch (x, y): per layer, activation statistics,
    gradient norm and internal covariate shift; for the model, the loss and gradient along -g (g = the gradient
    of the cross-entropy at W) at the step sizes `STEP_SIZES` x `lr`."""
    probe = _Probe(model, x, y, seed, step, x.device)
    with kept_globals(x.device):
        rows = probe.activations()
        loss, g = probe.gradient(probe.start)
        rows += [(label, "grad_norm", _norm([g[i]])) for label, i in probe.weight_index]
        rows += probe.covariate_shift(g, lr)
        rows += probe.smoothness(float(loss), g, lr)
    return rows


class _Probe:
    """The deep copy a probe works on, and its parameters' starting values."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, step: int, device):
        self.model = copy.deepcopy(model).train()
        self.params = list(self.model.parameters())
        self.start = [p.detach().clone() for p in self.params]
        self.layers = layers(self.model)
        ids = {id(p): i for i, p in enumerate(self.params)}
        self.weight_index = [(label, ids[id(m.weight)]) for label, m in self.layers]
        self.x, self.y, self.seed, self.step = x, y, seed, step

    def loss(self) -> torch.Tensor:
        seed_globals(self.seed, "probe", self.step)  # the same dropout masks in every forward of this probe
        return F.cross_entropy(self.model(self.x), self.y)

    @torch.no_grad()
    def load(self, values: list[torch.Tensor]) -> None:
        for p, v in zip(self.params, values):
            p.copy_(v)

    def gradient(self, values: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The loss and its gradient (every parameter) with the parameters set to `values`."""
        self.load(values)
        loss = self.loss()
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        return loss.detach(), [torch.zeros_like(p) if d is None else d for p, d in zip(self.params, grads)]

    def activations(self) -> list[Row]:
        """Per layer: mean and std of its outputs (all units and positions of the batch: the pre-normalisation
        activations), and the fraction of dead units after the first ReLU module that follows it (before the next
        probed layer): units (features; channels for a conv) that are zero for every example and position."""
        seen: dict[str, torch.Tensor] = {}

        def keep(key: str):  # a module's first output (cloned: an in-place ReLU may overwrite it later)
            return lambda _module, _inputs, out: seen.setdefault(key, out.detach().clone())

        hooks = []
        modules = list(self.model.modules())
        for label, m in self.layers:
            hooks.append(m.register_forward_hook(keep(label)))
            relu = _relu_after(modules, m)
            if relu is not None:
                hooks.append(relu.register_forward_hook(keep(label + "/")))
        with torch.no_grad():
            self.loss()
        for hook in hooks:
            hook.remove()
        rows = []
        for label, _ in self.layers:
            out = seen[label].float()
            rows += [(label, "act_mean", float(out.mean())), (label, "act_std", float(out.std()))]
            if label + "/" in seen:
                alive = seen[label + "/"].transpose(0, 1).flatten(1).ne(0).any(1)
                rows.append((label, "dead_fraction", float(1 - alive.float().mean())))
        return rows

    def covariate_shift(self, g: list[torch.Tensor], lr: float) -> list[Row]:
        """Santurkar's ICS (Def. 2.1), per layer: the change of its weight's gradient G when every parameter before
        it (in the model's parameter order) takes the step -lr * g first: ||G - G'|| and cos(G, G'). (None for a
        layer that no parameter precedes: its G' is G.)"""
        rows = []
        for label, i in [(label, i) for label, i in self.weight_index if i > 0]:
            moved = [w - lr * d if j < i else w for j, (w, d) in enumerate(zip(self.start, g))]
            shifted = self.gradient(moved)[1][i]
            cos = float(F.cosine_similarity(g[i].flatten(), shifted.flatten(), dim=0, eps=1e-30))
            rows += [(label, "ics_l2", _norm([g[i] - shifted])), (label, "ics_cos", cos)]
        return rows

    def smoothness(self, loss: float, g: list[torch.Tensor], lr: float) -> list[Row]:
        """Santurkar Sec. 3.2: along -g, for each step size eta, the loss L(W - eta g) (its range: the "loss
        variation"), the gradient change ||g - grad L(W - eta g)|| (its range: "gradient predictiveness") and
        the largest ratio ||g - grad L(W - eta g)|| / ||eta g|| (the "effective beta-smoothness")."""
        losses, changes, betas = [], [], []
        size = _norm(g)
        for eta in (lr * s for s in STEP_SIZES):
            moved_loss, moved = self.gradient([w - eta * d for w, d in zip(self.start, g)])
            change = _norm([a - b for a, b in zip(g, moved)])
            losses.append(float(moved_loss))
            changes.append(change)
            betas.append(change / (eta * size) if size > 0 else float("nan"))
        return [
            ("model", "loss", loss),
            ("model", "grad_norm", size),
            ("model", "loss_min", min(losses)),
            ("model", "loss_max", max(losses)),
            ("model", "grad_change_min", min(changes)),
            ("model", "grad_change_max", max(changes)),
            ("model", "beta_smoothness", max(betas)),
        ]


def _relu_after(modules: list[nn.Module], layer: nn.Module) -> Optional[nn.Module]:
    """The first ReLU module after `layer` in the module order, if one comes before the next Linear/Conv2d."""
    for m in modules[modules.index(layer) + 1 :]:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            return None
        if isinstance(m, nn.ReLU):
            return m
    return None


def _norm(tensors: list[torch.Tensor]) -> float:
    """The l2 norm of the tensors taken as one vector."""
    return float(torch.sqrt(sum(t.double().pow(2).sum() for t in tensors)))
