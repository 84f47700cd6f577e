"""Model structure (BN1d vs BN2d, placement) and the same-seed guarantee."""

import torch
from torch import nn

from bnbench.engines.eager import Trainer
from bnbench.experiment.config import Config
from bnbench.experiment.data import load_dataset
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.experiment.trials import expand
from bnbench.nets.models import build_model, weighted_layers

BN = VariantConfig(name="bn", norm="batchnorm")
AFTER = VariantConfig(name="after", norm="batchnorm", placement="after_activation")
PLAIN = VariantConfig(name="plain", norm="none")
CIFAR = (3, 32, 32)


def kinds(model):
    return [type(m).__name__ for m in model]


def test_tutorial_mlp_layout():
    model = build_model(ModelConfig(), BN, CIFAR, 10, seed=42)
    assert kinds(model) == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert [(m.in_features, m.out_features) for m in weighted_layers(model)] == [(3072, 64), (64, 32), (32, 10)]
    assert kinds(build_model(ModelConfig(), PLAIN, CIFAR, 10, 42)) == [
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert kinds(build_model(ModelConfig(), AFTER, CIFAR, 10, 42))[1:4] == ["Linear", "ReLU", "BatchNorm1d"]


def test_cnn_uses_bn2d_after_convs_and_bn1d_in_the_head():
    model = build_model(ModelConfig(kind="cnn", channels=[8, 16], hidden=[32]), BN, CIFAR, 10, seed=0)
    assert kinds(model) == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
    ]
    assert model[9].in_features == 16 * 8 * 8
    assert model(torch.rand(4, *CIFAR)).shape == (4, 10)
    after = build_model(ModelConfig(kind="cnn", channels=[8], hidden=[]), AFTER, (1, 8, 8), 3, 0)
    assert kinds(after) == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Flatten", "Linear"]


def test_input_size_comes_from_the_data():
    model = build_model(ModelConfig(), BN, (1, 8, 8), 10, seed=0)
    assert weighted_layers(model)[0].in_features == 64


def test_init_follows_pytorch_default_distribution():
    first = weighted_layers(build_model(ModelConfig(), PLAIN, CIFAR, 10, seed=3))[0]
    bound = 1 / 3072**0.5
    assert first.weight.abs().max() <= bound and first.weight.abs().max() > 0.99 * bound
    assert abs(first.weight.std().item() - bound / 3**0.5) < 1e-4  # U(-b, b) has std b/sqrt(3)


def test_shared_layers_start_identical_whatever_the_rng_did():
    for cfg in (ModelConfig(), ModelConfig(kind="cnn", channels=[4, 8], hidden=[16])):
        torch.manual_seed(1)
        reference = weighted_layers(build_model(cfg, PLAIN, CIFAR, 10, seed=42))
        for variant in (BN, AFTER):
            torch.rand(1000)  # a variant drawing from the global RNG must not shift anything
            for a, b in zip(reference, weighted_layers(build_model(cfg, variant, CIFAR, 10, seed=42))):
                assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
        other = weighted_layers(build_model(cfg, PLAIN, CIFAR, 10, seed=43))
        assert not torch.equal(reference[0].weight, other[0].weight)


def test_bn_layers_start_at_identity():
    model = build_model(ModelConfig(), BN, CIFAR, 10, seed=0)
    for m in model:
        if isinstance(m, nn.BatchNorm1d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))


def test_variants_see_identical_batches_in_every_epoch(monkeypatch):
    config = Config(
        name="t",
        seeds=[5],
        dataset={"name": "digits"},
        device="cpu",
        variants=[BN, AFTER, PLAIN],
        training={"epochs": 2, "batch_size": 32, "log_every": 0},
    )
    data = load_dataset(config.dataset)
    seen = {}
    original = Trainer._step

    def record(self, idx, correct):
        seen.setdefault(self.trial.variant.name, []).append(idx.clone())
        return original(self, idx, correct)

    monkeypatch.setattr(Trainer, "_step", record)
    for trial in reversed(expand(config)):  # run order must not matter
        torch.manual_seed(trial.index)
        trainer = Trainer(trial, data, torch.device("cpu"))
        trainer.train_epoch()
        trainer.train_epoch()
    orders = {name: torch.cat(batches) for name, batches in seen.items()}
    n = len(data.train.y)
    assert len(orders["plain"]) == 2 * n  # every example once per epoch
    assert torch.equal(orders["bn"], orders["plain"]) and torch.equal(orders["after"], orders["plain"])
    assert not torch.equal(orders["plain"][:n], orders["plain"][n:])  # reshuffled each epoch
    assert torch.equal(orders["plain"][:n].sort().values, torch.arange(n))
