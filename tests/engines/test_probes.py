"""Probes (`training.probe_every`, engines.probes): training is bitwise the same with them; each measure equals a
slow direct computation on a tiny model; probes.csv holds one row per probe step, layer and measure, also after a
resume; `compare --probes` reports probes.csv's numbers; engines other than eager give way to eager."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats
from support.cli_calls import invoke, ok
from support.configs import tiny_config
from torch import nn

from bnbench.engines import choose, probes
from bnbench.experiment.config import Config
from bnbench.rundir import checkpoint_files

CONFIG = tiny_config(
    "probe",
    [0, 1, 2],
    optimizer={"name": "adam", "lr": 1.0e-2},
    training={"epochs": 2, "batch_size": 32, "log_every": 10, "eval_every": 20},
)
NET = '''
from torch import nn


def dropout_net(num_classes, in_shape, norm_layer):
    """A conv net with dropout: it draws from the global RNGs while it trains (and trains by autograd)."""
    channels, height, width = in_shape
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), norm_layer(8), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
        nn.Linear(8 * height * width, num_classes),
    )
'''
MODEL_MEASURES = {"loss", "grad_norm", "loss_min", "loss_max", "grad_change_min", "grad_change_max", "beta_smoothness"}


def train(tmp_path, config, *sets):
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(config))
    ok("run", path, "--out", out, "-q", *(a for s in sets for a in ("--set", s)))
    (run_dir,) = (out / config["name"]).iterdir()
    return run_dir


def trained_numbers(run_dir):
    """Every trained number: the row files (without wall seconds) and each checkpoint's weights and optimizer."""
    files = {name: (run_dir / name).read_text() for name in ("batches.csv", "evals.csv")}
    files["epochs.csv"] = [line.rsplit(",", 1)[0] for line in (run_dir / "epochs.csv").read_text().splitlines()]
    states = {
        p.name: checkpoint_files.deserialize(torch.load(p, weights_only=True)["state"])
        for p in sorted((run_dir / "checkpoints").iterdir())
    }
    return files, states


def assert_bitwise_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_bitwise_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_bitwise_equal(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("model", ["mlp", pytest.param("dropout", marks=pytest.mark.slow)])
def test_probing_changes_no_trained_number(tmp_path, monkeypatch, model):
    """BN and plain, the direct MLP backward and autograd with dropout: with probes every 7 steps (cutting the
    ticks and evaluations at other steps) every loss, evaluation, weight and optimizer state is bitwise the same."""
    config = dict(CONFIG, seeds=[0, 1])
    if model == "dropout":
        (tmp_path / "probe_nets.py").write_text(NET)
        monkeypatch.syspath_prepend(str(tmp_path))
        config["model"] = {"kind": "factory", "factory": "probe_nets:dropout_net"}
    plain = train(tmp_path, config)
    probed = train(tmp_path, config, "training.probe_every=7")
    assert not (plain / "probes.csv").exists()
    assert len(pd.read_csv(probed / "probes.csv")) > 0
    (files, states), (files_p, states_p) = trained_numbers(plain), trained_numbers(probed)
    assert files == files_p
    assert len(states) == 4
    assert_bitwise_equal(states, states_p)


# ---- each measure against a slow direct computation ---------------------------------------------------------------


def tiny():
    """Linear-BN-ReLU-Linear-ReLU-Linear on 16 random examples; unit 0 of the second ReLU never fires."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[3].bias[0] = -100.0
    return model, torch.randn(16, 5), torch.randint(0, 3, (16,))


def by_hand(w, x, y):
    """The tiny model's forward written out: loss and the activations, from its parameters `w` in order."""
    h1 = x @ w[0].T + w[1]
    normed = (h1 - h1.mean(0)) / torch.sqrt(h1.var(0, unbiased=False) + 1e-5) * w[2] + w[3]
    a1 = normed.clamp(min=0)
    h2 = a1 @ w[4].T + w[5]
    a2 = h2.clamp(min=0)
    out = a2 @ w[6].T + w[7]
    return -out.log_softmax(1)[torch.arange(len(y)), y].mean(), h1, a1, h2, a2


def hand_gradient(w, x, y):
    w = [t.detach().clone().requires_grad_() for t in w]
    loss = by_hand(w, x, y)[0]
    return float(loss.detach()), [t.detach() for t in torch.autograd.grad(loss, w)]


def norm(ts):
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in ts))


