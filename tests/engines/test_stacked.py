"""The stacked engine trains K trials exactly as K eager `Trainer`s would (GitHub issue 6).

Stacked and eager are compared on the digits data: variants {none, BN before, BN after} x seeds {0, 1} x lr
{1e-3, 3e-3}, for an MLP and a CNN, with Adam and SGD; 2 epochs (180 steps), then one more epoch resumed across
engines through `state_dicts` / `Trainer.state_dict` (270 steps in all).

Tolerances: per-batch losses within rtol 1e-5; they differ at all only because the stacked engine averages the
per-example cross-entropies with `mean`, in another order than `F.cross_entropy`'s reduction (about 2e-7
relative), which leaves the gradient (1/B per example) untouched. Weights, BN running statistics and optimizer
state match to rtol 1e-5 too, and are in fact bitwise equal on the CPU: they have to be, since Adam turns the
last-bit noise in the gradient of a bias followed by BatchNorm (exactly zero in theory) into steps of size lr,
and a single differing bit grew to a 40% loss difference within 180 steps when the convolutions were grouped.
"""

import copy

import numpy as np
import pytest
import torch

from bnbench.engines.eager import Trainer
from bnbench.engines.stacked import StackedTrainer
from bnbench.experiment.config import Config, DatasetConfig
from bnbench.experiment.data import load_dataset
from bnbench.experiment.trials import expand

CPU = torch.device("cpu")
VARIANTS = [
    {"name": "plain", "norm": "none"},
    {"name": "before", "norm": "batchnorm", "placement": "before_activation"},
    {"name": "after", "norm": "batchnorm", "placement": "after_activation"},
]
MODELS = {"mlp": {"kind": "mlp", "hidden": [32, 16]}, "cnn": {"kind": "cnn", "channels": [8, 16], "hidden": [16]}}
RTOL = 1e-5


@pytest.fixture(scope="module")
def data():
    return load_dataset(DatasetConfig(name="digits"))


