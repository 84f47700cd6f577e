"""Runs with a validation split and augmentation (GitHub issue 32), end to end: the split in meta.json, val_loss and
val_acc in the rows, equal to a direct evaluation of the checkpoint; the same files from the stacked engine, from
--jobs 2, after a stop and resume, after a grow; `show`, `list`, `compare --metric val_acc`, the TensorBoard export
and the per-seed export say so; a run without the new fields writes what it always did."""

import importlib.util
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from support.cli_calls import invoke, ok
from support.configs import tiny_config
from support.interrupt import interrupted_when

from bnbench.engines.eager import Trainer
from bnbench.experiment.config import Config
from bnbench.experiment.data import load_dataset
from bnbench.experiment.trials import expand
from bnbench.rundir import checkpoint_files

DATASET = {"name": "digits", "validation": 0.1, "augment": ["crop", "flip"]}
CONFIG = tiny_config(
    "val", training={"epochs": 2, "batch_size": 32, "log_every": 10, "eval_every": 20}, dataset=DATASET
)
ROW_FILES = ("batches.csv", "epochs.csv", "evals.csv")


def rows(run_dir, name):
    """The file's lines, without epochs.csv's wall-clock seconds (its last column, with or without val columns)."""
    lines = (run_dir / name).read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in lines] if name == "epochs.csv" else lines


def run_of(out, name="val"):
    (run_dir,) = (out / name).iterdir()
    return run_dir


def weights(run_dir):
    """Each trial's model state from its checkpoint."""
    config = Config.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    return {t.key: checkpoint_files.load(run_dir, t)["model"] for t in expand(config)}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "val.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def whole(tmp_path_factory, config_file):
    """An uninterrupted run, seeds 0 and 1, 2 epochs: what every other way of making it must equal."""
    out = tmp_path_factory.mktemp("whole")
    ok("run", config_file, "--out", out, "-q")
    return run_of(out)


def test_the_run_records_its_split_and_writes_val_columns(whole):
    assert (whole / "epochs.csv").read_text().splitlines()[0] == (
        "variant,seed,epoch,train_loss,train_acc,test_loss,test_acc,val_loss,val_acc,seconds"
    )
    assert (whole / "evals.csv").read_text().splitlines()[0] == (
        "variant,seed,epoch,step,test_loss,test_acc,val_loss,val_acc"
    )
    data = json.loads((whole / "meta.json").read_text())["data"]
    assert list(data) == ["validation"] and data["validation"]["count"] == 144
    assert sum(data["validation"]["per_class"]) == 144 and len(data["validation"]["sha256"]) == 32
    config = yaml.safe_load((whole / "config.yaml").read_text())
    assert config["dataset"] == {**DATASET, "root": "./data", "download": True, "normalize": False}


def test_val_rows_are_a_direct_evaluation_of_the_checkpoint(whole):
    config = Config.model_validate(yaml.safe_load((whole / "config.yaml").read_text()))
    data = load_dataset(config.dataset)
    last = {line.split(",")[0] + line.split(",")[1]: line for line in rows(whole, "evals.csv")[1:]}
    for trial in expand(config):
        trainer = Trainer(trial, data, torch.device("cpu"))
        trainer.load_state_dict(checkpoint_files.load(whole, trial))
        test_loss, test_acc, val_loss, val_acc = trainer.evaluate()
        fields = last[f"{trial.variant.name}{trial.seed}"].split(",")
        assert fields[3] == str(trainer.step)
        assert fields[4:] == [format(v, ".9g") for v in (test_loss, test_acc, val_loss, val_acc)]


def test_the_stacked_engine_writes_what_eager_does(tmp_path, config_file, whole):
    ok("run", config_file, "--out", tmp_path, "-q", "--set", "training.engine=stacked")
    run_dir = run_of(tmp_path)
    assert json.loads((run_dir / "meta.json").read_text())["engine"] == "stacked"
    assert rows(run_dir, "evals.csv") == rows(whole, "evals.csv")
    stacked, eager = weights(run_dir), weights(whole)
    for name in eager:
        for key, value in eager[name].items():
            assert torch.equal(value, stacked[name][key]), (name, key)  # bitwise


def test_jobs_2_writes_what_jobs_1_does(tmp_path, config_file, whole):
    ok("run", config_file, "--out", tmp_path, "-q", "--jobs", "2")
    for name in ROW_FILES:
        assert rows(run_of(tmp_path), name) == rows(whole, name), name


def test_a_stopped_run_resumes_to_the_uninterrupted_one(tmp_path, config_file, whole):
    def ready(run_dir):
        try:
            return (run_dir / "epochs.csv").read_text().count("\n") >= 4  # mid-run: 3 epochs done
        except FileNotFoundError:
            return False

    run_dir = interrupted_when(ready, tmp_path / "val", "run", config_file, "--out", tmp_path, "-q")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    ok("run", "--resume", run_dir, "-q")
    for name in ROW_FILES:
        assert rows(run_dir, name) == rows(whole, name), name


def test_grown_runs_equal_one_run_made_whole(tmp_path, config_file):
    ok("run", config_file, "--out", tmp_path / "whole", "-q", "--seeds", "0-2", "--set", "training.epochs=3")
    ok("run", config_file, "--out", tmp_path / "grown", "-q")
    grown = run_of(tmp_path / "grown")
    ok("run", "--resume", grown, "--seeds", "0-2", "-q")
    ok("run", "--resume", grown, "--set", "training.epochs=3", "-q")
    for name in ROW_FILES:
        assert rows(grown, name) == rows(run_of(tmp_path / "whole"), name), name


