"""The optimizer `make_optimizer` builds for the recipe options: `norm_decay: false` decays no 1-d parameter,
`nesterov` is torch's, and the fused fast step over two parameter groups is `optimizer.step()` to the bit
(tests/engines/test_train.py has the one-group case)."""

import io

import pytest
import torch

from bnbench.engines.fast_optim import fast_step, make_optimizer
from bnbench.experiment.config import OptimizerConfig
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.nets.models import build_model


def cnn() -> torch.nn.Module:
    """Conv, BatchNorm2d and Linear layers: weights of 4 and 2 dimensions, BN scales and shifts, biases."""
    return build_model(ModelConfig(kind="cnn", channels=[4], hidden=[8]), VariantConfig(name="bn"), (1, 8, 8), 10, 0)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_without_norm_decay_a_zero_gradient_step_decays_only_the_weights(name):
    """SGD: w - lr (0 + wd w); AdamW: w (1 - lr wd), each on the >1-d weights only. The 1-d parameters (BN scale
    and shift, biases) would shrink by the same factor with norm_decay true."""
    for norm_decay in (False, True):
        model = cnn()
        before = {k: p.detach().clone() for k, p in model.named_parameters()}
        cfg = OptimizerConfig(name=name, lr=0.1, momentum=0, weight_decay=0.5, norm_decay=norm_decay)
        optimizer = make_optimizer(cfg, model.parameters())
        assert len(optimizer.param_groups) == 2 - norm_decay
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        fast_step(optimizer)()
        for key, p in model.named_parameters():
            if norm_decay or p.ndim > 1:
                torch.testing.assert_close(p.detach(), before[key] * (1 - 0.05), rtol=1e-6, atol=0)
            else:
                assert torch.equal(p.detach(), before[key]), key
    assert {k for k, p in model.named_parameters() if p.ndim <= 1} >= {"1.weight", "1.bias", "0.bias"}


def test_nesterov_is_torchs_step():
    """A first step with momentum 0.9 and a gradient g: the buffer is g, and Nesterov steps by g + 0.9 g."""
    model = cnn()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = make_optimizer(OptimizerConfig(name="sgd", lr=0.1, nesterov=True), model.parameters())
    assert optimizer.param_groups[0]["nesterov"] is True
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    fast_step(optimizer)()
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b - 0.1 * 1.9, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fast_step_over_two_groups_is_bitwise_optimizer_step(name):
    cfg = OptimizerConfig(name=name, lr=1e-2, weight_decay=0.05, norm_decay=False)
    models = [cnn() for _ in "ab"]
    optimizers = [make_optimizer(cfg, m.parameters()) for m in models]
    steps = [optimizers[0].step, fast_step(optimizers[1])]
    g = torch.Generator().manual_seed(0)
    for i in range(12):
        if i == 6:  # a resume: the state the fast step keeps its counters in is replaced under it
            saved = io.BytesIO()
            torch.save(optimizers[1].state_dict(), saved)
            optimizers[1].load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
        for group in (o.param_groups[j] for o in optimizers for j in (0, 1)):
            group["lr"] = 1e-2 / (i + 1)  # a schedule sets every group's lr before the step
        x, y = torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
        for model, step in zip(models, steps):
            for p in model.parameters():
                p.grad = None
            torch.nn.functional.cross_entropy(model(x), y).backward()
            step()
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)
    assert [len(o.param_groups) for o in optimizers] == [2, 2]
    assert all(int(s["step"]) == 12 for s in optimizers[1].state.values())