@pytest.fixture(autouse=True)
def cpu_settings():
    """Both engines with the runner's CPU settings: one thread (also quick when other processes share the
    cores), denormals flushed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


def config(model="mlp", optimizer="adam", lrs=(1e-3, 3e-3), variants=VARIANTS, **extra) -> Config:
    return Config(
        name="stacked",
        seeds=[0, 1],
        dataset={"name": "digits"},
        model=MODELS[model],
        device="cpu",
        variants=variants,
        optimizer={"name": optimizer},
        sweep={"optimizer.lr": list(lrs), **extra},
        training={"epochs": 3, "batch_size": 16, "log_every": 20, "eval_every": 25},
    )


def recorder():
    events = []
    return events, events.append


def assert_same_results(eager, stacked):
    assert len(eager) == len(stacked)
    for e, s in zip(eager, stacked):
        assert (e.epoch, e.diverged_step, len(e.losses)) == (s.epoch, s.diverged_step, len(s.losses))
        np.testing.assert_allclose(s.losses, e.losses, rtol=RTOL, atol=0, equal_nan=True)
        np.testing.assert_allclose([s.train_loss, s.test_loss], [e.train_loss, e.test_loss], rtol=RTOL, equal_nan=True)
        np.testing.assert_equal((s.train_acc, s.test_acc), (e.train_acc, e.test_acc))  # NaN train_acc if diverged
        assert [step for step, *_ in s.evals] == [step for step, *_ in e.evals]  # eval_every 25 and epoch ends
        np.testing.assert_allclose(np.array(s.evals), np.array(e.evals), rtol=RTOL, equal_nan=True)


def assert_same_state(eager: dict, stacked: dict):
    """Trainer.state_dict() format, key for key: model (BN running statistics included) and optimizer state."""
    assert (stacked["epoch"], stacked["step"]) == (eager["epoch"], eager["step"])
    assert list(stacked["model"]) == list(eager["model"]) and stacked["model"]._metadata == eager["model"]._metadata
    torch.testing.assert_close(stacked["model"], eager["model"], rtol=RTOL, atol=1e-7, equal_nan=True)
    assert stacked["optimizer"]["param_groups"] == eager["optimizer"]["param_groups"]
    torch.testing.assert_close(
        stacked["optimizer"]["state"], eager["optimizer"]["state"], rtol=RTOL, atol=1e-7, equal_nan=True
    )


def assert_same_progress(eager: list, stacked: list):
    """The same events per trial (the stacked engine interleaves trials within a tick)."""
    by_trial = lambda events: sorted(events, key=lambda p: (p.trial, p.epoch, p.batch))  # noqa: E731
    eager, stacked = by_trial(eager), by_trial(stacked)
    assert [(p.trial, p.epoch, p.batch, p.batches, p.window_loss is None) for p in stacked] == [
        (p.trial, p.epoch, p.batch, p.batches, p.window_loss is None) for p in eager
    ]
    np.testing.assert_allclose([p.running_loss for p in stacked], [p.running_loss for p in eager], rtol=RTOL)


@pytest.mark.parametrize(
    "model,optimizer",
    [
        ("mlp", "adam"),
        ("mlp", "sgd"),
        pytest.param("cnn", "adam", marks=pytest.mark.slow),
        pytest.param("cnn", "sgd", marks=pytest.mark.slow),
    ],
)
def test_stacked_training_equals_eager_training(data, model, optimizer):
    trials = expand(config(model, optimizer))
    assert len(trials) == 12 and len(StackedTrainer.compatible(trials)) == 1
    eager_events, on_eager = recorder()
    stacked_events, on_stacked = recorder()
    eager = [Trainer(t, data, CPU) for t in trials]
    stacked = StackedTrainer(trials, data, CPU)
    for _ in range(2):
        assert_same_results([e.train_epoch(on_eager) for e in eager], stacked.train_epoch(on_stacked))
    assert_same_progress(eager_events, stacked_events)
    for e, s in zip(eager, stacked.state_dicts()):
        assert_same_state(e.state_dict(), s)

    # Checkpoints cross engines both ways: eager resumes from stacked states, stacked from eager states.
    resumed = []
    for trial, state in zip(trials, stacked.state_dicts()):
        resumed.append(Trainer(trial, data, CPU))
        resumed[-1].load_state_dict(state)
    restacked = StackedTrainer(trials, data, CPU)
    restacked.load_state_dicts([e.state_dict() for e in eager])
    assert restacked.epoch == 2
    third = [r.train_epoch() for r in resumed]
    assert_same_results(third, stacked.train_epoch())
    assert_same_results(third, restacked.train_epoch())
    for r, s, t in zip(resumed, stacked.state_dicts(), restacked.state_dicts()):
        assert_same_state(r.state_dict(), s)
        assert_same_state(r.state_dict(), t)


def test_a_diverging_trial_leaves_the_stack_where_eager_training_stops(data):
    # SGD at lr 1e6: the plain MLP's loss overflows within a few steps; the other trials train on.
    trials = expand(config("mlp", "sgd", lrs=(1e6, 1e-3), variants=VARIANTS[:2]))
    eager = [Trainer(t, data, CPU) for t in trials]
    stacked = StackedTrainer(trials, data, CPU)
    first = [e.train_epoch() for e in eager]
    assert_same_results(first, stacked.train_epoch())
    diverged = [t for t, r in zip(trials, first) if r.diverged_step is not None]
    assert {(t.variant.name, t.point["optimizer.lr"]) for t in diverged} == {("plain", 1e6)}
    assert stacked.active == [t for t in trials if t not in diverged]
    for e, s in zip(eager, stacked.state_dicts()):
        assert_same_state(e.state_dict(), s)
    assert_same_results([e.train_epoch() for e, t in zip(eager, trials) if t not in diverged], stacked.train_epoch())
    for e, s in zip(eager, stacked.state_dicts()):
        assert_same_state(e.state_dict(), s)


def test_a_group_whose_every_trial_diverged_trains_no_more(data):
    stacked = StackedTrainer(expand(config("mlp", "sgd", lrs=(1e6,), variants=VARIANTS[:1])), data, CPU)
    assert all(r.diverged_step is not None for r in stacked.train_epoch())
    assert stacked.active == [] and stacked.train_epoch() == [] and stacked.epoch == 2


def test_compatible_groups_and_refusals(data):
    trials = expand(config("mlp", lrs=(1e-3,), **{"model.hidden": [[32], [16]], "optimizer.weight_decay": [0, 0.1]}))
    groups = StackedTrainer.compatible(trials)
    assert [len(g) for g in groups] == [12, 12]  # split by model.hidden only
    assert {t.config.model.hidden[0] for t in groups[0]} == {32}
    with pytest.raises(ValueError, match="must share"):
        StackedTrainer(trials, data, CPU)
    stacked = StackedTrainer(groups[0][:2], data, CPU)
    states = stacked.state_dicts()
    states[1]["epoch"] = 1
    with pytest.raises(ValueError, match="one epoch"):
        stacked.load_state_dicts(states)


def test_a_trials_losses_do_not_depend_on_the_size_of_its_group(data):
    """A resumed run may regroup trials (some an epoch ahead): every trial's per-batch losses, as written to
    batches.csv, must be the same bits in a group of 6 and alone."""
    trials = expand(config(lrs=(1e-3,), variants=VARIANTS[:2]))
    together = StackedTrainer(trials, data, CPU).train_epoch()
    for trial, result in zip(trials, together):
        alone = StackedTrainer([trial], data, CPU).train_epoch()[0]
        assert alone.losses.tobytes() == result.losses.tobytes(), trial.key


@pytest.mark.parametrize(
    "optimizer,recipe",
    [
        ("sgd", {"nesterov": True, "schedule": "cosine", "warmup_epochs": 0.5}),
        ("adam", {"schedule": "linear", "warmup_epochs": 1}),  # two groups through fast_step's fused kernel
        ("adamw", {"schedule": "step", "milestones": [1]}),
    ],
)
def test_a_scheduled_recipe_without_norm_decay_stacks_bitwise(data, optimizer, recipe):
    """Each stacked optimizer sets its trials' scheduled lr from its own optimizer.lr, and weight decay leaves
    out the 1-d parameters as eager's does; a checkpoint resumes across engines mid-schedule."""
    fields = {"optimizer.weight_decay": 5e-3, "optimizer.norm_decay": False} | {
        f"optimizer.{name}": value for name, value in recipe.items()
    }
    trials = expand(config("mlp", optimizer).with_values(fields).model_copy(update={"sweep": config().sweep}))
    assert len(StackedTrainer.compatible(trials)) == 1
    eager = [Trainer(t, data, CPU) for t in trials]
    stacked = StackedTrainer(trials, data, CPU)
    assert_same_results([e.train_epoch() for e in eager], stacked.train_epoch())
    for e, s in zip(eager, stacked.state_dicts()):
        assert len(s["optimizer"]["param_groups"]) == 2
        assert_same_state(e.state_dict(), s)
        for key, value in e.state_dict()["model"].items():
            assert torch.equal(s["model"][key], value), key
    restacked = StackedTrainer(trials, data, CPU)
    restacked.load_state_dicts(copy.deepcopy([e.state_dict() for e in eager]))  # as from files: no shared tensors
    second = [e.train_epoch() for e in eager]
    assert_same_results(second, restacked.train_epoch())
    assert_same_results(second, stacked.train_epoch())
    for e, s in zip(eager, restacked.state_dicts()):
        assert_same_state(e.state_dict(), s)
        for key, value in e.state_dict()["model"].items():
            assert torch.equal(s["model"][key], value), key