def test_show_list_compare_and_exports_name_the_split(tmp_path, whole):
    shown = ok("show", whole)
    assert "data: 144 held out of training for validation (dataset.validation: 0.1); augmented by crop, flip" in (
        " ".join(shown.split())
    )
    assert "val acc %" in shown
    listed = ok("list", "--results", whole.parent.parent, "--format", "json")
    assert json.loads(listed)["runs"][0]["validation"] == 144
    assert "val acc" in ok("compare", whole, "--metric", "val_acc")
    table = ok("compare", whole, "--format", "csv", "--metric", "val_loss")
    assert "val_loss_mean" in table.splitlines()[0] and "val_acc_mean" not in table.splitlines()[0]
    per_seed = ok("compare", whole, "--format", "csv", "--per-seed", "--metric", "val_acc")
    assert per_seed.count(",val_acc,") == 4  # a row per trial
    if importlib.util.find_spec("tensorboard") is None:
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ok("export", whole, "--tensorboard", tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb" / "val" / whole.name / "plain" / "seed0"))
    events.Reload()
    assert {"val/loss", "val/acc", "epoch/val_loss", "epoch/val_acc"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("val/acc")) == len(rows(whole, "evals.csv")[1:]) // 4


def test_a_run_without_the_new_fields_writes_what_it_always_did(tmp_path, config_file):
    plain = tiny_config("old", training={"epochs": 1, "batch_size": 64, "log_every": 10, "eval_every": 20})
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(plain))
    ok("run", tmp_path / "old.yaml", "--out", tmp_path, "-q")
    run_dir = run_of(tmp_path, "old")
    assert (run_dir / "epochs.csv").read_text().splitlines()[0] == (
        "variant,seed,epoch,train_loss,train_acc,test_loss,test_acc,seconds"
    )
    assert (run_dir / "evals.csv").read_text().splitlines()[0] == "variant,seed,epoch,step,test_loss,test_acc"
    assert (
        (run_dir / "config.yaml")
        .read_text()
        .startswith(
            "name: old\nseeds:\n- 0\n- 1\ndataset:\n  name: digits\n  root: ./data\n  download: true\n  normalize: "
            "false\nmodel:\n"
        )
    )
    meta = json.loads((run_dir / "meta.json").read_text())
    assert "data" not in meta
    assert "data" not in json.loads(ok("show", run_dir, "--format", "json"))
    assert "data:" not in ok("show", run_dir) and "val" not in ok("list", "--results", tmp_path)
    assert "validation" not in json.loads(ok("list", "--results", tmp_path, "--format", "json"))["runs"][0]
    assert "val_" not in ok("compare", run_dir, "--format", "csv").splitlines()[0]
    assert "final val" not in ok("compare", run_dir, "--full")
    refused = invoke("compare", run_dir, "--metric", "val_acc")
    assert refused.exit_code != 0 and "no run compared has a validation split" in refused.output
    refused = invoke("run", tmp_path / "old.yaml", "--out", tmp_path / "u", "--until-decided", "--metric", "val_acc")
    assert refused.exit_code != 0 and "--metric val_acc: the config has no validation split" in refused.output


def test_a_resume_on_other_subsets_is_refused(tmp_path, config_file):
    ok("run", config_file, "--out", tmp_path, "-q", "--set", "training.epochs=1")
    run_dir = run_of(tmp_path)
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["data"]["validation"]["sha256"] = "0" * 32  # as if the data set under the run had changed
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    result = invoke("run", "--resume", run_dir, "--set", "training.epochs=2")
    assert result.exit_code != 0 and "subsets (dataset.limit, validation, test_limit) differ" in result.output


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_one(tmp_path):
    """A real SIGKILL mid-run, with a torn last row in epochs.csv, as tests/runner/test_resume.py kills its runs."""
    config = tiny_config("val", training={"epochs": 3, "batch_size": 4, "log_every": 0, "eval_every": 100})
    (tmp_path / "val.yaml").write_text(yaml.safe_dump(config | {"dataset": DATASET}))
    ok("run", tmp_path / "val.yaml", "--out", tmp_path / "whole", "-q")
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", "run", tmp_path / "val.yaml", "--out", tmp_path / "killed", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "killed").glob("val/[!.]*/epochs.csv")):
        time.sleep(0.005)
    epochs = next((tmp_path / "killed").glob("val/[!.]*/epochs.csv"))
    while time.time() < deadline and epochs.read_text().count("\n") < 5:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run_dir = epochs.parent
    with open(epochs, "a") as f:
        f.write("plain,1,3,2.1")  # a row cut off mid-write
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"
    ok("run", "--resume", run_dir, "-q")
    for name in ROW_FILES:
        assert rows(run_dir, name) == rows(run_of(tmp_path / "whole"), name), name


def test_until_decided_decides_on_the_validation_metric_when_asked(tmp_path):
    dataset = {"name": "digits", "validation": 0.1}
    config = tiny_config("seq", [0], training={"epochs": 1, "batch_size": 64, "log_every": 0}, dataset=dataset)
    (tmp_path / "seq.yaml").write_text(yaml.safe_dump(config))
    output = ok("run", tmp_path / "seq.yaml", "--out", tmp_path, "--until-decided", "--metric", "val_acc", "-q")
    assert "batchnorm vs plain: better val acc" in output
    assert json.loads((run_of(tmp_path, "seq") / "meta.json").read_text())["sequential"]["plan"]["metric"] == "val_acc"
