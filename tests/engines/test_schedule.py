"""Learning-rate schedules: `lr_at`'s numbers by hand and against torch's own schedulers, and every engine sets
them so that a scheduled run is the same bits eager, stacked and resumed (tests/engines/test_stacked.py has the
stacked engine's bitwise comparison with a schedule)."""

import copy
import io
import math

import pytest
import torch
from support.configs import tiny_config
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, MultiStepLR, SequentialLR

from bnbench.engines import choose
from bnbench.engines.eager import Trainer
from bnbench.engines.schedule import lr_at, scheduled, trial_lrs, warmup_steps
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config, DatasetConfig, OptimizerConfig
from bnbench.experiment.data import load_dataset
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand, refuse_same_trials

CPU = torch.device("cpu")
RECIPE = {
    "name": "sgd",
    "lr": 0.05,
    "nesterov": True,
    "weight_decay": 5e-4,
    "norm_decay": False,
    "schedule": "cosine",
    "warmup_epochs": 0.5,
}


def opt(**fields) -> OptimizerConfig:
    return OptimizerConfig(**{"name": "sgd", "lr": 0.1, **fields})


def test_cosine_by_hand():
    cfg = opt(schedule="cosine")
    assert lr_at(cfg, 0, 10, 100) == 0.1
    assert lr_at(cfg, 50, 10, 100) == pytest.approx(0.05, rel=1e-15)
    assert lr_at(cfg, 99, 10, 100) == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.99)) / 2, rel=1e-15)
    assert 0 < lr_at(cfg, 99, 10, 100) < 3e-5  # the last step's lr is the first above 0


def test_linear_warmup_then_decay_by_hand():
    """warmup_epochs 0.5 of 10 batches: 5 steps at 1/5 .. 5/5 of lr, then the decay over the 95 steps left."""
    cfg = opt(schedule="linear", warmup_epochs=0.5)
    assert warmup_steps(cfg, 10) == 5
    assert [lr_at(cfg, s, 10, 100) for s in range(6)] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1], rel=1e-15)
    assert lr_at(cfg, 5 + 95 // 2, 10, 100) == pytest.approx(0.1 * (1 - 47 / 95), rel=1e-15)
    assert lr_at(cfg, 99, 10, 100) == pytest.approx(0.1 / 95, rel=1e-15)
    assert [lr_at(opt(warmup_epochs=0.2), s, 10, 100) for s in (0, 1, 2, 99)] == pytest.approx([0.05, 0.1, 0.1, 0.1])


def test_step_milestones_by_hand():
    """Milestone m: the epochs after the m-th train at lr x gamma (epoch-wise, as torch's MultiStepLR)."""
    cfg = opt(schedule="step", milestones=[2, 4], gamma=0.5)
    lrs = [lr_at(cfg, s, 10, 60) for s in (0, 19, 20, 39, 40, 59)]
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


def torch_lrs(make, steps: int, per_epoch: int = 1) -> list[float]:
    """The lr each step of torch's scheduler `make(optimizer)` gives (stepped every `per_epoch` steps)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler, lrs = make(optimizer), []
    for s in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if (s + 1) % per_epoch == 0:
            scheduler.step()
    return lrs


@pytest.mark.parametrize(
    "fields, make, per_epoch",
    [
        ({"schedule": "cosine"}, lambda o: CosineAnnealingLR(o, T_max=60), 1),
        ({"schedule": "step", "milestones": [2, 5]}, lambda o: MultiStepLR(o, [2, 5], gamma=0.1), 10),
        (  # torchvision's reference recipe: LinearLR warmup, then cosine over the rest
            {"schedule": "cosine", "warmup_epochs": 0.5},
            lambda o: SequentialLR(o, [LinearLR(o, 1 / 5, total_iters=4), CosineAnnealingLR(o, T_max=55)], [5]),
            1,
        ),
        ({"schedule": "linear"}, lambda o: LinearLR(o, 1.0, 0.0, total_iters=60), 1),
    ],
)
def test_lr_at_agrees_with_torch_schedulers(fields, make, per_epoch):
    ours = [lr_at(opt(**fields), s, 10, 60) for s in range(60)]
    assert ours == pytest.approx(torch_lrs(make, 60, per_epoch), rel=0, abs=1e-12)


def test_trial_lrs_is_none_for_a_constant_lr():
    """A constant run's engines never touch the lr: its steps are the very calls they were before schedules."""
    config = Config(name="c", dataset={"name": "digits"})
    assert trial_lrs(config, 1437) is None and not scheduled(config.optimizer)
    assert scheduled(opt(warmup_epochs=1)) and scheduled(opt(schedule="cosine"))
    cosine = config.with_values({"optimizer.schedule": "cosine", "training.batch_size": 16})
    lrs = trial_lrs(cosine, 1437)  # 90 batches x 5 epochs
    assert lrs(0) == 1e-4 and lrs(449) == lr_at(cosine.optimizer, 449, 90, 450)


def digits_config(**optimizer) -> Config:
    raw = tiny_config("sched", [0], optimizer=RECIPE | optimizer, training={"epochs": 3, "batch_size": 32})
    return Config(**raw, variants=[{"name": "bn", "norm": "batchnorm"}])


@pytest.fixture(scope="module")
def data():
    return load_dataset(DatasetConfig(name="digits"))


def test_eager_sets_each_steps_lr(data):
    trial = expand(digits_config())[0]
    trainer, seen = Trainer(trial, data, CPU), []
    step = trainer.optimizer_step
    trainer.optimizer_step = lambda: (seen.append(trainer.optimizer.param_groups[1]["lr"]), step())
    trainer.train_epoch()
    trainer.train_epoch()
    assert seen == [lr_at(trial.config.optimizer, s, 45, 135) for s in range(90)]
    assert {g["lr"] for g in trainer.optimizer.param_groups} == {seen[-1]}


@pytest.mark.parametrize("optimizer", [{}, {"name": "adam", "nesterov": False, "lr": 3e-3}])
def test_resuming_after_an_epoch_is_the_uninterrupted_run(data, optimizer):
    """Also for the fast fused Adam step, whose groups a loaded state replaces under it."""
    trial = expand(digits_config(**optimizer))[0]
    whole = Trainer(trial, data, CPU)
    expected = [whole.train_epoch() for _ in range(3)]
    first = Trainer(trial, data, CPU)
    first.train_epoch()
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)
    resumed = Trainer(trial, data, CPU)
    resumed.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
    for a, b in zip(expected[1:], [resumed.train_epoch() for _ in range(2)]):
        assert a.losses.tobytes() == b.losses.tobytes() and (a.test_loss, a.test_acc) == (b.test_loss, b.test_acc)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert whole.optimizer.state_dict()["param_groups"] == resumed.optimizer.state_dict()["param_groups"]


