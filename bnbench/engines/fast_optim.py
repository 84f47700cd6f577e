"""The optimizer a trainer steps, and its step without torch's per-call wrappers (`fast_step`): the fast
paths into torch internals, in one place. The arithmetic is `optimizer.step()`'s (tests/engines/test_train.py,
test_direct.py)."""

import inspect
import sys
from typing import Callable

import torch

from bnbench.experiment.config import OptimizerConfig


def _skip_dynamo_import() -> None:
    """Spare every run (and every --jobs worker) the slow import of torch._dynamo (docs/performance.md).

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
    params = param_groups(cfg, list(params))
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[cfg.name]
    kwargs = {"lr": cfg.lr}
    if cfg.weight_decay is not None:
        kwargs["weight_decay"] = cfg.weight_decay
    if cfg.name == "sgd":
        kwargs["momentum"] = cfg.momentum
        kwargs["nesterov"] = cfg.nesterov
    elif capturable:
        kwargs["capturable"] = True
    try:  # fused: the whole update in one kernel; foreach where the device has no fused kernel
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return cls(params, foreach=True, **kwargs)


def param_groups(cfg: OptimizerConfig, params: list[torch.nn.Parameter]) -> list:
    """`params` as one group, or with `optimizer.norm_decay: false` as two: the weights of convolutions and linear
    layers, decayed, then every 1-d parameter (norm layers' scales and shifts, biases) with weight_decay 0, the rule
    of timm's `param_groups_weight_decay` (torchvision's reference recipe leaves out norm layers and, optionally,
    biases). Views of stacked parameters keep their trial's shape, so the stacked engine groups alike."""
    if cfg.norm_decay:
        return params
    groups = [{"params": [p for p in params if p.ndim > 1]}, {"params": [p for p in params if p.ndim <= 1]}]
    groups[1]["weight_decay"] = 0.0
    return [g for g in groups if g["params"]]


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
    ten 0-d tensors is slower: docs/performance.md); they are re-made whenever the state holds other tensors (a
    loaded state dict). Each parameter group (two with `optimizer.norm_decay: false`) is one kernel call with its
    own hyperparameters, as torch's step makes it. Any other optimizer or setting calls `plain_step`.
    """
    if not (isinstance(optimizer, torch.optim.Adam) and all(_fusable(g) for g in optimizer.param_groups)):
        return plain_step(optimizer)
    params, spans = [], []  # spans: per group, (its kernel, its first and last+1 index into params)
    for group in optimizer.param_groups:
        kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
        spans.append((kernel, len(params), len(params) + len(group["params"])))
        params += group["params"]

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
        # the groups as they are now: a schedule sets their lr, and load_state_dict replaces their dicts
        for group, (kernel, first, end) in zip(optimizer.param_groups, spans):
            beta1, beta2 = group["betas"]
            kernel(
                group["params"],
                [p.grad for p in group["params"]],
                [s["exp_avg"] for s in states[first:end]],
                [s["exp_avg_sq"] for s in states[first:end]],
                [],
                views[first:end],
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    return step


def _fusable(group: dict) -> bool:
    """A fused Adam/AdamW group whose step is `_fused_adam`'s plain case (a float lr, no amsgrad and the like)."""
    return bool(group.get("fused")) and not (
        group["amsgrad"]
        or group["maximize"]
        or group["capturable"]
        or group["differentiable"]
        or isinstance(group["lr"], torch.Tensor)
    )