def test_each_measure_equals_a_direct_computation():
    model, x, y = tiny()
    lr = 0.1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    rows = probes.measure(model, x, y, lr, seed=0, step=1)
    got = {(layer, name): value for layer, name, value in rows}
    assert len(got) == len(rows)
    assert torch.equal(torch.get_rng_state(), rng)  # no draw of the global RNG moved
    assert_bitwise_equal(model.state_dict(), before)  # weights and BN statistics untouched
    assert all(p.grad is None for p in model.parameters())

    w = [p.detach().clone() for p in model.parameters()]
    loss, g = hand_gradient(w, x, y)
    _, h1, a1, h2, a2 = by_hand(w, x, y)
    want = {
        ("linear1", "act_mean"): float(h1.mean()),
        ("linear1", "act_std"): float(h1.std()),
        ("linear1", "dead_fraction"): float((a1 == 0).all(0).float().mean()),
        ("linear2", "act_mean"): float(h2.mean()),
        ("linear2", "act_std"): float(h2.std()),
        ("linear2", "dead_fraction"): 0.25,  # unit 0
        ("linear1", "grad_norm"): norm([g[0]]),
        ("linear2", "grad_norm"): norm([g[4]]),
        ("model", "loss"): loss,
        ("model", "grad_norm"): norm(g),
    }
    assert float((a2 == 0).all(0).float().mean()) == 0.25
    losses, changes, betas = [], [], []
    for k in range(5):
        eta = lr * 0.5 * 2 ** (0.75 * k)
        moved_loss, moved = hand_gradient([a - eta * b for a, b in zip(w, g)], x, y)
        change = norm([a - b for a, b in zip(g, moved)])
        losses.append(moved_loss)
        changes.append(change)
        betas.append(change / (eta * norm(g)))
    want |= {("model", "loss_min"): min(losses), ("model", "loss_max"): max(losses)}
    want |= {("model", "grad_change_min"): min(changes), ("model", "grad_change_max"): max(changes)}
    want[("model", "beta_smoothness")] = max(betas)
    # ICS of linear2 (parameter 4): the parameters before it (linear1 and BN) take the step -lr * g first
    shifted = hand_gradient([a - lr * b if i < 4 else a for i, (a, b) in enumerate(zip(w, g))], x, y)[1][4]
    want[("linear2", "ics_l2")] = norm([g[4] - shifted])
    want[("linear2", "ics_cos")] = float(torch.dot(g[4].flatten(), shifted.flatten()) / g[4].norm() / shifted.norm())
    assert losses[0] != losses[-1] and want[("linear2", "ics_l2")] > 0  # the steps move something
    assert set(got) == set(want)  # no ICS for linear1: no parameter comes before it
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-7), key


def test_update_ratio_is_the_step_relative_to_the_weights():
    model, _, _ = tiny()
    before = probes.weights(model)
    with torch.no_grad():
        model[0].weight.add_(0.01)
        model[3].weight.mul_(1.5)
    got = dict(((layer, value) for layer, _, value in probes.update_ratios(model, before)))
    assert got["linear1"] == pytest.approx(0.01 * math.sqrt(30) / float(before[0].norm()), rel=1e-5)
    assert got["linear2"] == pytest.approx(0.5, rel=1e-6)


def test_probe_batch_is_fixed_per_seed():
    a, b = probes.batch_indices(100, 3, 10), probes.batch_indices(100, 3, 10)
    assert torch.equal(a, b) and len(set(a.tolist())) == 10
    assert not torch.equal(a, probes.batch_indices(100, 4, 10))


# ---- probes.csv, resume, compare -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    return train(tmp_path_factory.mktemp("probed"), CONFIG, "training.probe_every=20")


