"""Norm kinds in the built-in MLP and CNN, their same-seed weights, and the engines that cannot train them."""

import math

import pytest
import torch
from support.configs import tiny_config
from torch import nn

from bnbench.engines.choose import choose as choose_engine
from bnbench.engines.choose import note as engine_note
from bnbench.engines.direct import supported
from bnbench.engines.eager import Trainer
from bnbench.experiment.config import Config
from bnbench.experiment.data import load_dataset
from bnbench.experiment.loading import load_config
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.experiment.seeding import generator
from bnbench.experiment.trials import expand
from bnbench.nets.models import build_model, weighted_layers
from bnbench.nets.norms import groups

CPU = torch.device("cpu")
CNN = ModelConfig(kind="cnn", channels=[8, 16], hidden=[24])


def variant(norm, **kw):
    return VariantConfig(name=norm, norm=norm, **kw)


def kinds(model):
    return [type(m).__name__ for m in model if not isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.Flatten))]


@pytest.mark.parametrize(
    "norm, conv, dense",
    [
        ("batchnorm", "BatchNorm2d", "BatchNorm1d"),
        ("layernorm", "GroupNorm", "LayerNorm"),
        ("groupnorm", "GroupNorm", "GroupNorm"),
        ("instancenorm", "InstanceNorm2d", None),
        ("none", None, None),
    ],
)
def test_each_norm_takes_the_right_layer_in_the_cnn(norm, conv, dense):
    model = build_model(CNN, variant(norm), (3, 32, 32), 10, seed=0)
    expected = ["Conv2d", conv, "Conv2d", conv, "Linear", dense, "Linear"]
    assert kinds(model) == [k for k in expected if k]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    norms = [m for m in model if type(m).__name__ in (conv, dense)]
    if norm == "layernorm":  # conv features: GroupNorm(1, C), statistics over (C, H, W) of each example
        assert (norms[0].num_groups, norms[0].num_channels) == (1, 8)
        assert norms[2].normalized_shape == (24,)
    if norm == "instancenorm":
        assert norms[0].affine and not norms[0].track_running_stats


@pytest.mark.parametrize(
    "norm, layer", [("batchnorm", nn.BatchNorm1d), ("layernorm", nn.LayerNorm), ("groupnorm", nn.GroupNorm)]
)
def test_mlp_norms_follow_each_hidden_linear_in_either_placement(norm, layer):
    for placement, order in (
        ("before_activation", [nn.Linear, layer, nn.ReLU]),
        ("after_activation", [nn.Linear, nn.ReLU, layer]),
    ):
        model = build_model(ModelConfig(hidden=[64, 32]), variant(norm, placement=placement), (1, 8, 8), 10, 0)
        assert [type(m) for m in model][1:4] == order
        assert sum(isinstance(m, layer) for m in model) == 2


def test_groups_default_to_32_clipped_to_a_divisor():
    assert [groups(variant("groupnorm"), w) for w in (64, 32, 48, 24, 7)] == [32, 32, 24, 24, 7]
    assert [groups(variant("groupnorm", groups=8), w) for w in (64, 12, 5)] == [8, 6, 5]
    model = build_model(CNN, variant("groupnorm", groups=4), (3, 32, 32), 10, 0)
    assert [m.num_groups for m in model if isinstance(m, nn.GroupNorm)] == [4, 4, 4]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"variants": [{"name": "i", "norm": "instancenorm"}]}, "instancenorm normalises each channel over its image"),
        ({"variants": [{"name": "b", "norm": "batchnorm", "groups": 4}]}, "groups is for norm: groupnorm"),
        ({"model": {"hidden": []}, "variants": [{"name": "l", "norm": "layernorm"}]}, "no hidden layer to normalise"),
    ],
)
def test_norm_mistakes_are_config_errors(raw, message):
    with pytest.raises(ValueError, match=message):
        Config(name="x", **raw)


