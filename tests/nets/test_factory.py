"""The user's own network (`model.kind: factory`): the contract, its errors, and the same-seed weights."""

import json
import textwrap

import pytest
import torch
from support.configs import tiny_config
from torch import nn
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.engines.choose import choose as choose_engine
from bnbench.engines.choose import note as engine_note
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.nets import models
from bnbench.nets.models import BnbenchWarning, build_model

NET = '''
import sys

from torch import nn


def make_net(num_classes, in_shape, norm_layer, width=16):
    """Two conv blocks and a linear head; norm_layer(C) goes after each conv."""
    channels = in_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False), norm_layer(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), norm_layer(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )


def ignores_norm(num_classes, in_shape, norm_layer):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes))


def wrong_shape(num_classes, in_shape, norm_layer):
    return nn.Flatten()


def not_a_module(num_classes, in_shape, norm_layer):
    return [nn.Linear(1, 1)]


def raises(num_classes, in_shape, norm_layer):
    raise RuntimeError("out of ideas")


def exits(num_classes, in_shape, norm_layer):
    sys.exit(3)


def head(num_classes, in_shape):
    return nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes)


class Odd(nn.Module):
    """A linear model whose forward goes wrong in one way, `how`, that only training would meet."""

    def __init__(self, num_classes, in_shape, how):
        super().__init__()
        self.head, self.how = head(num_classes, in_shape), how

    def forward(self, x):
        out = self.head(x.flatten(1))
        if self.how == "integer":
            return out.argmax(1, keepdim=True).expand(-1, out.shape[1])
        if self.how == "train-shape" and self.training:
            return out.repeat(1, 2)
        if self.how == "batch-of-2":
            return out[:2]
        return out.detach()


def odd(num_classes, in_shape, norm_layer, how):
    return Odd(num_classes, in_shape, how)


def no_parameters(num_classes, in_shape, norm_layer):
    return nn.Sequential(nn.Flatten(), nn.Unflatten(1, (1, -1)), nn.AdaptiveAvgPool1d(num_classes), nn.Flatten())


def frozen(num_classes, in_shape, norm_layer):
    return nn.Sequential(nn.Flatten(), head(num_classes, in_shape).requires_grad_(False))


def dense_norm(num_classes, in_shape, norm_layer):
    """norm_layer after a Linear: GroupNorm(8, 8) there normalises each feature alone."""
    return nn.Sequential(nn.Flatten(), head(8, in_shape), norm_layer(8), nn.ReLU(), nn.Linear(8, num_classes))


def bn_dropout(num_classes, in_shape, norm_layer):
    return nn.Sequential(nn.Conv2d(in_shape[0], 4, 3, padding=1), norm_layer(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.Flatten(), nn.Linear(4 * in_shape[1] * in_shape[2], num_classes))


NOT_CALLABLE = 3
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A module `user_nets_<test>` in a temporary working directory, as a user's file next to their config."""
    name = f"user_nets_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(NET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def build(ref, norm="batchnorm", seed=0, **kwargs):
    cfg = ModelConfig(kind="factory", factory=ref, kwargs=kwargs)
    return build_model(cfg, VariantConfig(name=norm, norm=norm), (1, 8, 8), 10, seed)


def test_factory_gets_the_variants_norm_and_its_kwargs(nets):
    types = {
        norm: [type(m) for m in build(f"{nets}:make_net", norm, width=4)][1]
        for norm in ("batchnorm", "groupnorm", "layernorm", "instancenorm", "none")
    }
    assert types == {
        "batchnorm": nn.BatchNorm2d,
        "groupnorm": nn.GroupNorm,
        "layernorm": nn.GroupNorm,
        "instancenorm": nn.InstanceNorm2d,
        "none": nn.Identity,
    }
    assert build(f"{nets}:make_net", width=4)[0].out_channels == 4


def test_factory_shared_weights_are_identical_across_norms_and_differ_by_seed(nets):
    def convs_and_head(model):
        return [model[0].weight, model[3].weight, model[8].weight, model[8].bias]

    reference = convs_and_head(build(f"{nets}:make_net", "none", seed=9))
    for norm in ("batchnorm", "groupnorm", "layernorm"):
        torch.rand(10)
        assert all(
            torch.equal(a, b) for a, b in zip(convs_and_head(build(f"{nets}:make_net", norm, seed=9)), reference)
        )
    assert not any(
        torch.equal(a, b) for a, b in zip(convs_and_head(build(f"{nets}:make_net", "none", seed=10)), reference)
    )


@pytest.mark.parametrize(
    "ref, message",
    [
        ("no_such_module_xyz:make_net", "cannot import 'no_such_module_xyz'"),
        ("{nets}:make_nett", "has no 'make_nett'"),
        ("{nets}:NOT_CALLABLE", "is a int, not a callable"),
        ("{nets}:not_a_module", "returned a list, not a torch nn.Module"),
        ("{nets}:wrong_shape", r"returns \(2, 64\) for a batch of 2, not \(batch, num_classes\) = \(2, 10\)"),
        ("{nets}:raises", "raised RuntimeError: out of ideas"),
        # issue 19: what failed only in training, or left no message
        ("{nets}:exits", r"raised SystemExit: 3$"),
        ("{nets}:no_parameters", r"no trainable parameters \(it has none\); nothing would train"),
        ("{nets}:frozen", r"no trainable parameters \(all 2 have requires_grad=False\)"),
        ("{nets}:odd/integer", "returns logits of type torch.int64, in train mode; a loss needs floating-point ones"),
        (
            "{nets}:odd/train-shape",
            r"returns \(2, 20\) for a batch of 2, not \(batch, num_classes\) = \(2, 10\), in train",
        ),
        ("{nets}:odd/batch-of-2", r"returns \(2, 10\) for a batch of 3, not \(batch, num_classes\) = \(3, 10\)"),
        ("{nets}:odd/detached", "the loss's gradient reaches no parameter"),
        (
            "{nets}:dense_norm/groupnorm",
            r"layer '2', GroupNorm\(8, 8\), gets one value per group from features of shape "
            r"\(8,\) \(variant 'groupnorm'\)",
        ),
    ],
)
def test_factory_errors_are_one_line(nets, ref, message):
    """`factory/x`: kwargs how=x for `odd`, else the variant's norm."""
    ref, _, x = ref.format(nets=nets).partition("/")
    with pytest.raises(BnbenchError, match=message):
        build(ref, **({"how": x} if ref.endswith(":odd") else {"norm": x} if x else {}))


def test_the_training_check_changes_no_weight_statistic_or_random_draw(nets, monkeypatch):
    """The check trains nothing on the model itself (a copy takes the train-mode step), and draws nothing that
    the run's random streams would miss: the same model, statistics and RNG states as without it."""
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    model = build(f"{nets}:bn_dropout", seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not model[1].running_mean.any() and model[1].num_batches_tracked == 0
    assert all(p.grad is None for p in model.parameters())
    monkeypatch.setattr(models, "_check_trains", lambda *args: None)
    unchecked = build(f"{nets}:bn_dropout", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), unchecked.state_dict().values()))


def test_a_factory_that_exits_is_one_line_from_the_cli(nets, tmp_path, write_config):
    """sys.exit(3) in a factory ended bnbench with status 3 and no message."""
    raw = tiny_config(
        "mine",
        [0],
        optimizer=None,
        training={"epochs": 1, "log_every": 0},
        model={"kind": "factory", "factory": f"{nets}:exits"},
    )
    result = CliRunner().invoke(app, ["run", str(write_config(raw)), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: model.factory: {nets}:exits(num_classes=10, "
        f"in_shape=(1, 8, 8), norm_layer=..., **model.kwargs) "
        f"raised SystemExit: 3"
    )
    assert not (tmp_path / "out" / "mine").exists()


def test_a_factory_that_ignores_norm_layer_is_warned_about(nets):
    with pytest.warns(BnbenchWarning, match="never called norm_layer, so variant 'batchnorm'"):
        build(f"{nets}:ignores_norm")
    build(f"{nets}:ignores_norm", norm="none")  # nothing to ignore


def test_factory_reference_is_checked_with_the_config():
    with pytest.raises(ValueError, match="expected 'module.path:callable'"):
        Config(name="x", model={"kind": "factory", "factory": "my_nets.make_net"})
    with pytest.raises(ValueError, match="model.kwargs is for model.kind: factory"):
        Config(name="x", model={"kind": "cnn", "kwargs": {"width": 3}})


def test_factory_run_from_the_cli(nets, tmp_path, write_config):
    raw = tiny_config(
        "mine",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 2, "batch_size": 16, "log_every": 0},
        model={"kind": "factory", "factory": f"{nets}:make_net", "kwargs": {"width": 8}},
        variants=[{"name": "bn", "norm": "batchnorm"}, {"name": "plain", "norm": "none"}],
    )
    result = CliRunner().invoke(app, ["run", str(write_config(raw)), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "mine").iterdir()
    rows = [line.split(",") for line in (run_dir / "epochs.csv").read_text().splitlines()[1:]]
    assert len(rows) == 4 and max(float(r[6]) for r in rows) > 0.5
    raw["model"] = {"kind": "factory", "factory": f"{nets}:wrong_shape"}
    result = CliRunner().invoke(app, ["run", str(write_config(raw)), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and result.output.strip().startswith("error: model.factory:")
    assert len(result.output.strip().splitlines()) == 1 and "(2, 64)" in result.output


def test_graph_engine_does_not_capture_a_factory_model():
    config = Config(name="x", model={"kind": "factory", "factory": "m:f"}, training={"engine": "graph"})
    assert choose_engine(config, torch.device("cuda")) == "eager"
    assert "cannot capture" in engine_note(config, "graph")
    assert engine_note(Config(name="x", model={"kind": "torchvision", "name": "resnet18"}), "graph") is None


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_factory_that_builds_another_network_on_resume_is_one_line_and_the_run_stays_resumable(
    nets, tmp_path, write_config, monkeypatch, jobs
):
    """A factory whose network changes between builds (here: its width, as a random or time-based choice would)
    cannot continue its checkpoints: one line naming the trial and the fix, exit 2, the run partial (not failed)."""
    raw = tiny_config(
        "mine",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 1, "batch_size": 64, "log_every": 0},
        model={"kind": "factory", "factory": f"{nets}:make_net", "kwargs": {"width": 8}},
        variants=[{"name": "plain", "norm": "none"}, {"name": "bn", "norm": "batchnorm"}],
    )
    config = write_config(raw)
    assert CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "out"), "-q"]).exit_code == 0
    (run_dir,) = (tmp_path / "out" / "mine").iterdir()
    module = __import__(nets)
    make_net = module.make_net
    monkeypatch.setattr(module, "make_net", lambda width, **kwargs: make_net(width=width * 2, **kwargs))
    result = CliRunner().invoke(app, ["run", "--resume", str(run_dir), "--set", "training.epochs=2", "-q", "-j", jobs])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].split(": its checkpoint")[0] in ("error: plain-s0", "error: bn-s0")  # whichever starts first
    assert "its checkpoint does not fit the model built now (size mismatch" in lines[-1]
    assert "fix model.factory, or start a new run" in lines[-1]
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
