"""timm models (`model.kind: timm`) and the plain-function norm_layer that factories and model zoos get."""

import sys
import textwrap

import pytest
import torch
from support.configs import tiny_config
from torch import nn
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config, describe_model
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.nets.models import build_model
from bnbench.nets.norms import norm_layer_for

timm = pytest.importorskip("timm")

DIGITS = (1, 8, 8)
SMALL = {"channels": [8, 16, 32, 64], "stem_width": 8}  # resnet10t at 1/8 of its width: 80k parameters
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
VARIANTS = [
    {"name": "bn", "norm": "batchnorm"},
    {"name": "gn", "norm": "groupnorm", "groups": 4},
    {"name": "ln", "norm": "layernorm"},
    {"name": "plain", "norm": "none"},
]


def resnet(norm, seed=0, name="resnet10t", **kwargs):
    cfg = ModelConfig(kind="timm", name=name, kwargs=SMALL | kwargs)
    variant = VariantConfig(name=norm, norm=norm, groups=4 if norm == "groupnorm" else None)
    return build_model(cfg, variant, DIGITS, 10, seed)


def shared(model):
    """name -> tensor of every parameter outside the norm layers."""
    norms = {n for n, m in model.named_modules() if isinstance(m, NORM_TYPES)}
    return {n: p for n, p in model.named_parameters() if n.rpartition(".")[0] not in norms}


def last_epoch(run_dir):
    rows = [line.split(",") for line in (run_dir / "epochs.csv").read_text().splitlines()[1:]]
    last = max(int(r[2]) for r in rows)
    return {r[0]: float(r[6]) for r in rows if int(r[2]) == last}  # variant -> test acc


@pytest.mark.parametrize(
    "norm, layer", [("batchnorm", nn.BatchNorm2d), ("groupnorm", nn.GroupNorm), ("none", nn.Identity)]
)
def test_timm_takes_the_norm_through_norm_layer_and_the_datas_channels(norm, layer):
    model = resnet(norm)
    for name in ("bn1", "layer1.0.bn1", "layer2.0.downsample.2", "layer4.0.bn2", "conv1.1"):
        assert type(model.get_submodule(name)) is layer
    assert model.conv1[0].in_channels == 1 and model.fc.out_features == 10
    assert model(torch.rand(3, *DIGITS)).shape == (3, 10)


@pytest.mark.slow
def test_timm_variants_train_on_digits(run_config, tmp_path):
    """resnet10t at 1/8 width on the 8x8 digits (timm's own stem: 7x7... here 3 3x3 convs, the first of stride 2,
    then a max-pool, so the last stage sees 1x1 maps): 3 epochs of 45 steps, seed 0. Measured test accuracies:
    bn 0.84, gn 0.66, ln 0.69, plain 0.34 (chance 0.10)."""
    config = tiny_config(
        "timm",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 3, "batch_size": 32, "log_every": 0},
        model={"kind": "timm", "name": "resnet10t", "kwargs": SMALL},
        variants=VARIANTS,
    )
    run_dir, _ = run_config(config, tmp_path / "out")
    acc = last_epoch(run_dir)
    assert acc.keys() == {"bn", "gn", "ln", "plain"}
    assert acc["bn"] > 0.75 and min(acc["gn"], acc["ln"]) > 0.55 and acc["plain"] < acc["bn"]


def test_shared_weights_are_identical_across_norms_and_differ_by_seed():
    reference = shared(resnet("none", seed=5))
    assert "conv1.0.weight" in reference and "layer3.0.downsample.1.weight" in reference and "fc.bias" in reference
    torch.manual_seed(0)
    for norm in ("batchnorm", "groupnorm", "layernorm"):
        torch.rand(100)  # what the global RNG did before must not matter
        model = resnet(norm, seed=5)
        other = shared(model)
        assert other.keys() == reference.keys()
        assert all(torch.equal(other[k], reference[k]) for k in reference)
        assert torch.equal(model.layer1[0].bn2.weight, torch.ones(8))  # the default, not timm's zero_init_last
    again = shared(resnet("none", seed=6))
    assert not any(torch.equal(again[k], reference[k]) for k in reference)


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "dla34",
            r"timm's dla34 does not take a plain norm layer through norm_layer \(TypeError: DLA.__init__\(\) got",
        ),
        (
            "efficientnet_b0",
            "efficientnet_b0 does not take a plain norm layer .* unexpected keyword argument 'inplace'",
        ),
        ("resnt18", r"resnt18 is not a timm model \(did you mean resnet18"),
    ],
)
def test_architectures_without_a_plain_norm_layer_are_refused(name, message):
    with pytest.raises(BnbenchError, match=message):
        build_model(ModelConfig(kind="timm", name=name), VariantConfig(name="b"), (3, 32, 32), 10, 0)


