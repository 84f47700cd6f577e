"""A variant's own optimizer settings (`overrides`, `bnbench tune`'s tuned stage): applied to its trials only,
checked with one line, and absent from every dump of a config that does not use them."""

import pytest
from support.configs import tiny_config

from bnbench.errors import BnbenchError
from bnbench.experiment.config import dump
from bnbench.experiment.loading import load_config, validate
from bnbench.experiment.trials import expand

VARIANTS = [{"name": "batchnorm", "norm": "batchnorm"}, {"name": "plain", "norm": "none"}]


def with_overrides(*overrides, **fields):
    variants = [{**v, "overrides": o} if o else v for v, o in zip(VARIANTS, overrides)]
    return tiny_config(variants=variants, **fields)


def test_a_config_without_them_dumps_as_before():
    assert "overrides" not in dump(load_config("quick")[0])
    assert "  overrides:\n    optimizer.lr: 0.003\n" in dump(validate(with_overrides({"optimizer.lr": 0.003}), "c"))


def test_each_variant_trains_at_its_own_setting_the_rest_of_the_config_alike():
    config = validate(with_overrides({"optimizer.lr": "3e-3"}, {"optimizer.lr": 0.01}), "c", new=True)
    assert config.variants[0].overrides == {"optimizer.lr": 0.003}  # as the field reads YAML's string
    trials = expand(config)
    assert [(t.key, t.config.optimizer.lr) for t in trials[:2]] == [("batchnorm-s0", 0.003), ("plain-s0", 0.01)]
    assert trials[0].config.model_dump(exclude={"optimizer"}) == trials[1].config.model_dump(exclude={"optimizer"})


def test_two_variants_at_one_setting_are_not_one_trial_twice():
    config = validate(with_overrides({"optimizer.lr": 0.01}, {"optimizer.lr": 0.01}), "c", new=True)
    assert len(expand(config)) == 4


@pytest.mark.parametrize(
    "overrides, sweep, message",
    [
        (
            {"training.epochs": 3},
            {},
            "variant 'batchnorm': overrides 'training.epochs': only optimizer fields may differ per variant "
            "(optimizer.name, optimizer.lr",
        ),
        ({"optimizer.lr": -1}, {}, "variant 'batchnorm': overrides optimizer.lr: Input should be greater than 0"),
        (
            {"optimizer.lr": 0.1},
            {"optimizer.lr": [0.1, 0.2]},
            "variant 'batchnorm': overrides optimizer.lr, which the sweep sets; remove one of them",
        ),
    ],
)
def test_one_line_for_a_bad_override(overrides, sweep, message):
    with pytest.raises(BnbenchError) as refused:
        validate(with_overrides(overrides, sweep=sweep), "c.yaml", new=True)
    assert str(refused.value).startswith("c.yaml: " + message)
    assert "\n" not in str(refused.value)
