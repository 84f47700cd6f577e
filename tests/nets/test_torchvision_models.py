"""torchvision ResNets and VGGs: the norm swapped in through norm_layer, widths, stems, and the same-seed weights."""

import copy

import numpy as np
import pytest
import torch
import torchvision
from support.configs import tiny_config
from torch import nn

from bnbench.engines.choose import choose as choose_engine
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.experiment.seeding import derive_seed
from bnbench.nets.models import build_model, name_key
from bnbench.nets.zoo import RESNETS, VGGS

NORM_TYPES = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
DIGITS = (1, 8, 8)


def resnet(norm, seed=0, width=8, shape=DIGITS, **kw):
    cfg = ModelConfig(kind="torchvision", name="resnet18", width=width, **kw)
    return build_model(cfg, VariantConfig(name=norm, norm=norm), shape, 10, seed)


def vgg(norm, seed=0):
    cfg = ModelConfig(kind="torchvision", name="vgg11", width=8)
    return build_model(cfg, VariantConfig(name=norm, norm=norm), (3, 32, 32), 10, seed)


def shared(model):
    """name -> tensor of every parameter outside the norm layers."""
    norms = {n for n, m in model.named_modules() if isinstance(m, NORM_TYPES)}
    return {n: p for n, p in model.named_parameters() if n.rpartition(".")[0] not in norms}


def test_model_tables_match_the_config_names():
    from bnbench.experiment import model_variants

    assert tuple(RESNETS) == model_variants.RESNETS and tuple(VGGS) == model_variants.VGGS


@pytest.mark.parametrize(
    "norm, layer",
    [("batchnorm", nn.BatchNorm2d), ("groupnorm", nn.GroupNorm), ("layernorm", nn.GroupNorm), ("none", nn.Identity)],
)
def test_resnet_takes_the_norm_through_norm_layer(norm, layer):
    model = resnet(norm)
    for name in ("bn1", "layer1.0.bn2", "layer2.0.downsample.1", "layer4.1.bn1"):
        assert type(model.get_submodule(name)) is layer
    if norm == "layernorm":
        assert model.layer4[1].bn1.num_groups == 1
    assert model(torch.rand(3, *DIGITS)).shape == (3, 10)
    assert (model.conv1.in_channels, model.conv1.kernel_size, model.conv1.stride) == (1, (3, 3), (1, 1))
    assert isinstance(model.maxpool, nn.Identity) and model.fc.in_features == 64  # width 8: stages 8..64


def test_width_64_with_the_imagenet_stem_is_torchvisions_resnet18():
    ours = resnet("batchnorm", width=64, shape=(3, 64, 64), stem="imagenet")
    theirs = torchvision.models.resnet18(num_classes=10)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]
    assert str(ours).replace("_ScaledResNet", "ResNet", 1) == str(theirs)


def test_resnet_shared_weights_are_identical_across_norms_and_differ_by_seed():
    reference = shared(resnet("none", seed=5))
    assert "conv1.weight" in reference and "layer2.0.downsample.0.weight" in reference and len(reference) == 22
    torch.manual_seed(0)
    for norm in ("batchnorm", "groupnorm", "layernorm"):
        torch.rand(100)  # what the global RNG did before must not matter
        other = shared(resnet(norm, seed=5))
        assert other.keys() == reference.keys()
        assert all(torch.equal(other[k], reference[k]) for k in reference)
    again = shared(resnet("none", seed=6))
    assert not any(torch.equal(again[k], reference[k]) for k in reference)


def test_init_is_pytorchs_default_for_each_layer_seeded_by_its_name():
    """The claim of models.reset_by_name: each layer equals a fresh reset_parameters() under the global RNG seeded
    by (seed, "init", its name), so U(+-1/sqrt(fan_in)) (not ResNet's own kaiming_normal fan_out)."""
    model = resnet("batchnorm", seed=3)
    for name in ("conv1", "layer3.0.downsample.0", "layer4.1.conv2", "fc"):
        layer = model.get_submodule(name)
        fresh = copy.deepcopy(layer)
        torch.manual_seed(derive_seed(3, "init", name_key(name)))
        fresh.reset_parameters()
        assert torch.equal(fresh.weight, layer.weight)
        bound = 1 / layer.weight[0].numel() ** 0.5
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    assert torch.equal(model.bn1.weight, torch.ones(8)) and not model.bn1.bias.any()


