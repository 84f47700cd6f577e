"""Training on a validation split's remainder with augmented batches (GitHub issue 32): the stacked engine trains
exactly what eager trainers do, weights bitwise on the CPU, and every evaluation scores the validation split beside
the test split, as a direct evaluation of the same weights does."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bnbench.engines import choose
from bnbench.engines.eager import Trainer
from bnbench.engines.stacked import StackedTrainer
from bnbench.experiment.config import Config
from bnbench.experiment.data import load_dataset
from bnbench.experiment.trials import expand

CPU = torch.device("cpu")
MODELS = {"mlp": {"kind": "mlp", "hidden": [32, 16]}, "cnn": {"kind": "cnn", "channels": [8, 16], "hidden": [16]}}


@pytest.fixture(autouse=True)
def cpu_settings():
    """The runner's CPU settings (one thread, denormals flushed), as tests/engines/test_stacked.py has them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


def config(model: str, optimizer: str) -> Config:
    return Config(
        name="recipe",
        seeds=[0, 1],
        dataset={"name": "digits", "validation": 0.1, "augment": ["crop", "flip"]},
        model=MODELS[model],
        device="cpu",
        variants=[
            {"name": "plain", "norm": "none"},
            {"name": "before", "norm": "batchnorm", "placement": "before_activation"},
            {"name": "after", "norm": "batchnorm", "placement": "after_activation"},
        ],
        optimizer={"name": optimizer, "lr": 3e-3},
        training={"epochs": 2, "batch_size": 16, "log_every": 20, "eval_every": 25},
    )


def direct(model: torch.nn.Module, data, split) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on `split`, in eval mode, in one pass."""
    model.eval()
    with torch.no_grad():
        out = model(data.inputs(split.x))
    model.train()
    return F.cross_entropy(out, split.y).item(), (out.argmax(1) == split.y).float().mean().item()


@pytest.mark.parametrize(
    "model,optimizer", [("mlp", "adam"), ("mlp", "sgd"), pytest.param("cnn", "adam", marks=pytest.mark.slow)]
)
def test_stacked_equals_eager_with_a_validation_split_and_augmentation(model, optimizer):
    trials = expand(config(model, optimizer))
    data = load_dataset(trials[0].config.dataset)
    eager = [Trainer(t, data, CPU) for t in trials]
    stacked = StackedTrainer(trials, data, CPU)
    for _ in range(2):
        for e, s in zip([t.train_epoch() for t in eager], stacked.train_epoch()):
            np.testing.assert_allclose(s.losses, e.losses, rtol=1e-5)  # the mean's order: last bits (test_stacked)
            assert (s.train_acc, s.test_acc, s.val) == (e.train_acc, e.test_acc, e.val)
            assert s.evals == e.evals and len(e.evals[0]) == 5  # step, test loss and acc, val loss and acc
    for e, s in zip(eager, stacked.state_dicts()):
        for key, value in e.state_dict()["model"].items():
            assert torch.equal(value, s["model"][key]), key  # bitwise


def test_evaluations_score_the_validation_split_as_a_direct_evaluation_does():
    trial = expand(config("mlp", "adam"))[1]
    data = load_dataset(trial.config.dataset)
    trainer = Trainer(trial, data, CPU)
    result = trainer.train_epoch()
    val, test = direct(trainer.model, data, data.val), direct(trainer.model, data, data.test)
    np.testing.assert_allclose(result.val, val, rtol=1e-6)
    np.testing.assert_allclose((result.test_loss, result.test_acc), test, rtol=1e-6)
    assert result.evals[-1] == (trainer.step, result.test_loss, result.test_acc, *result.val)
    assert result.val[1] * len(data.val.y) == round(result.val[1] * len(data.val.y))  # a count of the 144
    assert trainer.model.training  # the mode restored


def test_augmentation_changes_what_is_trained():
    augmented = expand(config("mlp", "adam"))[0]
    bare = dataclasses.replace(augmented, config=augmented.config.with_values({"dataset.augment": []}))
    data = load_dataset(bare.config.dataset)  # the split does not depend on augment
    a, b = Trainer(augmented, data, CPU).train_epoch(), Trainer(bare, data, CPU).train_epoch()
    assert not np.array_equal(a.losses, b.losses) and a.val != b.val


def test_the_graph_engine_gives_way_to_eager_with_augmentation():
    """The graph engine's captured steps gather their batches on the device without the epoch's draws."""
    assert choose.note(config("mlp", "adam"), "graph") == (
        "graph -> eager: dataset.augment: the graph engine's captured steps gather batches without augmentation"
    )
    assert choose.note(config("mlp", "adam").with_values({"dataset.augment": []}), "graph") is None
