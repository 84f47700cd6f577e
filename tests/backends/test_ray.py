"""--backend ray on a real Ray cluster (started here as its own process group, stopped by its PID, never with
`ray stop`, which would stop every Ray process on the machine): the same files as --jobs 1; a worker SIGKILLed
mid-trial is trained again from the driver's last epoch; a SIGTERMed driver resumes, and so does one stopped by
Ctrl-C in a terminal. And a Ray instance started by the run itself (no --address) streams progress and epochs as
the in-process backend computes them."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from support.configs import tiny_config
from support.terminal import Terminal, ctrl_c_twice, paused_ctrl_c_twice, stop_cleanly
from typer.testing import CliRunner

from bnbench.cli import app

CONFIG = tiny_config("onray", training={"epochs": 3, "batch_size": 4, "log_every": 0, "eval_every": 100})
FILES = ("batches.csv", "epochs.csv", "evals.csv")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster: `ray start --head --block` in its own session, token auth in its own temp dir (Ray
    2.60 turns auth on when ~/.ray/auth_token exists, and a driver that connects by address then fails), bound to
    127.0.0.1. Yields (address, environment for drivers)."""
    pytest.importorskip("ray")
    tmp = Path(tempfile.mkdtemp(prefix="bnray", dir="/tmp"))  # short: Ray's Unix socket paths must fit 108 bytes
    token = tmp / "token"
    token.write_text(secrets.token_hex(32))
    env = os.environ | {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    ray = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [
            str(ray),
            "start",
            "--head",
            "--port=0",
            "--num-cpus=2",
            f"--temp-dir={tmp}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
        ],
        env=env,
        stdout=open(tmp / "head.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while not (tmp / "ray_current_cluster").is_file() or not (tmp / "ray_current_cluster").read_text().strip():
            assert head.poll() is None and time.time() < deadline, (tmp / "head.log").read_text()
            time.sleep(0.2)
        yield (tmp / "ray_current_cluster").read_text().strip(), env
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        for pid in _pids(str(tmp).encode()):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def _pids(marker: bytes) -> list[int]:
    """This user's processes whose command line holds `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int(proc.name) != os.getpid() and marker in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:  # gone meanwhile
            pass
    return found


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "onray.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    """The files of `--jobs 1`, this process."""
    out = tmp_path_factory.mktemp("reference")
    result = CliRunner().invoke(app, ["run", str(config_file), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (out / "onray").iterdir()
    return {name: (run_dir / name).read_text() for name in FILES}


def same_files(run_dir: Path, reference: dict) -> None:
    """batches.csv and evals.csv byte for byte; epochs.csv too, but for its last column (wall seconds)."""
    for name, text in reference.items():
        drop = (lambda t: [line.rsplit(",", 1)[0] for line in t.splitlines()]) if name == "epochs.csv" else str
        assert drop((run_dir / name).read_text()) == drop(text), name


def driver(cluster, out, *args):
    address, env = cluster
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bnbench",
            "run",
            *map(str, args),
            "--out",
            str(out),
            "-q",
            "--backend",
            "ray",
            "--address",
            address,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def first_checkpoint(out: Path, process) -> Path:
    deadline = time.time() + 120
    while not list(out.glob("onray/*/checkpoints/*.pt")):
        assert process.poll() is None and time.time() < deadline, process.communicate()[0]
        time.sleep(0.02)
    (run_dir,) = (out / "onray").iterdir()
    return run_dir


@pytest.mark.slow
def test_a_cluster_run_writes_what_jobs_1_writes(cluster, config_file, reference, tmp_path):
    process = driver(cluster, tmp_path, config_file)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    (run_dir,) = (tmp_path / "onray").iterdir()
    same_files(run_dir, reference)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["trials_done"] == 4


@pytest.mark.slow
def test_a_killed_worker_is_trained_again_from_its_last_epoch(cluster, config_file, reference, tmp_path):
    """SIGKILL of the worker process that trains a unit (as the OOM killer would): the unit is submitted again
    from the last epoch the driver recorded, and the run ends with the files of an uninterrupted one."""
    process = driver(cluster, tmp_path, config_file)
    run_dir = first_checkpoint(tmp_path, process)
    victims = _pids(b"ray::bnbench_unit")
    assert victims
    os.kill(victims[0], signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    one_line = output.replace("\n", " ")
    assert "note: Ray lost the worker training" in one_line and "(retry 1 of 3)" in one_line, output
    same_files(run_dir, reference)


@pytest.mark.slow
def test_a_terminated_driver_resumes_on_the_cluster(cluster, config_file, reference, tmp_path):
    process = driver(cluster, tmp_path, config_file)
    run_dir = first_checkpoint(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 143, output
    assert f"Resume with:\n  bnbench run --resume {run_dir}" in output
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    process = driver(cluster, tmp_path, run_dir, "--resume")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    same_files(run_dir, reference)


@pytest.mark.parametrize("how", [ctrl_c_twice, paused_ctrl_c_twice], ids=["twice", "paused-twice"])
@pytest.mark.slow
def test_a_driver_stopped_by_ctrl_c_in_a_terminal_ends_cleanly_and_resumes(
    cluster, config_file, reference, tmp_path, how
):
    """As a user stops it, in a terminal with the live display, twice (the second Ctrl-C while the first is
    handled; the first after the driver was paused 3 s): exit status 130, the resume command, no traceback (a
    second Ctrl-C used to end it with status 1, or without the resume command)."""
    address, env = cluster
    with Terminal("run", config_file, "--out", tmp_path, "--backend", "ray", "--address", address, env=env) as terminal:
        run_dir = first_checkpoint(tmp_path, terminal.process)
        stop_cleanly(terminal, run_dir, how)
    process = driver(cluster, tmp_path, run_dir, "--resume")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    same_files(run_dir, reference)


@pytest.mark.slow
def test_a_ray_instance_of_its_own_streams_what_the_local_backend_computes(tmp_path):
    """No --address: the run starts a Ray instance on this machine. Progress events reach the driver during each
    epoch, before that epoch's result, and every epoch equals the in-process backend's."""
    pytest.importorskip("ray")
    import torch

    from bnbench.backends.dispatch import Job
    from bnbench.backends.local import Local
    from bnbench.backends.ray import Ray
    from bnbench.experiment.config import Config
    from bnbench.experiment.data import load_dataset
    from bnbench.experiment.trials import expand

    config = Config.model_validate(CONFIG | {"seeds": [0], "training": CONFIG["training"] | {"epochs": 2}})
    trials = expand(config)
    job = Job(tmp_path, config, load_dataset(config.dataset), torch.device("cpu"), "eager")
    local, remote, notes = Recorded(), Recorded(), []
    Local().train(job, [[t] for t in trials], local)
    Ray(None, None, notes.append).train(job, [[t] for t in trials], remote)
    assert notes == []
    assert sorted(remote.epochs) == sorted(local.epochs)
    for key, result in local.epochs.items():
        np.testing.assert_array_equal(remote.epochs[key].losses, result.losses)
        assert (remote.epochs[key].test_loss, remote.epochs[key].evals) == (result.test_loss, result.evals)
    for trial in trials:  # every progress event, each epoch's before its result, in order
        events = [[e for e in backend.events if e[1] == trial.index] for backend in (local, remote)]
        assert events[1] == events[0] and [e[0] for e in events[0]].count("progress") >= 6


class Recorded:
    """A Receiver that keeps what it is handed, in order."""

    def __init__(self):
        self.events, self.epochs = [], {}

    def progress(self, p):
        self.events.append(("progress", p.trial, p.epoch, p.batch))

    def epoch_done(self, trial, result, state):
        self.events.append(("epoch", trial, result.epoch))
        self.epochs[trial, result.epoch] = result


@pytest.mark.parametrize(
    "args, said",
    [
        (["--backend", "ray", "--jobs", "2"], "--jobs 2: not used with --backend ray"),
        (["--address", "auto"], "--address: only with --backend ray"),
        (["--gpus-per-trial", "0.5"], "--gpus-per-trial: only with --backend ray"),
        (["--backend", "ray"], "--backend ray: Ray is not installed; install it with: pip install 'bnbench[ray]'"),
    ],
    ids=["jobs", "address", "gpus", "not-installed"],
)
def test_ray_options_are_refused_in_one_line_before_a_run_folder(write_config, tmp_path, monkeypatch, args, said):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    result = CliRunner().invoke(app, ["run", str(write_config(CONFIG)), "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert said in result.output.replace("\n", "") and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_until_decided_takes_its_rounds_on_the_cluster(cluster, config_file, tmp_path):
    """A sequential run trains each round on the cluster, and ends with the seeds, files and decisions of one
    trained in this process."""
    rounds = ("--until-decided", "--set", "training.epochs=1", "--max-seeds", "10", "--alpha", "0.001")
    here = CliRunner().invoke(app, ["run", str(config_file), *rounds, "--out", str(tmp_path / "here"), "-q"])
    assert here.exit_code == 0, here.output
    process = driver(cluster, tmp_path / "ray", config_file, *rounds)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    (mine,), (theirs,) = (tmp_path / "here" / "onray").iterdir(), (tmp_path / "ray" / "onray").iterdir()
    assert "look 2 (10 seeds)" in (theirs / "run.log").read_text()  # a second round, grown on the cluster
    assert "after 10 seeds" in output  # its decision, printed once, at the end
    same_files(theirs, {name: (mine / name).read_text() for name in FILES})
    records = [json.loads((d / "meta.json").read_text())["sequential"]["record"] for d in (mine, theirs)]
    assert records[0] == records[1] and records[0]["finished"]


@pytest.mark.slow
def test_a_tune_trains_its_three_stages_on_the_cluster(cluster, config_file, tmp_path):
    """`bnbench tune --backend ray`: each stage trained on the cluster holds the files of a tune trained in this
    process, and the choices are the same."""
    args = ["tune", str(config_file), "--grid", "optimizer.lr=1e-3,1e-2", "--tune-seeds", "0-1", "--seeds", "5,6"]
    args += ["--set", "dataset.validation=0.2", "--set", "training.epochs=1", "-q"]
    here = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "here")])
    assert here.exit_code == 0, here.output
    address, env = cluster
    command = [sys.executable, "-m", "bnbench", *args, "--out", str(tmp_path / "ray"), "--backend", "ray"]
    process = subprocess.run([*command, "--address", address], env=env, capture_output=True, text=True)
    assert process.returncode == 0, process.stdout + process.stderr
    (mine,), (theirs,) = (tmp_path / "here" / "onray").iterdir(), (tmp_path / "ray" / "onray").iterdir()
    for stage in ("tuning", "tuned", "shared"):
        same_files(theirs / stage, {name: (mine / stage / name).read_text() for name in FILES})
    choices = [json.loads((d / "tune.json").read_text())["choices"] for d in (mine, theirs)]
    assert choices[0] == choices[1] and set(choices[0]) == {"batchnorm", "plain"}