def test_probes_csv_has_a_row_per_probe_step_layer_and_measure(probed):
    frame = pd.read_csv(probed / "probes.csv")
    assert list(frame.columns) == ["variant", "seed", "epoch", "step", "layer", "measure", "value"]
    # digits: 1,437 training images, 45 batches of 32 an epoch: probes after steps 20, 40 (epoch 1), 60, 80 (epoch 2)
    for (_variant, _seed), trial in frame.groupby(["variant", "seed"]):
        assert sorted(set(zip(trial.epoch, trial.step))) == [(1, 20), (1, 40), (2, 60), (2, 80)]
        at = trial[trial.step == 60]
        assert set(at.layer) == {"linear1", "linear2", "model"}  # the default MLP: hidden [64, 32]
        assert set(at[at.layer == "model"].measure) == MODEL_MEASURES
        layer_measures = {"act_mean", "act_std", "dead_fraction", "grad_norm", "update_ratio"}
        assert set(at[at.layer == "linear1"].measure) == layer_measures
        assert set(at[at.layer == "linear2"].measure) == layer_measures | {"ics_l2", "ics_cos"}
        assert len(at) == 5 + 7 + 7
    bn = frame[(frame.variant == "batchnorm") & (frame.measure == "dead_fraction")]
    assert np.isfinite(frame.value).all() and (bn.value >= 0).all() and (bn.value <= 1).all()


def test_resume_cuts_probes_back_to_the_checkpoint(tmp_path, probed):
    """A run stopped after writing an epoch's rows but before its checkpoint moved on (here: epoch 2's rows of a
    whole run appended, with wrong probe values) resumes into probes.csv equal to the uninterrupted run's."""
    run_dir = train(tmp_path, dict(CONFIG, training=CONFIG["training"] | {"epochs": 1}), "training.probe_every=20")
    for name in ("batches.csv", "epochs.csv", "evals.csv", "probes.csv"):
        lines = (probed / name).read_text().splitlines()[1:]
        header = (probed / name).read_text().splitlines()[0].split(",")
        epoch = header.index("epoch")
        later = [line.split(",") for line in lines if line.split(",")[epoch] == "2"]
        if name == "probes.csv":
            later = [fields[:-1] + ["12345"] for fields in later]
        with open(run_dir / name, "a") as f:
            f.write("".join(",".join(fields) + "\n" for fields in later))
    ok("run", "--resume", run_dir, "--set", "training.epochs=2", "-q")
    assert (run_dir / "probes.csv").read_text() == (probed / "probes.csv").read_text()
    assert (run_dir / "batches.csv").read_text() == (probed / "batches.csv").read_text()


def test_compare_probes_reports_the_means_and_paired_intervals_of_probes_csv(probed, tmp_path):
    output = ok("compare", probed, "--probes", "--plot", tmp_path / "probes.png")
    assert (tmp_path / "probes.png").stat().st_size > 10_000
    frame = pd.read_csv(probed / "probes.csv")
    for layer, measure in [("model", "loss"), ("linear1", "act_std"), ("linear2", "dead_fraction")]:
        at = frame[(frame.layer == layer) & (frame.measure == measure)]
        for step in (20, 40, 80):  # first, middle, last
            wide = at[at.step == step].pivot(index="seed", columns="variant", values="value")
            d = wide.batchnorm - wide.plain
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
            cells = [
                f"{wide.batchnorm.mean():.3g}",
                f"{wide.plain.mean():.3g}",
                f"{d.mean():+.3g}",
                f"[{d.mean() - half:+.2g}, {d.mean() + half:+.2g}]",
            ]
            lines = [line.split() for line in output.splitlines()]
            assert any(line[-6:] == [str(step), *cells[:3], *cells[3].split()] for line in lines), (layer, step)
    assert ok("compare", probed, "--probes", "--baseline", "batchnorm").count("Δ: plain - batchnorm") == 1


def test_compare_probes_without_probes_is_one_line(tmp_path):
    run_dir = train(tmp_path, dict(CONFIG, seeds=[0], training=CONFIG["training"] | {"epochs": 1}))
    result = invoke("compare", run_dir, "--probes")
    assert result.exit_code == 2
    assert "with probes.csv; run with --set training.probe_every=N" in result.output


@pytest.mark.parametrize("engine", ["stacked", "graph"])
def test_other_engines_give_way_to_eager(engine):
    config = Config(name="x", training={"probe_every": 5})
    assert choose.unsupported(config, engine) == "training.probe_every: probes are taken by the eager engine"
    assert choose.unsupported(config, "eager") is None
    assert choose.choose(config, torch.device("cpu"), "stacked") == "eager"
    assert choose.unsupported(Config(name="x"), "stacked") is None
    swept = Config(name="x", sweep={"training.probe_every": [5, 10]})
    assert choose.choose(swept, torch.device("cpu"), "stacked") == "eager"
