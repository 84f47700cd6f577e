"""The shipped recipe (configs/recipe.yaml: SGD with Nesterov momentum, no decay on norm parameters, cosine after a
warmup, crop + flip, a validation split) trains as it says, here on a small image folder of CIFAR's shape."""

import json

import numpy as np
import pandas as pd
from support.cli_calls import ok
from support.images import write_folder

from bnbench.experiment.loading import load_config

CLASSES = tuple(f"c{k}" for k in range(10))


def test_recipe_is_the_issue_s_recipe():
    config = load_config("recipe", (), None, None)[0]
    opt, data = config.optimizer, config.dataset
    assert (opt.name, opt.lr, opt.nesterov, opt.weight_decay, opt.norm_decay) == ("sgd", 0.1, True, 5e-4, False)
    assert (opt.schedule, opt.warmup_epochs) == ("cosine", 1)
    assert data.augment == ["crop", "flip"] and data.validation == 500
    assert (config.model.name, config.model.width) == ("resnet18", 16)
    assert not set(config.seeds) & {0, 1, 2}  # bnbench tune's default tuning seeds stay free


def test_recipe_trains_on_cifar_shaped_images(tmp_path):
    write_folder(tmp_path / "data", classes=CLASSES, per_class=8, size=(32, 32))
    ok(
        "run", "recipe", "--seeds", "10", "--out", tmp_path / "results", "-q",
        "--set", "dataset.name=imagefolder", "--set", f"dataset.root={tmp_path / 'data'}",
        "--set", "dataset.limit=null", "--set", "dataset.test_limit=null", "--set", "dataset.validation=10",
        "--set", "model.width=8", "--set", "training.batch_size=14", "--set", "training.epochs=2",
    )  # fmt: skip
    (run,) = (tmp_path / "results" / "recipe-data").iterdir()  # named for the data set it ran on
    meta = json.loads((run / "meta.json").read_text())
    assert meta["data"]["validation"]["count"] == 10 and meta["data"]["validation"]["per_class"] == [1] * 10
    epochs = pd.read_csv(run / "epochs.csv")
    assert list(epochs.variant) == ["batchnorm"] * 2 + ["plain"] * 2
    assert np.isfinite(epochs[["val_loss", "val_acc", "test_loss", "test_acc"]].to_numpy()).all()
    assert set(epochs.val_acc * 10) <= set(range(11))  # accuracies over the 10 held-out images