def test_the_graph_engine_gives_way_to_eager_for_a_schedule():
    config = digits_config(name="adam", nesterov=False)
    assert choose.note(config, "graph") == (
        "graph -> eager: optimizer.schedule: the graph engine's captured steps keep one learning rate"
    )
    swept = Config(name="s", sweep={"optimizer.warmup_epochs": [0, 1]})
    assert choose.note(swept, "graph") is not None and choose.note(Config(name="c"), "graph") is None


def check(**optimizer) -> str:
    raw = tiny_config("bad", [0], optimizer={"name": "sgd", **optimizer}, training={"epochs": 5})
    with pytest.raises(BnbenchError) as error:
        validate(raw, "config.yaml", new=True)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_bad_schedule_values_are_one_line_each():
    assert "optimizer.schedule: Input should be 'constant', 'cosine', 'step' or 'linear'" in check(schedule="cos")
    assert "optimizer.warmup_epochs: Input should be greater than or equal to 0" in check(warmup_epochs=-1)
    assert check(warmup_epochs=5) == (
        "config.yaml: optimizer.warmup_epochs: 5 is the whole run of training.epochs 5 or more, so the lr would "
        "never reach optimizer.lr; warm up for fewer epochs (e.g. 0.5)"
    )
    assert "optimizer.schedule: step needs optimizer.milestones" in check(schedule="step")
    assert check(schedule="step", milestones=[3, 2]) == (
        "config.yaml: optimizer.milestones: list the epochs in increasing order, each once, e.g. [30, 60] (got [3, 2])"
    )
    assert "optimizer.milestones.0: Input should be greater than or equal to 1" in check(milestones=[0])
    assert check(schedule="step", milestones=[2, 5]) == (
        "config.yaml: optimizer.milestones: epoch 5 is not before the end of the run (training.epochs 5), so it "
        "never changes the lr; use milestones below 5"
    )
    assert "optimizer.gamma: Input should be greater than 0" in check(gamma=0)
    assert "optimizer.gamma: Input should be less than or equal to 1" in check(gamma=2)


def test_sweep_points_that_differ_only_in_what_the_schedule_ignores_are_refused():
    config = Config(**tiny_config("s", [0]), sweep={"optimizer.gamma": [0.1, 0.5]})  # the constant schedule
    with pytest.raises(ValueError, match=r"optimizer.schedule constant does not use optimizer.gamma\)"):
        refuse_same_trials(expand(config))
    stepped = config.with_values({"optimizer.schedule": "step", "optimizer.milestones": [1]})
    refuse_same_trials(expand(stepped.model_copy(update={"sweep": config.sweep})))


def test_a_default_config_dumps_without_the_new_fields():
    """Strict.LATER: existing configs keep their config.yaml and meta.json byte for byte."""
    assert list(Config(name="c").model_dump()["optimizer"]) == ["name", "lr", "momentum", "weight_decay"]
    dumped = digits_config().model_dump()["optimizer"]
    assert {k: dumped[k] for k in RECIPE} == RECIPE and "milestones" not in dumped and "gamma" not in dumped
    assert Config.model_validate(copy.deepcopy(digits_config().model_dump())) == digits_config()
