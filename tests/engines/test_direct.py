"""The hand-written MLP backward pass equals autograd bit for bit, and is used only where it applies."""

import pytest
import torch
import torch.nn.functional as F

from bnbench.engines.direct import DirectGradients, supported
from bnbench.engines.fast_optim import fast_step, make_optimizer
from bnbench.experiment.config import OptimizerConfig
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.nets.models import build_model

VARIANTS = [
    VariantConfig(name="before", norm="batchnorm", placement="before_activation"),
    VariantConfig(name="after", norm="batchnorm", placement="after_activation"),
    VariantConfig(name="plain", norm="none"),
]


def autograd_gradients(model):
    def gradients(x, y):
        out = model(x)
        loss = F.cross_entropy(out, y)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        return loss.detach(), out.detach()

    return gradients


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
@pytest.mark.parametrize("hidden", [[16, 8], [12], []], ids=str)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_direct_gradients_equal_autograd_bitwise(variant, hidden, optimizer):
    models = [build_model(ModelConfig(hidden=hidden), variant, (3, 6, 6), 10, seed=3) for _ in "ab"]
    cfg = OptimizerConfig(name=optimizer, lr=3e-2)
    runs = [
        (autograd_gradients(models[0]), fast_step(make_optimizer(cfg, models[0].parameters()))),
        (DirectGradients(models[1]), fast_step(make_optimizer(cfg, models[1].parameters()))),
    ]
    g = torch.Generator().manual_seed(0)
    for step in range(25):
        x = torch.randint(0, 256, (7, 3, 6, 6), dtype=torch.uint8, generator=g).float().div_(255)
        y = torch.randint(0, 10, (7,), generator=g)
        (loss_a, out_a), (loss_b, out_b) = [gradients(x, y) for gradients, _ in runs]
        assert torch.equal(loss_a, loss_b) and torch.equal(out_a, out_b), f"step {step}"
        for pa, pb in zip(models[0].parameters(), models[1].parameters()):
            assert torch.equal(pa.grad, pb.grad), f"step {step}"
        for _, optimizer_step in runs:
            optimizer_step()
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), name  # weights, BN running statistics and num_batches_tracked
    assert not any(p.requires_grad for p in (loss_b, out_b))


def test_direct_gradients_apply_to_the_mlp_on_the_cpu_only():
    mlp = build_model(ModelConfig(hidden=[8]), VARIANTS[0], (1, 8, 8), 10, seed=0)
    cnn = build_model(ModelConfig(kind="cnn", channels=[4], hidden=[8]), VARIANTS[0], (1, 8, 8), 10, seed=0)
    assert supported(mlp, torch.device("cpu"))
    assert not supported(mlp, torch.device("cuda"))  # cuDNN's BN kernels are not native_batch_norm's
    assert not supported(cnn, torch.device("cpu"))
    mlp[2].momentum = None  # a cumulative moving average: BatchNorm1d's own bookkeeping, not reproduced here
    assert not supported(mlp, torch.device("cpu"))
