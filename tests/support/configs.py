"""The one small experiment the tests build their configs from: the 8x8 digits set on the CPU, Adam at 1e-3, two
epochs of batches of 16. A test states only what it needs otherwise, so what each test varies stands out."""

import copy

ADAM = {"name": "adam", "lr": 1.0e-3}
TRAINING = {"epochs": 2, "batch_size": 16, "log_every": 20}


def tiny_config(name: str = "t-digits", seeds=(0, 1), *, optimizer=ADAM, training=TRAINING, **fields) -> dict:
    """A config dict, as a user's YAML holds it: `fields` (model, variants, baseline, sweep, ...) added or
    replaced; a field given as None is left out (bnbench's default then applies), as a user leaves it out. A
    fresh copy each time, so that a test that changes its config changes no other's."""
    config = {
        "name": name,
        "seeds": list(seeds),
        "dataset": {"name": "digits"},
        "device": "cpu",
        **{key: fields.pop(key) for key in ("model", "variants", "baseline") if key in fields},
        "optimizer": optimizer,
        "training": training,
        **fields,
    }
    return copy.deepcopy({key: value for key, value in config.items() if value is not None})


def placements(name: str, *more_variants: dict) -> dict:
    """The experiment the --until-decided tests run in rounds: an MLP with BN before and after its activations, a
    close pair (undecided after 5 seeds, so it takes a second round), from 3 seeds of one epoch; `more_variants`
    added."""
    return tiny_config(
        name,
        [0, 1, 2],
        training={"epochs": 1, "batch_size": 32, "log_every": 10, "eval_every": 20},
        model={"kind": "mlp", "hidden": [64, 32]},
        variants=[
            {"name": "bn_before", "norm": "batchnorm", "placement": "before_activation"},
            {"name": "bn_after", "norm": "batchnorm", "placement": "after_activation"},
            *more_variants,
        ],
        baseline="bn_before",
    )
