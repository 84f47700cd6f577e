"""`bnbench export RUN --tensorboard DIR` on a real digits run (2 variants x 2 seeds x 2 batch sizes, 2 epochs,
evaluated every 10 steps), read back with TensorBoard's own reader and checked against the CSVs, row by row."""

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from support.cli_calls import invoke
from support.configs import tiny_config

from bnbench.views import tensorboard

exports = pytest.mark.skipif(  # the extra's own tests: the one without it runs anyway
    importlib.util.find_spec("tensorboard") is None, reason="TensorBoard is an optional extra: bnbench[tensorboard]"
)
TAGS = {
    "train/loss",
    "test/loss",
    "test/acc",
    "epoch/train_loss",
    "epoch/train_acc",
    "epoch/test_loss",
    "epoch/test_acc",
    "epoch/seconds",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    config = tiny_config(
        "t-digits", training={"epochs": 2, "log_every": 5, "eval_every": 10}, sweep={"training.batch_size": [64, 128]}
    )
    (tmp / "exp.yaml").write_text(yaml.safe_dump(config))
    result = invoke("run", tmp / "exp.yaml", "--out", tmp / "results", "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp / "results" / "t-digits").iterdir()
    return run_dir


def read_back(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def trial_folders(root):
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("events.out.tfevents.*"))


@exports
def test_every_row_of_every_trial_is_a_scalar_at_its_step(run_dir, tmp_path):
    result = invoke("export", run_dir, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 0, result.output
    root = tmp_path / "tb" / "t-digits" / run_dir.name
    assert result.stdout == f"wrote: {root}\nview: tensorboard --logdir {tmp_path / 'tb'}\n"
    assert trial_folders(root) == [
        f"training.batch_size={b}/{v}/seed{s}" for b in (128, 64) for v in ("batchnorm", "plain") for s in (0, 1)
    ]
    batches, epochs, evals = (pd.read_csv(run_dir / f"{name}.csv") for name in ("batches", "epochs", "evals"))
    for (b, v, s), own_b in batches.groupby(["training.batch_size", "variant", "seed"]):
        scalars = read_back(root / f"training.batch_size={b}" / v / f"seed{s}")
        assert set(scalars) == TAGS
        own_e = epochs[(epochs["training.batch_size"] == b) & (epochs.variant == v) & (epochs.seed == s)]
        own_v = evals[(evals["training.batch_size"] == b) & (evals.variant == v) & (evals.seed == s)]
        ends = own_b.groupby("epoch").step.max().loc[own_e.epoch].to_numpy()
        assert len(own_b) == 2 * -(-1437 // b) and len(own_v) > len(own_e) == 2  # every 10 steps and epoch ends
        expected = {"train/loss": (own_b.step, own_b.loss)}
        expected |= {f"test/{c[5:]}": (own_v.step, own_v[c]) for c in ("test_loss", "test_acc")}
        expected |= {f"epoch/{c}": (ends, own_e[c]) for c in tensorboard.EPOCH_COLUMNS}
        for tag, (steps, values) in expected.items():
            assert [e.step for e in scalars[tag]] == list(steps), tag
            assert np.array([e.value for e in scalars[tag]]) == pytest.approx(values.to_numpy(), rel=1e-6), tag


@exports
def test_a_run_exported_before_is_refused_and_left_as_it_was(run_dir, tmp_path):
    assert invoke("export", run_dir, "--tensorboard", tmp_path).exit_code == 0
    root = tmp_path / "t-digits" / run_dir.name
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = invoke("export", f"t-digits/{run_dir.name}", "--results", run_dir.parent.parent, "--tensorboard", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --tensorboard {tmp_path}: {root} already holds an export of this run; delete that folder to "
        f"export it again, or pass another --tensorboard folder\n"
    )
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_without_tensorboard_one_line_and_nothing_written(run_dir, tmp_path, monkeypatch):
    for module in ("tensorboard", "tensorboard.compat.proto.event_pb2", "tensorboard.summary.writer.record_writer"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as when the package is not installed
    result = invoke("export", run_dir, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 2
    assert result.stderr == "error: --tensorboard needs TensorBoard: pip install 'bnbench[tensorboard]'\n"
    assert not (tmp_path / "tb").exists()


@exports
def test_a_failed_export_leaves_nothing_to_refuse_later(run_dir, tmp_path, monkeypatch):
    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tensorboard.EventFile, "write", full)
    result = invoke("export", run_dir, "--tensorboard", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"error: --tensorboard {tmp_path}: cannot write (No space left on device)\n"
    assert list((tmp_path / "t-digits").iterdir()) == []
    monkeypatch.undo()
    assert invoke("export", run_dir, "--tensorboard", tmp_path).exit_code == 0


def test_a_folder_that_is_not_a_run_is_refused_in_one_line(tmp_path):
    result = invoke("export", tmp_path, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path}: not a run folder (no meta.json); pass RESULTS/<name>/<run id> or a run id\n"
    )
    assert not (tmp_path / "tb").exists()
