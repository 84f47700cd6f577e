"""Crash safety: SIGKILL at several moments then --resume gives files identical to an uninterrupted run;
Ctrl-C stops cleanly; a changed config refuses to resume; a held lock refuses a second process."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.store import RunLock

CONFIG = {"name": "crash", "seeds": [0, 1], "dataset": {"name": "digits"}, "device": "cpu",
          "optimizer": {"name": "adam", "lr": 1.0e-3},
          "training": {"epochs": 3, "batch_size": 4, "log_every": 0, "eval_every": 100}}
BATCHES = 3 * 2 * 2 * (1437 // 4 + 1)


def bnbench(*args, **kwargs):
    # SIGINT back to its default: a test run started in the background inherits it ignored, and Python then
    # installs no KeyboardInterrupt handler
    return subprocess.Popen([sys.executable, "-m", "bnbench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def finish(*args):
    process = bnbench(*args)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def same_files(run_dir, reference):
    """batches.csv and evals.csv byte for byte; epochs.csv too, but for its last column (wall seconds)."""
    for name, text in reference.items():
        drop = (lambda t: [line.rsplit(",", 1)[0] for line in t.splitlines()]) if name == "epochs.csv" else str
        assert drop((run_dir / name).read_text()) == drop(text), name
    return True


def rows(path):
    return path.read_text().count("\n") - 1 if path.exists() else 0


def run_dir_of(out):
    (run_dir,) = (out / "crash").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "crash.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    finish("run", config_file, "--out", out, "-q")
    run_dir = run_dir_of(out)
    return {name: (run_dir / name).read_text() for name in ("batches.csv", "epochs.csv", "evals.csv")}


def kill_when(process, run_dir_parent, ready, tear=False):
    """SIGKILL `process` as soon as ready(run_dir) is true; optionally leave a torn last line, as a kill in
    the middle of a CSV write does."""
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list(run_dir_parent.glob("crash/*/batches.csv"))
        if runs and ready(runs[0].parent):
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run_dir = run_dir_of(run_dir_parent)
    if tear:
        for name in ("batches.csv", "epochs.csv"):
            with open(run_dir / name, "a") as f:
                f.write("plain,1,3,17")  # a row cut off mid-write
    return run_dir


@pytest.mark.parametrize("moment, tear", [
    (lambda d: rows(d / "batches.csv") > 0, False),  # during the first trial's first epoch
    (lambda d: rows(d / "epochs.csv") >= 4, True),  # mid-run, with torn rows in both CSVs
    (lambda d: rows(d / "batches.csv") >= BATCHES * 0.7, False),  # in the last trials
], ids=["first-epoch", "mid-run-torn-write", "late"])
def test_kill_and_resume_equals_an_uninterrupted_run(config_file, reference, tmp_path, moment, tear):
    run_dir = kill_when(bnbench("run", config_file, "--out", tmp_path, "-q"), tmp_path, moment, tear)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"
    finish("run", config_file, "--out", tmp_path, "--resume", "-q")  # newest partial run of this config
    assert same_files(run_dir, reference)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "complete"


def test_killed_twice_then_resumed_by_folder(config_file, reference, tmp_path):
    run_dir = kill_when(bnbench("run", config_file, "--out", tmp_path, "-q"), tmp_path,
                        lambda d: rows(d / "epochs.csv") >= 2)
    kill_when(bnbench("run", run_dir, "--resume", "-q"), tmp_path, lambda d: rows(d / "epochs.csv") >= 7)
    finish("run", run_dir, "--resume", "--jobs", "2", "-q")
    assert same_files(run_dir, reference)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(config_file, reference, tmp_path):
    process = bnbench("run", config_file, "--out", tmp_path, "-q")
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("crash/*/checkpoints/*.pt")):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    run_dir = run_dir_of(tmp_path)
    assert process.returncode == 130
    assert f"Resume with: bnbench run --resume {run_dir}" in output.replace("\n", "")
    assert "Traceback" not in output
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    finish("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


def test_changed_config_refuses_to_resume(config_file, tmp_path):
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(CONFIG))
    run_dir = kill_when(bnbench("run", edited, "--out", tmp_path, "-q"), tmp_path,
                        lambda d: rows(d / "batches.csv") > 0)
    edited.write_text(yaml.safe_dump(CONFIG | {"training": CONFIG["training"] | {"epochs": 4}}))
    result = CliRunner().invoke(app, ["run", str(run_dir), "--resume"])
    assert result.exit_code == 2
    assert "changed since the run began (training.epochs: 3 -> 4)" in result.output
    assert "Traceback" not in result.output


def test_a_held_lock_refuses_and_a_dead_holder_does_not_block(config_file, tmp_path):
    run_dir = kill_when(bnbench("run", config_file, "--out", tmp_path, "-q"), tmp_path,
                        lambda d: rows(d / "batches.csv") > 0)  # the killed process's lock is stale now
    lock = RunLock(run_dir).acquire()
    try:
        result = CliRunner().invoke(app, ["run", str(run_dir), "--resume"])
        assert result.exit_code == 2
        assert f"in use by pid {os.getpid()} on" in result.output
    finally:
        lock.release()
    finish("run", run_dir, "--resume", "-q")


def test_two_runs_of_one_config_get_separate_folders(config_file, tmp_path):
    small = ["--set", "training.epochs=1", "--seeds", "0"]
    processes = [bnbench("run", config_file, "--out", tmp_path, "-q", *small) for _ in range(2)]
    for p in processes:
        assert p.wait(timeout=300) == 0
    runs = list((tmp_path / "crash").iterdir())
    assert len(runs) == 2
    assert runs[0].joinpath("batches.csv").read_text() == runs[1].joinpath("batches.csv").read_text()


def test_stacked_run_killed_between_trials_of_a_group_resumes_exactly(config_file, tmp_path):
    """A stacked group records its trials one by one; a kill in between leaves them an epoch apart."""
    stacked = ["--set", "training.engine=stacked"]
    finish("run", config_file, "--out", tmp_path / "reference", "-q", *stacked)
    reference = {name: (run_dir_of(tmp_path / "reference") / name).read_text()
                 for name in ("batches.csv", "epochs.csv", "evals.csv")}
    out = tmp_path / "killed"
    run_dir = kill_when(bnbench("run", config_file, "--out", out, "-q", *stacked), out,
                        lambda d: rows(d / "epochs.csv") % 4 != 0 or rows(d / "epochs.csv") >= 8)
    finish("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)
