"""Checkpoint retention (`training.checkpoints: resume | final | none`, `bnbench prune`): which files a run keeps,
that final weights are the trained model, that a pruned run resumes and grows by seeds to the rows of an
uninterrupted run, and that growing it by epochs is refused."""

import json
import shutil

import pandas as pd
import pytest
import torch
import yaml
from support.cli_calls import invoke, ok, refused
from support.configs import tiny_config

from bnbench.engines.eager import Trainer
from bnbench.experiment.data import load_dataset
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand
from bnbench.rundir.checkpoint_files import deserialize
from bnbench.rundir.checkpoints import size_text
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.lock import RunLock
from bnbench.runner import execute as runner

CONFIG = tiny_config("keep", training={"epochs": 2, "batch_size": 32, "log_every": 0, "eval_every": 20})
KEYS = ["batchnorm-s0", "batchnorm-s1", "plain-s0", "plain-s1"]
ROW_FILES = ("batches.csv", "epochs.csv", "evals.csv")


def run(config_file, out, keep, *args):
    ok("run", config_file, "--out", out, "-q", "--set", f"training.checkpoints={keep}", *args)
    (run_dir,) = (out / "keep").iterdir()
    return run_dir


def files(run_dir):
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


def rows(run_dir):
    """The row files, without epochs.csv's wall-clock seconds."""
    texts = {name: (run_dir / name).read_text().splitlines() for name in ROW_FILES}
    texts["epochs.csv"] = [line.rsplit(",", 1)[0] for line in texts["epochs.csv"]]
    return texts


def meta(run_dir):
    return json.loads((run_dir / "meta.json").read_text())


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "keep.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def runs(config_file, tmp_path_factory):
    """One complete run per setting."""
    return {keep: run(config_file, tmp_path_factory.mktemp(keep), keep) for keep in ("resume", "final", "none")}


@pytest.fixture
def copy_of(runs, tmp_path):
    def copy(keep):
        return shutil.copytree(runs[keep], tmp_path / "keep" / runs[keep].name)

    return copy


def test_each_setting_keeps_its_files(runs):
    assert files(runs["resume"]) == [f"{key}.pt" for key in KEYS]
    assert files(runs["final"]) == [f"{key}.weights.pt" for key in KEYS]
    assert files(runs["none"]) == []
    assert rows(runs["final"]) == rows(runs["resume"]) == rows(runs["none"])  # what is kept changes no number


def test_final_weights_are_the_trained_model_without_the_optimizer(runs):
    config = validate(RunFolder(runs["final"]).raw_config(), "config.yaml")
    data = load_dataset(config.dataset)
    epochs = pd.read_csv(runs["final"] / "epochs.csv")
    for trial in expand(config):
        weights = torch.load(runs["final"] / "checkpoints" / f"{trial.key}.weights.pt", weights_only=True)
        full = torch.load(runs["resume"] / "checkpoints" / f"{trial.key}.pt", weights_only=True)
        model = deserialize(full["state"])["model"]
        assert list(weights) == list(model) and all(torch.equal(weights[k], model[k]) for k in model)
        trainer = Trainer(trial, data, torch.device("cpu"))
        trainer.model.load_state_dict(weights)
        last = epochs[(epochs.variant == trial.variant.name) & (epochs.seed == trial.seed)].iloc[-1]
        assert trainer.evaluate()[1] == pytest.approx(last.test_acc, abs=1e-6)
    size = (runs["final"] / "checkpoints" / "plain-s0.weights.pt").stat().st_size
    assert size < 0.5 * (runs["resume"] / "checkpoints" / "plain-s0.pt").stat().st_size  # Adam keeps two moments


def interrupted(config_file, out, monkeypatch, *args):
    """A run stopped (as by Ctrl-C) after its third trial-epoch: its first trial has finished, its second has
    finished one of two epochs. Returns the run folder and those two trials' keys."""
    done, record = [], runner._Recorder.epoch_done

    def stop_after_three(self, index, result, state):
        record(self, index, result, state)
        done.append(index)
        if len(done) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner._Recorder, "epoch_done", stop_after_three)
    result = invoke("run", config_file, "--out", out, "-q", *args)
    monkeypatch.undo()
    assert result.exit_code == 130, result.output
    (run_dir,) = (out / "keep").iterdir()
    trials = meta(run_dir)["trials"]
    first, second = trials[done[0]], trials[done[2]]
    assert (first["status"], second["status"]) == ("complete", "running")
    return run_dir, first["key"], second["key"]


@pytest.mark.parametrize("keep", ["final", "none"])
def test_an_interrupted_pruned_run_resumes_to_the_rows_of_an_uninterrupted_one(
    config_file, runs, tmp_path, monkeypatch, keep
):
    """The finished trial is pruned, the unfinished one keeps its resume checkpoint; --resume continues it."""
    run_dir, first, second = interrupted(config_file, tmp_path, monkeypatch, "--set", f"training.checkpoints={keep}")
    assert files(run_dir) == sorted([f"{first}.weights.pt"] * (keep == "final") + [f"{second}.pt"])
    ok("run", "--resume", run_dir, "-q")
    assert rows(run_dir) == rows(runs[keep]) and files(run_dir) == files(runs[keep])
    assert meta(run_dir)["status"] == "complete"


