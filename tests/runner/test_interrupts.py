"""A stopped run ends within seconds, cleanly, and resumes exactly; nothing hangs.

`bnbench run --jobs 2` runs on a pseudo-terminal of its own, as in an 80-column tmux pane (the live display on),
and is stopped again and again: Ctrl-C (the terminal's, to the whole foreground process group), SIGTERM (to the
group, as Slurm sends it, or to the main process alone, as Kubernetes does), with the main process paused for 3 s
first while its workers fill their pipes, twice in a row, and with a worker stopped so that the second Ctrl-C
comes while the first is still being handled. Each stop must end the run within seconds, with exit status 130
(143 for SIGTERM), the resume command and no traceback, and leave no process behind on the terminal; each chain of
stops, in a fresh run, a resumed one and a grow (`--seeds`), must end, resumed, with the files of a run that never
stopped. Also: a model factory that sets its own thread count trains in --jobs workers (it used to hang them in
their first convolution), and the verdict process of a killed run prints nothing.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
import torch
import yaml
from support.configs import tiny_config
from support.terminal import (
    Terminal,
    children,
    comm,
    ctrl_c,
    ctrl_c_during_the_stop,
    ctrl_c_then_sigterm,
    ctrl_c_twice,
    kill_session,
    paused_ctrl_c,
    paused_ctrl_c_twice,
    paused_sigterm,
    sigterm,
    sigterm_to_main,
    stop_cleanly,
)

CONFIG = tiny_config("stops", training={"epochs": 3, "batch_size": 8, "log_every": 0, "eval_every": 100})
GROWN = "0-2"  # every chain grows its run to these seeds, at one of its stops
FILES = ("batches.csv", "epochs.csv", "evals.csv")


def finish(*args, timeout: float = 600) -> str:
    """`python -m bnbench ARGS` to its end, in a session of its own: its output; one that has not ended within
    `timeout` seconds hangs, and fails (its processes are killed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(process.pid)
        pytest.fail(f"bnbench {' '.join(map(str, args))}: still running after {timeout} s")
    assert process.returncode == 0, output
    return output


def rows(run_dir: Optional[Path], name: str = "epochs.csv") -> int:
    try:  # polled while the run writes
        return (run_dir / name).read_text().count("\n") - 1
    except (FileNotFoundError, TypeError):
        return 0


def same_files(run_dir: Path, reference: dict) -> None:
    """batches.csv and evals.csv byte for byte; epochs.csv too, but for its last column (wall seconds)."""
    for name, text in reference.items():
        drop = (lambda t: [line.rsplit(",", 1)[0] for line in t.splitlines()]) if name == "epochs.csv" else str
        assert drop((run_dir / name).read_text()) == drop(text), name


# ---- chains of stops ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """One process of a chain: `bnbench run` (the first), `--resume RUN`, or a grow (`--resume RUN --seeds`),
    stopped by `how` once its display shows a trial and the run has `epochs` trial-epochs in epochs.csv."""

    how: Callable[[Terminal], tuple[int, str]]
    epochs: int = 0
    grow: bool = False


CHAINS = {
    "ctrl-c": [
        Stop(ctrl_c),
        Stop(ctrl_c, 2),
        Stop(paused_ctrl_c, 4),
        Stop(ctrl_c, 7, grow=True),
        Stop(ctrl_c),
        Stop(paused_ctrl_c, 11),
        Stop(ctrl_c, 15),
    ],
    "sigterm": [
        Stop(sigterm, 1),
        Stop(paused_sigterm, 3),
        Stop(sigterm_to_main, 6, grow=True),
        Stop(sigterm_to_main),
        Stop(paused_sigterm, 10),
        Stop(sigterm, 15),
    ],
    "twice": [
        Stop(ctrl_c_twice),
        Stop(ctrl_c_during_the_stop, 3),
        Stop(ctrl_c_then_sigterm, 6, grow=True),
        Stop(ctrl_c_twice, 8),
        Stop(ctrl_c_during_the_stop, 10),
        Stop(paused_ctrl_c_twice, 12),
        Stop(ctrl_c_twice, 15),
    ],
}  # 20 stops, each of a process started for it; a trial-epoch takes about 0.5 s, of 18 when the run is whole


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "stops.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory) -> dict:
    """The files of one run of the grown seeds that nobody stopped."""
    out = tmp_path_factory.mktemp("reference")
    finish("run", config_file, "--seeds", GROWN, "--out", out, "-q", "--jobs", "2")
    (run_dir,) = (out / "stops").iterdir()
    return {name: (run_dir / name).read_text() for name in FILES}


def stopped(terminal: Terminal, stop: Stop, out: Path) -> Path:
    """Stop the run on `terminal` as `stop` says, once it is that far; returns the run folder."""
    deadline = time.time() + 300
    runs = lambda: list((out / "stops").glob("[0-9]*"))  # noqa: E731
    while not (terminal.showing(" epoch ") and runs() and rows(runs()[0]) >= stop.epochs):
        assert terminal.process.poll() is None and time.time() < deadline, terminal.output[-3000:]
        time.sleep(0.02)
    (run_dir,) = runs()
    stop_cleanly(terminal, run_dir, stop.how)
    return run_dir


@pytest.mark.parametrize("chain", CHAINS)
@pytest.mark.slow
def test_every_stop_ends_in_seconds_cleanly_and_the_run_resumes_exactly(config_file, reference, tmp_path, chain):
    run_dir = None
    for stop in CHAINS[chain]:
        args = ["run", config_file, "--out", tmp_path] if run_dir is None else ["run", "--resume", run_dir]
        with Terminal(*args, *["--seeds", GROWN] * stop.grow, "--jobs", "2") as terminal:
            run_dir = stopped(terminal, stop, tmp_path)
    finish("run", "--resume", run_dir, "-q", "--jobs", "2")
    same_files(run_dir, reference)


# ---- other hangs -------------------------------------------------------------------------------------------------

THREADED_NET = '''
import torch
from torch import nn


def make_net(num_classes, in_shape, norm_layer, width=8):
    """Sets its own thread count, and sizes its head with a forward pass, as factories do."""
    torch.set_num_threads(2)
    features = nn.Sequential(nn.Conv2d(in_shape[0], width, 3, padding=1), norm_layer(width), nn.ReLU())
    flat = features(torch.zeros(2, *in_shape)).flatten(1).shape[1]
    return nn.Sequential(features, nn.Flatten(), nn.Linear(flat, num_classes))
'''


@pytest.fixture
def threaded_net(tmp_path, monkeypatch) -> str:
    """A module with THREADED_NET in a temporary working directory, as a user's file next to their config."""
    name = f"threaded_net_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(THREADED_NET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:make_net"


@pytest.mark.slow
def test_a_factory_that_sets_its_thread_count_trains_in_jobs_workers(threaded_net, tmp_path):
    """It used to hang both workers for good in their first convolution: a forked process's main thread inherits
    GNU OpenMP's pool of the main process's threads, without the threads, and waits for them in a parallel region
    of more than one thread."""
    config = CONFIG | {
        "model": {"kind": "factory", "factory": threaded_net},
        "training": CONFIG["training"] | {"epochs": 1, "batch_size": 64},
    }
    (tmp_path / "threads.yaml").write_text(yaml.safe_dump(config))
    finish("run", "threads.yaml", "--out", "out", "-q", "--jobs", "2", timeout=120)
    (run_dir,) = (tmp_path / "out" / "stops").iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["trials_done"] == 4


def test_a_factory_cannot_change_the_thread_count_trials_train_with(threaded_net):
    """One thread per trial (`backends.dispatch.cpu_settings`): what a factory sets is undone as it returns."""
    from bnbench.experiment.model_variants import ModelConfig, VariantConfig
    from bnbench.nets.models import build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_model(
            ModelConfig(kind="factory", factory=threaded_net),
            VariantConfig(name="bn", norm="batchnorm"),
            (1, 8, 8),
            10,
            0,
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_the_verdict_process_of_a_killed_run_ends_silently(config_file, tmp_path):
    """The run is SIGKILLed while its verdict process works out the lines it asked for (held there by SIGSTOP):
    the verdict process used to find the run gone as it answered, and print a BrokenPipeError traceback into the
    terminal (3 of 6 times)."""
    short = ["--seeds", "0", "--set", "training.epochs=1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", "run", config_file, *short, "--out", tmp_path, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while not (verdict := [p for p in children(process.pid) if comm(p) == "bnbench-verdict"]):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.01)
        os.kill(verdict[0], signal.SIGSTOP)
        while not any(
            json.loads(m.read_text()).get("status") == "complete" for m in tmp_path.glob("stops/*/meta.json")
        ):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # the run has sent its folder to the verdict process and waits for the lines
        process.kill()
        process.wait()
        try:
            os.kill(verdict[0], signal.SIGCONT)
        except ProcessLookupError:  # it died with the run
            pass
        output, _ = process.communicate(timeout=60)  # to the end: the verdict process holds the output too
    except BaseException:
        kill_session(process.pid)  # what the failed test left running
        raise
    assert "Traceback" not in output and "Error" not in output, output