def test_a_model_that_swallows_norm_layer_is_refused(monkeypatch):
    monkeypatch.setattr(timm, "create_model", lambda name, **kwargs: nn.Linear(64, 10))
    with pytest.raises(BnbenchError, match="timm's resnet18 .* accepts norm_layer but never calls it"):
        build_model(ModelConfig(kind="timm", name="resnet18"), VariantConfig(name="b"), DIGITS, 10, 0)


def test_bad_kwargs_and_small_inputs_are_one_line():
    with pytest.raises(BnbenchError, match=r"model.kwargs \{.*'widht': 3\}: timm's resnet10t raised TypeError: "):
        resnet("batchnorm", widht=3)
    with pytest.raises(BnbenchError, match="resnet10t cannot train on 1x8x8 inputs with norm: instancenorm"):
        resnet("instancenorm")


@pytest.mark.parametrize(
    "kwargs, raised",
    [
        ({"stem_width": 0}, "IndexError: select"),
        ({"channels": "abc"}, "TypeError: not all arguments converted"),  # was: "does not take a plain norm layer"
        ({"drop_rate": "abc"}, "ValueError: could not convert string to float"),  # raised in the forward pass
        ({"features_only": True}, r"ValueError: the model returns a list, not logits of shape \(2, 10\)"),
    ],
)
def test_kwargs_that_break_timms_model_are_one_line_naming_them(kwargs, raised):
    """Whatever timm raises with the kwargs, or a model that returns no logits (it failed in the loss), where the
    model builds and runs without them."""
    with pytest.raises(BnbenchError, match=rf"^model.kwargs \{{.*\}}: timm's resnet10t raised {raised}.*; it builds "):
        resnet("batchnorm", **kwargs)


