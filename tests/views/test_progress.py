"""The live display: the whole run's bar counts every trial's steps (resumed epochs included) and its trials;
the decode of an image folder reports its progress."""

import io

import numpy as np
from rich.console import Console
from support.images import write_folder

from bnbench.engines.events import EpochResult, Progress
from bnbench.experiment.config import DatasetConfig
from bnbench.experiment.data import load_dataset
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand
from bnbench.rundir.log import NOTE
from bnbench.views.progress import RichReporter


def result(epoch, diverged=None):
    return EpochResult(epoch, np.zeros(3, np.float32), 0.5, 0.9, 0.4, 0.8, 1.0, diverged)


def test_the_run_bar_counts_steps_and_trials(tmp_path):
    config = validate(
        {"name": "p", "seeds": [0, 1], "dataset": {"name": "digits"}, "training": {"epochs": 2, "batch_size": 10}},
        "p.yaml",
    )
    trials = expand(config)  # 4 trials of 2 epochs x 10 steps (100 examples)
    out = io.StringIO()
    with RichReporter(Console(file=out, force_terminal=True, width=120), verbosity=NOTE) as reporter:
        reporter.started(tmp_path, trials, {0: 2, 1: 1}, train_size=100)  # trial 0 finished, trial 1 half
        run = reporter.bar.tasks[reporter.run_task]
        assert (run.completed, run.total) == (30, 80) and run.description == "run: 1/4 trials"
        reporter.progress(Progress(trial=1, epoch=2, batch=4, batches=10, running_loss=0.3))
        reporter.progress(Progress(trial=2, epoch=1, batch=6, batches=10, running_loss=0.3))
        assert run.completed == 30 + 4 + 6
        reporter.epoch_done(trials[1], result(2))
        reporter.epoch_done(trials[2], result(1, diverged=7))  # its remaining steps will never run
        assert run.completed == 20 + 20 + 20 and run.description == "run: 3/4 trials"
    assert "diverged at step 7" in out.getvalue()  # shown even when -q hides the finished trials' lines
    assert ": done," not in out.getvalue()


def test_decoding_an_image_folder_reports_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_folder(tmp_path / "imgs", per_class=4)
    heard = []
    load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")), lambda *a: heard.append(a))
    assert heard[-1][1:] == (12, 12) and heard[0][1:] == (0, 12) and "decoding" in heard[0][0]
    heard.clear()
    load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")), lambda *a: heard.append(a))
    assert heard == []  # from the cache: nothing to decode