def test_vgg_pair_shares_its_weights_and_only_bn_differs():
    plain, bn = vgg("none"), vgg("batchnorm")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 8
    assert shared(plain).keys() == shared(bn).keys()
    assert all(torch.equal(shared(plain)[k], shared(bn)[k]) for k in shared(plain))
    assert not torch.equal(vgg("none", seed=1).features[0].weight, plain.features[0].weight)
    assert plain(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_vgg_at_width_64_has_torchvisions_layers():
    from bnbench.nets.zoo import create

    with torch.device("meta"):
        ours = create(ModelConfig(kind="torchvision", name="vgg11"), VariantConfig(name="bn"), None, (3, 32, 32), 10)
        theirs = torchvision.models.vgg11_bn(num_classes=10)
    assert str(ours) == str(theirs)


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"model": {"kind": "torchvision", "name": "vgg11"}, "variants": [{"name": "g", "norm": "groupnorm"}]},
            "vgg11 cannot take norm: groupnorm; it takes none, batchnorm",
        ),
        ({"model": {"kind": "torchvision", "name": "alexnet"}}, "is not a torchvision model bnbench builds"),
        (
            {
                "model": {"kind": "torchvision", "name": "resnet18"},
                "variants": [{"name": "a", "placement": "after_activation"}],
            },
            "placement is for the mlp and cnn",
        ),
        ({"model": {"kind": "mlp", "name": "resnet18"}}, "model.name is for model.kind: torchvision"),
    ],
)
def test_torchvision_config_mistakes(raw, message):
    with pytest.raises(ValueError, match=message):
        Config(name="x", **raw)


def test_inputs_too_small_are_one_line():
    with pytest.raises(BnbenchError, match="vgg11 max-pools five times and needs inputs of at least 32x32"):
        build_model(ModelConfig(kind="torchvision", name="vgg11", width=8), VariantConfig(name="b"), DIGITS, 10, 0)
    with pytest.raises(BnbenchError, match="resnet18 cannot train on 1x8x8 inputs with norm: instancenorm"):
        resnet("instancenorm")
    with pytest.raises(BnbenchError, match="makes 237,509,382,154 parameters"):
        build_model(
            ModelConfig(kind="torchvision", name="resnet152", width=4096), VariantConfig(name="b"), (3, 32, 32), 10, 0
        )


@pytest.mark.slow
def test_resnet_trains_on_digits_and_a_stacked_request_runs_eager(run_config, tmp_path):
    config = tiny_config(
        "tv",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 1, "batch_size": 32, "log_every": 0, "engine": "stacked"},
        model={"kind": "torchvision", "name": "resnet18", "width": 4},
        variants=[
            {"name": "bn", "norm": "batchnorm"},
            {"name": "gn", "norm": "groupnorm", "groups": 2},
            {"name": "plain", "norm": "none"},
        ],
    )
    assert choose_engine(Config(**config), torch.device("cpu")) == "eager"
    run_dir, _ = run_config(config, tmp_path / "out")
    rows = [line.split(",") for line in (run_dir / "epochs.csv").read_text().splitlines()[1:]]
    assert {r[0] for r in rows} == {"bn", "gn", "plain"}
    assert max(float(r[6]) for r in rows) > 0.5  # test_acc after one epoch of 45 steps, far above chance


@pytest.mark.slow
def test_vgg_pair_trains_on_tiny_images(run_config, tmp_path):
    """A 32x32 two-class image folder (red vs blue, noisy): vgg11_bn at width 4 fits it in 24 steps (train loss
    below 0.01 in its third epoch, seeds 0-2 alike; in eval mode its running statistics need a few epochs more);
    vgg11 trains alongside (finite losses) but, 11 layers deep without BN, is still at chance (loss ~ln 2)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 64), ("test", 16)):
        for label, channel in (("blue", 2), ("red", 0)):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
                pixels[..., channel] += 120
                Image.fromarray(pixels).save(tmp_path / "data" / split / label / f"{i}.png")
    config = {
        "name": "vgg",
        "seeds": [0],
        "dataset": {"name": "imagefolder", "root": str(tmp_path / "data")},
        "device": "cpu",
        "model": {"kind": "torchvision", "name": "vgg11", "width": 4},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "training": {"epochs": 3, "batch_size": 16, "log_every": 0},
    }
    run_dir, _ = run_config(config, tmp_path / "out")
    rows = [line.split(",") for line in (run_dir / "epochs.csv").read_text().splitlines()[1:]]
    last = {r[0]: r for r in rows if r[2] == "3"}
    assert last.keys() == {"batchnorm", "plain"}
    assert float(last["batchnorm"][3]) < 0.01 and float(last["batchnorm"][4]) == 1.0 and float(last["plain"][3]) > 0.6
    assert all(np.isfinite(float(r[3])) for r in rows)
