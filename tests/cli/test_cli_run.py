"""`bnbench run` and `bnbench list` end to end on the digits set, through typer's CliRunner."""

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bnbench.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def digits_run(tmp_path, write_config, digits_config):
    result = invoke("run", write_config(digits_config), "--out", tmp_path / "results")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "results" / "t-digits").iterdir()
    return run_dir, result.output


def test_run_writes_the_documented_files(digits_run):
    run_dir, output = digits_run
    assert {"config.yaml", "meta.json", "batches.csv", "epochs.csv"} <= {p.name for p in run_dir.iterdir()}
    batches, epochs = pd.read_csv(run_dir / "batches.csv"), pd.read_csv(run_dir / "epochs.csv")
    assert list(batches.columns) == ["variant", "seed", "epoch", "batch", "step", "loss"]
    assert list(epochs.columns) == [
        "variant",
        "seed",
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "seconds",
    ]
    per_epoch = -(-1437 // 16)  # every mini-batch is recorded, not every log_every-th
    assert len(batches) == 2 * 2 * 2 * per_epoch
    one = batches[(batches.variant == "plain") & (batches.seed == 1)]
    assert one.step.tolist() == list(range(1, 2 * per_epoch + 1))
    assert one[one.epoch == 2].batch.tolist() == list(range(1, per_epoch + 1))
    assert len(epochs) == 8 and epochs.test_acc.between(0, 1).all()
    train_means = batches.groupby(["variant", "seed", "epoch"]).loss.mean()
    indexed = epochs.set_index(["variant", "seed", "epoch"]).train_loss
    assert (train_means - indexed).abs().max() < 1e-6  # epochs.csv's train_loss is the mean of the batch rows
    assert epochs[epochs.epoch == 2].test_acc.min() > 0.7  # it really learns the digits


def test_run_logs_tutorial_lines_and_records_meta(digits_run):
    run_dir, output = digits_run
    log = (run_dir / "run.log").read_text()  # the tutorial's lines: always in run.log, on the terminal with -vv
    assert "batchnorm-s0 epoch 1: Loss after mini-batch    20:" in log
    assert "Loss after mini-batch    80:" in log and "Loss after mini-batch" not in output
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["trials_done"] == meta["trials_total"] == 4
    assert {
        "torch",
        "torchvision",
        "python",
        "platform",
        "device",
        "device_name",
        "command",
        "started",
        "ended",
        "git_commit",
        "bnbench",
    } <= set(meta)
    assert all(t["status"] == "complete" and t["epochs"] == 2 for t in meta["trials"])
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["training"]["epochs"] == 2 and resolved["baseline"] == "plain"
    assert resolved["model"]["hidden"] == [64, 32]  # defaults are written out in full


def test_sweep_values_become_columns(tmp_path, write_config, digits_config):
    digits_config |= {"seeds": [0], "sweep": {"optimizer.lr": [1e-3, 1e-2]}, "training": {"epochs": 1}}
    result = invoke("run", write_config(digits_config), "--out", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "t-digits").iterdir()
    epochs = pd.read_csv(run_dir / "epochs.csv")
    assert list(epochs.columns[:3]) == ["variant", "seed", "optimizer.lr"]
    assert sorted(epochs["optimizer.lr"]) == [1e-3, 1e-3, 1e-2, 1e-2]


def test_shipped_config_runs_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "quick", "--set", "training.epochs=1", "--seeds", "3", "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "results" / "quick-digits").iterdir()
    assert set(pd.read_csv(run_dir / "epochs.csv").seed) == {3}
    listing = invoke("list")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert [line.split()[0] for line in lines[2:11]] == [
        "batchsize",
        "cnn",
        "lr",
        "mlp",
        "norms",
        "placement",
        "quick",
        "recipe",
        "resnet",
    ]  # the names `bnbench run` takes
    for text in ("mlp-cifar10", "placement-cifar10", f"quick-digits/{run_dir.name}", "complete", "2/2"):
        assert text in listing.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "nosuch.yaml"], "nosuch.yaml: no such config file or shipped config"),
        (["run", "quick", "--set", "training.epoch=1"], "did you mean 'epochs'?"),
        (["run", "quick", "--seeds", "1,x"], "--seeds 1,x: 'x' is not a seed or a range"),
        (["run", "quick", "--device", "tpu"], "device: String should match pattern"),
        (
            ["run", "quick", "--set", "dataset.name=imagefolder", "--set", "dataset.root=/nonexistent"],
            "dataset.root: '/nonexistent/train' does not exist",
        ),
        (["list", "--configs", "/nonexistent"], "--configs: '/nonexistent' is not a folder"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, args, expected):
    result = invoke(*args, *(["--out", tmp_path] if args[0] == "run" else []))
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output
    assert not list(tmp_path.rglob("batches.csv"))  # nothing half-written
