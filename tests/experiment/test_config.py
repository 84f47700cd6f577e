"""Config loading, overrides and the one-line error messages."""

import pytest

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.loading import load_config, shipped_configs
from bnbench.experiment.trials import expand


def error_of(write_config, raw, *overrides):
    with pytest.raises(BnbenchError) as e:
        load_config(str(write_config(raw)), overrides)
    return str(e.value)


def test_defaults_are_the_tutorial_experiment(write_config):
    config, _ = load_config(str(write_config({"name": "x"})))
    assert config.seeds == [42]
    assert (config.dataset.name, config.model.kind, config.model.hidden) == ("cifar10", "mlp", [64, 32])
    assert [(v.name, v.norm) for v in config.variants] == [("batchnorm", "batchnorm"), ("plain", "none")]
    assert config.baseline == "plain"
    assert (config.optimizer.name, config.optimizer.lr) == ("adam", 1e-4)
    t = config.training
    assert (t.epochs, t.batch_size, t.shuffle, t.log_every) == (5, 10, True, 500)


def test_shipped_mlp_config_equals_the_defaults():
    """The tutorial's experiment is the default config; mlp.yaml adds only evaluations every 500 steps (for the
    steps-to-accuracy measure), which change no training number (test_train.py)."""
    config, _ = load_config("mlp")
    assert config.training.eval_every == 500
    assert config.model_dump() == Config(name="mlp-cifar10", training={"eval_every": 500}).model_dump()


def test_all_shipped_configs_validate():
    assert {"mlp", "cnn", "placement", "lr", "quick"} <= set(shipped_configs())
    for name in shipped_configs():
        load_config(name)


def test_overrides_are_yaml_and_dotted(write_config):
    config, _ = load_config(
        str(write_config({"name": "x"})),
        ("training.epochs=1", "optimizer.lr=1e-3", "model.hidden=[8, 4]", "variants.1.name=nobn"),
        seeds=[1, 2],
        device="cpu",
    )
    assert config.training.epochs == 1 and config.optimizer.lr == 1e-3 and config.model.hidden == [8, 4]
    assert config.seeds == [1, 2] and config.device == "cpu"
    assert config.variants[1].name == "nobn" and config.baseline == "nobn"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"name": "x", "training": {"epoch": 3}}, "training.epoch: unknown key 'epoch'; did you mean 'epochs'?"),
        ({"name": "x", "optimiser": {}}, "unknown key 'optimiser'; did you mean 'optimizer'?"),
        ({"name": "x", "training": {"epochs": 0}}, "training.epochs: Input should be greater than 0"),
        ({"name": "x", "optimizer": {"lr": -1}}, "optimizer.lr: Input should be greater than 0"),
        ({"name": "x", "variants": []}, "variants: List should have at least 1 item"),
        ({"name": "x", "optimizer": {"name": "rmsprop"}}, "optimizer.name: Input should be 'adam', 'sgd' or 'adamw'"),
        ({"name": "x", "dataset": {"name": "imagenet"}}, "dataset.name: Input should be"),
        (
            {"name": "x", "model": {"kind": "resnet"}},
            "model.kind: Input should be 'mlp', 'cnn', 'torchvision', 'timm' or 'factory'",
        ),
        ({"name": "x", "variants": [{"name": "a", "norm": "weightnorm"}]}, "variants.0.norm: Input should be"),
        ({"name": "x", "baseline": "nobn"}, "baseline 'nobn' is not a variant"),
        ({"name": "x", "seeds": [1, 1]}, "seeds must be unique"),
        ({"name": "x", "training": {"batch_size": "ten"}}, "training.batch_size: Input should be a valid integer"),
        ({"name": "x", "sweep": {"optimizer.lrr": [1]}}, "unknown key 'lrr'; did you mean 'lr'?"),
        ({"name": "x", "sweep": {"optimizer.lr": [0.1, -1]}}, "optimizer.lr: Input should be greater than 0"),
        ({"seeds": [1]}, "name: is required"),
        ("name: [unclosed", "malformed YAML: line 1"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_configs_name_file_and_field(write_config, raw, expected):
    message = error_of(write_config, raw)
    assert "exp.yaml" in message and expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "override, expected",
    [
        ("training.epoch=1", "unknown key 'epoch'; did you mean 'epochs'?"),
        ("nosuch=1", "unknown key 'nosuch'"),
        ("training=", "training.epochs"),  # a section set to null fails validation of the section
        ("training.epochs", "expected PATH=VALUE"),
        ("training.epochs=[1", "not valid YAML"),
        ("training.epochs=-2", "training.epochs: Input should be greater than 0"),
    ],
)
def test_bad_overrides(write_config, override, expected):
    message = error_of(write_config, {"name": "x"}, override)
    assert expected in message or (override == "training=" and "training" in message)


def test_missing_file_suggests_shipped_name():
    with pytest.raises(BnbenchError, match="no such config file or shipped config; did you mean 'mlp'"):
        load_config("mpl")


def test_trials_are_variants_x_seeds_x_sweep_points(write_config):
    config, _ = load_config(
        str(
            write_config(
                {"name": "x", "seeds": [1, 2], "sweep": {"optimizer.lr": ["1e-3", 0.01], "training.epochs": [1, 2]}}
            )
        )
    )
    trials = expand(config)
    assert len(trials) == 2 * 2 * 2 * 2
    assert {t.point["optimizer.lr"] for t in trials} == {1e-3, 0.01}  # YAML strings become typed values
    assert all(t.config.optimizer.lr == t.point["optimizer.lr"] for t in trials)
    assert all(t.config.training.epochs == t.point["training.epochs"] for t in trials)
    assert len({t.key for t in trials}) == len(trials)


def test_nesterov_and_norm_decay_refusals_are_one_line(write_config):
    """nesterov is sgd's and needs momentum, as torch's SGD says; norm_decay without weight decay changes nothing,
    so two sweep points that differ only in it are one set of trials."""
    raw = {"name": "r", "optimizer": {"name": "adam", "nesterov": True}}
    assert error_of(write_config, raw).endswith(
        "optimizer.nesterov: true is sgd's (Nesterov momentum), optimizer.name adam has none; "
        "use optimizer.name: sgd, or remove nesterov"
    )
    raw["optimizer"] |= {"name": "sgd", "momentum": 0}
    assert "optimizer.nesterov: true needs optimizer.momentum above 0" in error_of(write_config, raw)
    raw = {
        "name": "r",
        "optimizer": {"name": "sgd", "weight_decay": 0},
        "sweep": {"optimizer.norm_decay": [True, False]},
    }
    assert "(without weight decay optimizer.norm_decay has nothing to leave out)" in error_of(write_config, raw)
    raw["optimizer"]["weight_decay"] = 5e-4
    config, _ = load_config(str(write_config(raw)))
    assert [t.config.optimizer.norm_decay for t in expand(config)] == [True, True, False, False]