def test_builtin_weights_are_the_rank_scheme_in_every_norm():
    """Every result made before issue 13 keeps its initial weights: layer i drawn from generator(seed, "init", i),
    U(+-1/sqrt(fan_in)) for weight then bias; and all norm kinds share them."""
    for cfg in (ModelConfig(hidden=[64, 32]), CNN):
        reference = []
        for i, layer in enumerate(weighted_layers(build_model(cfg, variant("none"), (3, 32, 32), 10, seed=7))):
            g, bound = generator(7, "init", i), 1 / math.sqrt(layer.weight[0].numel())
            weight = torch.empty_like(layer.weight).uniform_(-bound, bound, generator=g)
            reference.append((weight, torch.empty_like(layer.bias).uniform_(-bound, bound, generator=g)))
        for norm in ("none", "batchnorm", "layernorm", "groupnorm") + (("instancenorm",) if cfg.kind == "cnn" else ()):
            layers = weighted_layers(build_model(cfg, variant(norm), (3, 32, 32), 10, seed=7))
            assert all(torch.equal(m.weight, w) and torch.equal(m.bias, b) for m, (w, b) in zip(layers, reference))


def test_norm_layers_start_at_scale_1_shift_0():
    for norm in ("batchnorm", "layernorm", "groupnorm", "instancenorm"):
        for m in build_model(CNN, variant(norm), (3, 32, 32), 10, seed=3):
            if hasattr(m, "weight") and not isinstance(m, (nn.Conv2d, nn.Linear)):
                assert torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any()


def test_direct_backward_and_stacked_fall_back_for_other_norms():
    """The hand-written MLP backward knows Linear, ReLU and BatchNorm1d only; the stacked engine only BN and none:
    a LayerNorm MLP trains with autograd, and a stacked run of it with the eager engine, saying why."""
    config = Config(
        name="x",
        dataset={"name": "digits"},
        device="cpu",
        model={"hidden": [16]},
        variants=[variant("layernorm"), variant("none")],
        training={"engine": "stacked"},
    )
    model = build_model(config.model, config.variants[0], (1, 8, 8), 10, 0)
    assert not supported(model, CPU)
    assert supported(build_model(config.model, variant("batchnorm"), (1, 8, 8), 10, 0), CPU)
    trainer = Trainer(expand(config)[0], load_dataset(config.dataset), CPU)
    assert trainer.gradients == trainer._autograd
    assert choose_engine(config, CPU) == "eager"
    assert engine_note(config, "stacked") == "stacked -> eager: stacked trains norm: batchnorm and none, not layernorm"
    bn = config.model_copy(update={"variants": [variant("batchnorm"), variant("none")]})
    assert choose_engine(bn, CPU) == "stacked" and engine_note(bn, "stacked") is None


@pytest.mark.parametrize("norm", ["layernorm", "groupnorm", "instancenorm"])
def test_a_cnn_with_each_norm_learns_digits(run_config, tmp_path, norm):
    """One epoch on digits: every norm kind trains (test accuracy far above chance), in eval mode too."""
    config = tiny_config(
        f"n-{norm}",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 2, "batch_size": 16, "log_every": 0},
        model={"kind": "cnn", "channels": [8, 16], "hidden": [32]},
        variants=[{"name": norm, "norm": norm, **({"groups": 4} if norm == "groupnorm" else {})}],
    )
    run_dir, _ = run_config(config, tmp_path / "out")
    last = (run_dir / "epochs.csv").read_text().splitlines()[-1].split(",")
    assert float(last[6]) > 0.8  # test_acc


def test_shipped_norm_experiments_are_what_the_docs_say():  # docs/configuration.md, docs/tutorial.md
    norms, batch, resnet = (load_config(name)[0] for name in ("norms", "batchsize", "resnet"))
    assert [v.norm for v in norms.variants] == ["none", "batchnorm", "layernorm", "groupnorm"]
    assert len(norms.seeds) >= 5 and norms.model.kind == "cnn"
    assert batch.sweep == {"training.batch_size": [2, 4, 10, 32, 128]} and len(batch.seeds) >= 5
    assert {v.norm for v in batch.variants} == {"none", "batchnorm", "groupnorm"}
    assert (resnet.model.name, resnet.model.width, resnet.model.stem) == ("resnet18", 64, "cifar")
    assert {v.norm for v in resnet.variants} == {"none", "batchnorm", "groupnorm"} and len(resnet.seeds) >= 3