def test_a_pruned_run_grows_by_seeds_but_refuses_more_epochs_in_one_line(copy_of):
    run_dir = copy_of("final")
    before = (run_dir / "meta.json").read_bytes()
    line = refused("run", "--resume", run_dir, "--set", "training.epochs=3")
    assert line == (
        f"error: --set training.epochs=3: {run_dir} keeps only the final weights of its finished trials, not the "
        f"optimizer state more epochs continue from; start a new run with --set training.epochs=3"
    )
    assert (run_dir / "meta.json").read_bytes() == before
    ok("run", "--resume", run_dir, "--seeds", "0-2", "-q")
    assert files(run_dir) == sorted(f"{key}.weights.pt" for key in [*KEYS, "batchnorm-s2", "plain-s2"])
    assert [r["status"] for r in meta(run_dir)["trials"]] == ["complete"] * 6


def test_a_resume_prunes_a_finished_trial_that_a_stop_left_unpruned(copy_of, runs):
    """A stop between meta.json recording a trial finished and its pruning leaves its resume checkpoint."""
    run_dir = copy_of("final")
    (run_dir / "checkpoints" / "plain-s0.weights.pt").unlink()
    shutil.copy(runs["resume"] / "checkpoints" / "plain-s0.pt", run_dir / "checkpoints")
    (run_dir / "meta.json").write_text(json.dumps(meta(run_dir) | {"status": "running"}))
    ok("run", "--resume", run_dir, "-q")
    assert files(run_dir) == files(runs["final"]) and rows(run_dir) == rows(runs["final"])
    weights = [
        torch.load(r / "checkpoints" / "plain-s0.weights.pt", weights_only=True) for r in (run_dir, runs["final"])
    ]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])


def test_prune_frees_the_finished_trials_checkpoints_records_it_and_is_idempotent(copy_of, runs):
    run_dir = copy_of("resume")
    full = sum(p.stat().st_size for p in (run_dir / "checkpoints").iterdir())
    weights = sum(p.stat().st_size for p in (runs["final"] / "checkpoints").iterdir())
    said = ok("prune", run_dir)
    assert (
        said
        == f"freed {size_text(full - weights)} from 4 trials; checkpoints: final weights only (cannot grow by epochs)\n"
    )
    assert files(run_dir) == files(runs["final"])
    (record,) = meta(run_dir)["pruned"]
    assert (record["keep"], record["trials"], record["bytes"]) == ("final", 4, full - weights)
    assert "checkpoints: final weights only (cannot grow by epochs)" in ok("show", run_dir)
    assert "keeps only the final weights" in refused("run", "--resume", run_dir, "--set", "training.epochs=3")

    def contents():  # every file but the lock, which says when its holder took it
        folders = [*run_dir.iterdir(), *(run_dir / "checkpoints").iterdir()]
        return {p.name: p.read_bytes() for p in folders if p.is_file() and p.name != "lock"}

    before = contents()
    assert ok("prune", run_dir).startswith("freed 0 B from 0 trials;")
    assert contents() == before

    assert ok("prune", run_dir, "--keep", "none") == (
        f"freed {size_text(weights)} from 4 trials; checkpoints: none for finished trials (cannot grow by epochs)\n"
    )
    assert files(run_dir) == [] and "nothing to do" in ok("run", "--resume", run_dir)


def test_prune_refuses_a_run_in_use_and_a_bad_keep(copy_of):
    run_dir = copy_of("resume")
    lock = RunLock(run_dir).acquire()
    try:
        assert "in use by pid" in refused("prune", run_dir)
    finally:
        lock.release()
    assert files(run_dir) == [f"{key}.pt" for key in KEYS]
    assert (
        refused("prune", run_dir, "--keep", "resume") == "error: --keep resume: choose final (the weights only) or none"
    )


def test_prune_of_a_stopped_run_keeps_what_its_unfinished_trials_resume_from(config_file, runs, tmp_path, monkeypatch):
    run_dir, first, second = interrupted(config_file, tmp_path, monkeypatch)
    assert ok("prune", run_dir).startswith("freed ") and " from 1 trial;" in ok("prune", run_dir, "--keep", "none")
    assert files(run_dir) == [f"{second}.pt"]
    ok("run", "--resume", run_dir, "-q")
    assert rows(run_dir) == rows(runs["resume"])


def test_checkpoints_is_one_setting_per_run_and_a_known_word(config_file, tmp_path):
    line = refused("run", config_file, "--out", tmp_path, "--set", "training.checkpoints=all")
    assert "training.checkpoints" in line and "resume" in line and "final" in line and "none" in line
    sweep = {**CONFIG, "sweep": {"training.checkpoints": ["resume", "none"]}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    assert "'training.checkpoints' cannot be swept" in refused("run", tmp_path / "sweep.yaml", "--out", tmp_path)


def test_runs_that_differ_only_in_what_they_keep_are_pooled(config_file, runs, tmp_path):
    other = run(config_file, tmp_path, "none", "--seeds", "2")
    said = ok("compare", runs["final"], other)
    assert "pooled 2 runs" in said
