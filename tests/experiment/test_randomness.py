"""Models that draw random numbers while they train (dropout; Python's `random` and numpy in a forward, in eval
mode too): two runs, --jobs 2, a run grown by epochs or by seeds, a stacked run (trained by eager) and a run
without mid-epoch evaluations all write the same numbers, because the global RNGs are seeded per trial and epoch
(`seeding.seed_globals`) and an evaluation puts them back."""

import json
import textwrap

import pytest
import yaml
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.cli import app

NETS = '''
import random

import numpy as np
import torch
from torch import nn


def dropout_net(num_classes, in_shape, norm_layer, width=8):
    """A conv block and a linear head behind dropout (torch's global RNG, in training mode only)."""
    return nn.Sequential(nn.Conv2d(in_shape[0], width, 3, padding=1, bias=False), norm_layer(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * width, num_classes))


class Noise(nn.Module):
    """Draws from Python's random, numpy's and torch's global RNGs in every forward, in eval mode too; its scale,
    which no reset_parameters covers, is drawn from Python's and numpy's when the model is built."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5 + random.random() * float(np.random.rand())))

    def forward(self, x):
        noise = (0.5 + random.random()) * (0.5 + float(np.random.rand()))
        return self.scale * noise * x + 0.1 * torch.randn_like(x)


def noisy_net(num_classes, in_shape, norm_layer, width=8):
    return nn.Sequential(nn.Conv2d(in_shape[0], width, 3, padding=1, bias=False), norm_layer(width), nn.ReLU(),
                         Noise(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, num_classes))
'''
MODULE = "randomness_nets"
ROW_FILES = ("batches.csv", "epochs.csv", "evals.csv")


def config(net):
    return tiny_config(
        "noisy",
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 2, "batch_size": 32, "log_every": 0, "eval_every": 20},
        model={"kind": "factory", "factory": f"{MODULE}:{net}"},
        variants=[{"name": "bn", "norm": "batchnorm"}, {"name": "plain", "norm": "none"}],
    )


def ok(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def rows(run_dir, name):
    """The file's lines, without epochs.csv's wall-clock seconds column."""
    lines = (run_dir / name).read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in lines] if name == "epochs.csv" else lines


def run(config_file, out, *args):
    """`bnbench run` of the config into `out`; the run folder."""
    ok("run", config_file, "--out", out, "-q", *args)
    (run_dir,) = (out / "noisy").iterdir()
    return run_dir


def assert_same_rows(run_dir, reference, files=ROW_FILES):
    for name in files:
        assert rows(run_dir, name) == rows(reference, name), name


@pytest.fixture(scope="module", autouse=True)
def nets(tmp_path_factory):
    """The factory module, importable here and in forked --jobs workers."""
    folder = tmp_path_factory.mktemp("nets")
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(NETS))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield


# noisy_net draws from torch's global RNG too (and from Python's and numpy's): dropout_net in the slow tier only
@pytest.fixture(scope="module", params=[pytest.param("dropout_net", marks=pytest.mark.slow), "noisy_net"])
def net(request):
    return request.param


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, net):
    path = tmp_path_factory.mktemp(net) / "noisy.yaml"
    path.write_text(yaml.safe_dump(config(net)))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_file):
    """Two seeds, two variants, two epochs, --jobs 1: what every other way of making it must equal."""
    return run(config_file, tmp_path_factory.mktemp("reference"))


def test_two_runs_are_identical(config_file, reference, tmp_path):
    assert_same_rows(run(config_file, tmp_path), reference)


def test_jobs_2_is_identical(config_file, reference, tmp_path):
    assert_same_rows(run(config_file, tmp_path, "--jobs", "2"), reference)


def test_grown_by_an_epoch_is_identical(config_file, reference, tmp_path):
    run_dir = run(config_file, tmp_path, "--set", "training.epochs=1")
    ok("run", "--resume", run_dir, "--set", "training.epochs=2", "-q")
    assert_same_rows(run_dir, reference)


def test_grown_by_a_seed_is_identical(config_file, reference, tmp_path):
    run_dir = run(config_file, tmp_path, "--seeds", "0")
    ok("run", "--resume", run_dir, "--seeds", "0-1", "-q")
    assert_same_rows(run_dir, reference)


def test_stacked_engine_leaves_the_model_to_eager_which_is_identical(config_file, reference, tmp_path):
    run_dir = run(config_file, tmp_path, "--set", "training.engine=stacked")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["engine"] == "eager" and meta["engine_note"].startswith("stacked -> eager")
    assert_same_rows(run_dir, reference)


def test_evaluations_shift_no_training_draw(config_file, reference, tmp_path):
    """Without the mid-epoch evaluations (where noisy_net draws too), training and the epoch-end numbers are the
    same: an evaluation puts the RNGs back as it found them."""
    run_dir = run(config_file, tmp_path, "--set", "training.eval_every=null")
    assert_same_rows(run_dir, reference, ("batches.csv", "epochs.csv"))
