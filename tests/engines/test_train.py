"""The eager engine's shortcuts change speed, never numbers."""

import io
import subprocess
import sys

import pytest
import torch

from bnbench.engines.eager import Trainer
from bnbench.engines.events import batches_per_epoch
from bnbench.engines.fast_optim import fast_step, make_optimizer
from bnbench.experiment.config import Config, DatasetConfig, OptimizerConfig
from bnbench.experiment.data import load_dataset
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.experiment.trials import expand
from bnbench.nets.models import build_model


@pytest.mark.parametrize("name, weight_decay", [("adam", None), ("adam", 0.01), ("adamw", None), ("sgd", None)])
def test_fast_step_is_bitwise_optimizer_step(name, weight_decay):
    cfg = OptimizerConfig(name=name, lr=1e-2, weight_decay=weight_decay)
    models = [build_model(ModelConfig(hidden=[16]), VariantConfig(name="bn"), (1, 8, 8), 10, seed=0) for _ in "ab"]
    optimizers = [make_optimizer(cfg, m.parameters()) for m in models]
    steps = [optimizers[0].step, fast_step(optimizers[1])]
    g = torch.Generator().manual_seed(0)
    for i in range(20):
        if i == 10:  # a resume: the state the fast step keeps its counters in is replaced under it
            saved = io.BytesIO()
            torch.save(optimizers[1].state_dict(), saved)
            optimizers[1].load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
        x, y = torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
        for model, step in zip(models, steps):
            for p in model.parameters():
                p.grad = None
            torch.nn.functional.cross_entropy(model(x), y).backward()
            step()
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(optimizers[0].state.values(), optimizers[1].state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert "step" not in a or int(b["step"]) == 20


def test_batches_per_epoch_keeps_partial_batches_but_never_a_single_example():
    assert batches_per_epoch(50000, 10) == 5000
    assert batches_per_epoch(1437, 16) == 90  # 89 full + one of 13
    assert batches_per_epoch(1441, 16) == 90  # 90 full + one of 1, dropped (BN cannot normalise one example)
    assert batches_per_epoch(7, 1) == 7


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_step_hands_back_loss_and_logits_without_their_autograd_graph(kind):
    """The trainer keeps a tick's logits (100 steps) for the accuracy count: with their graphs attached, a CNN's
    saved activations would pile up."""
    data = load_dataset(DatasetConfig(name="digits"))
    config = Config(name="t", dataset=DatasetConfig(name="digits"), model=ModelConfig(kind=kind, channels=[4]))
    trainer = Trainer(expand(config)[0], data, torch.device("cpu"))
    idx = torch.arange(10)
    loss, logits = trainer._step(idx, data.train.y[idx])
    assert logits.shape == (10, 10) and loss.shape == ()
    assert not loss.requires_grad and not logits.requires_grad and logits.grad_fn is None
    assert all(p.grad is not None for p in trainer.params)


@pytest.mark.slow
def test_evaluating_every_n_steps_changes_no_training_number():
    """training.eval_every: test-set evaluations at every 7th global step and at each epoch's end, in eval mode,
    with the model handed back in training mode and the same losses, weights and BN statistics to the bit."""
    data = load_dataset(DatasetConfig(name="digits"))
    trainers = {}
    for every in (None, 7):
        config = Config(
            name="t",
            dataset=DatasetConfig(name="digits"),
            optimizer={"lr": 1e-3},
            training={"epochs": 2, "batch_size": 16, "eval_every": every},
        )
        trainers[every] = Trainer(expand(config)[0], data, torch.device("cpu"))  # batchnorm, seed 42
    plain, evaluated = ([t.train_epoch() for _ in range(2)] for t in trainers.values())
    for a, b in zip(plain, evaluated):
        assert a.losses.tobytes() == b.losses.tobytes() and (a.test_loss, a.test_acc) == (b.test_loss, b.test_acc)
    assert all(
        torch.equal(a, b)
        for a, b in zip(trainers[None].model.state_dict().values(), trainers[7].model.state_dict().values())
    )
    assert trainers[7].model.training
    assert [e[0] for e in plain[0].evals] == [90] and [e[0] for e in plain[1].evals] == [180]  # epoch ends only
    assert [e[0] for e in evaluated[0].evals] == list(range(7, 90, 7)) + [90]
    assert [e[0] for e in evaluated[1].evals] == list(range(91, 180, 7)) + [180]
    assert evaluated[1].evals[-1][1:] == (evaluated[1].test_loss, evaluated[1].test_acc)
    assert len({acc for _, _, acc in evaluated[0].evals}) > 3  # the model changes between evaluations


def test_a_run_never_imports_torch_dynamo(tmp_path):
    """torch.optim's torch.compile hooks would import torch._dynamo (2-4 s a process); bnbench skips them (see
    `fast_optim.plain_step`), and the bitwise tests above show the arithmetic is optimizer.step()'s."""
    script = (
        "import sys; from bnbench.experiment.loading import load_config; "
        "from bnbench.runner.execute import run_experiment; "
        "cfg, source = load_config('quick', ('training.epochs=1', 'optimizer.name=sgd'), [0]); "
        f"run_experiment(cfg, source, __import__('pathlib').Path({str(tmp_path)!r}), overrides={{}}); "
        "cfg, source = load_config('quick', ('training.epochs=1',), [0]); "
        f"run_experiment(cfg, source, __import__('pathlib').Path({str(tmp_path)!r}), overrides={{}}); "
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