@pytest.mark.parametrize("key", ["checkpoint_path", "pretrained_cfg_overlay"])
def test_kwargs_that_read_weight_files_are_refused_before_timm_runs(write_config, tmp_path, key):
    """checkpoint_path: /etc/passwd was opened (and failed with an IndexError)."""
    raw = {"name": "t", "dataset": {"name": "digits"}, "device": "cpu", "model": {"kind": "timm", "name": "resnet10t"}}
    raw["model"]["kwargs"] = {key: "/etc/passwd" if key == "checkpoint_path" else {"file": "/etc/passwd"}}
    result = CliRunner().invoke(app, ["run", str(write_config(raw)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    assert f"model.kwargs: {key} says where timm finds pretrained weights, and bnbench loads none" in result.output


@pytest.mark.parametrize(
    "kwargs, raised",
    [
        ({"features_only": True}, "ValueError: the model returns a list, not logits of shape (2, 10)"),
        ({"stem_width": 0}, "IndexError: select(): index 0 out of range"),  # after two of timm's warnings
    ],
)
def test_bad_kwargs_are_refused_in_one_line_before_the_run_folder(write_config, tmp_path, kwargs, raised):
    model = {"kind": "timm", "name": "resnet10t", "kwargs": kwargs}
    raw = {"name": "t", "dataset": {"name": "digits"}, "device": "cpu", "model": model}
    result = CliRunner().invoke(app, ["run", str(write_config(raw)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: model.kwargs {kwargs}: timm's resnet10t raised {raised}")
    assert line.endswith("; it builds and runs without them, so fix or remove them")


def test_missing_timm_is_one_line_naming_the_extra(write_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    raw = {"name": "t", "dataset": {"name": "digits"}, "device": "cpu", "model": {"kind": "timm", "name": "resnet18"}}
    result = CliRunner().invoke(app, ["run", str(write_config(raw)), "--out", str(write_config(raw).parent / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: model.kind: timm needs the timm package, an optional extra: pip install 'bnbench[timm]'"
    )


@pytest.mark.parametrize(
    "model, message",
    [
        ({"kind": "timm", "name": "resnet18", "kwargs": {"pretrained": True}}, "pretrained is set by bnbench"),
        ({"kind": "timm", "name": "hf-hub:x/y"}, "model.name: expected a timm model name"),
        ({"kind": "timm"}, "model.name: expected a timm model name"),
        ({"kind": "timm", "name": "resnet18", "width": 8}, "model.width is for model.kind: torchvision, not timm"),
    ],
)
def test_timm_config_mistakes(model, message):
    with pytest.raises(ValueError, match=message):
        Config(name="x", model=model)


def test_timm_config_names_and_placement():
    config = Config(name="x", model={"kind": "timm", "name": "resnet18", "kwargs": {"drop_rate": 0.1}})
    assert describe_model(config) == "resnet18 (timm)" and config.model.norms()[-1] == "instancenorm"
    with pytest.raises(ValueError, match="placement is for the mlp and cnn; a timm model places"):
        Config(name="x", model=config.model, variants=[{"name": "a", "placement": "after_activation"}])


# ---- the norm_layer that factories get ---------------------------------------------------------------------------

NETS = """
import timm
from torch import nn


def timm_style(num_classes, in_shape, norm_layer, **kwargs):
    return timm.create_model("resnet10t", num_classes=num_classes, in_chans=in_shape[0], norm_layer=norm_layer,
                             **kwargs)


def mlp(num_classes, in_shape, norm_layer, width=32):
    \"\"\"Two hidden Linear layers, norm_layer(F, dims=1) after each.\"\"\"
    features = in_shape[0] * in_shape[1] * in_shape[2]
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, width), norm_layer(width, dims=1), nn.ReLU(),
        nn.Linear(width, width), norm_layer(width, dims=1), nn.ReLU(),
        nn.Linear(width, num_classes),
    )
"""


@pytest.fixture
def nets(tmp_path, monkeypatch):
    name = f"timm_nets_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(NETS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_norm_layer_is_a_plain_function_that_counts_its_calls_and_passes_timms_check():
    norm_layer = norm_layer_for(VariantConfig(name="g", norm="groupnorm", groups=2))
    assert timm.layers.get_norm_layer(norm_layer) is norm_layer  # asserts a class, str, function or partial
    layer = norm_layer(8, eps=1e-3, dtype=torch.float64)
    assert (type(layer), layer.num_groups, layer.eps, layer.weight.dtype) == (nn.GroupNorm, 2, 1e-3, torch.float64)
    assert norm_layer.calls == 1


def test_a_timm_style_factory_gets_the_variants_norm(nets):
    cfg = ModelConfig(kind="factory", factory=f"{nets}:timm_style", kwargs=SMALL)
    model = build_model(cfg, VariantConfig(name="ln", norm="layernorm"), DIGITS, 10, 0)
    assert type(model.layer3[0].bn1) is nn.GroupNorm and model.layer3[0].bn1.num_groups == 1


@pytest.mark.parametrize(
    "norm, layer",
    [("batchnorm", nn.BatchNorm1d), ("layernorm", nn.LayerNorm), ("groupnorm", nn.GroupNorm), ("none", nn.Identity)],
)
def test_norm_layer_dims_1_gives_the_dense_norm(nets, norm, layer):
    cfg = ModelConfig(kind="factory", factory=f"{nets}:mlp")
    variant = VariantConfig(name=norm, norm=norm, groups=4 if norm == "groupnorm" else None)
    model = build_model(cfg, variant, DIGITS, 10, 0)
    assert type(model[2]) is layer and type(model[5]) is layer
    out = model(torch.rand(4, *DIGITS))
    assert out.shape == (4, 10)


def test_norm_layer_dims_1_refuses_instancenorm_and_other_dims(nets):
    cfg = ModelConfig(kind="factory", factory=f"{nets}:mlp")
    with pytest.raises(BnbenchError, match=r"norm_layer\(32, dims=1\): norm: instancenorm normalises over positions"):
        build_model(cfg, VariantConfig(name="i", norm="instancenorm"), DIGITS, 10, 0)
    with pytest.raises(ValueError, match=r"norm_layer\(4, dims=3\): dims is 2 for"):
        norm_layer_for(VariantConfig(name="b"))(4, dims=3)


def test_an_mlp_factory_with_dense_norms_trains_on_digits(nets, run_config, tmp_path):
    """2 epochs of 45 steps, seed 0; measured test accuracies: bn 0.95, gn 0.94, ln 0.94, plain 0.78."""
    config = tiny_config(
        "mlp-factory",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 2, "batch_size": 32, "log_every": 0},
        model={"kind": "factory", "factory": f"{nets}:mlp"},
        variants=VARIANTS,
    )
    run_dir, _ = run_config(config, tmp_path / "out")
    acc = last_epoch(run_dir)
    assert acc.keys() == {"bn", "gn", "ln", "plain"}
    assert min(acc["bn"], acc["gn"], acc["ln"]) > 0.9 and 0.5 < acc["plain"] < 0.85
