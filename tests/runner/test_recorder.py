"""The runner's record of a finished epoch, as a unit: rows first, then the checkpoint, then meta.json (a crash
between any two leaves a resumable folder), each trial's record in meta.json, and an engine's failure noted once."""

import json

import numpy as np
import pytest
from support.configs import tiny_config

from bnbench.engines.events import EpochResult
from bnbench.experiment.config import Config
from bnbench.experiment.trials import expand
from bnbench.rundir import checkpoint_files, rows
from bnbench.rundir import meta as run_meta
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta
from bnbench.rundir.schema import ROW_FILES
from bnbench.rundir.trial_state import TrialState
from bnbench.runner import execute
from bnbench.runner.state import Run

CONFIG = Config.model_validate(tiny_config("recorder", training={"epochs": 2, "batch_size": 16, "log_every": 0}))


class Notes:
    def __init__(self):
        self.notes, self.epochs = [], []

    def note(self, message):
        self.notes.append(message)

    def epoch_done(self, trial, result):
        self.epochs.append((trial.key, result.epoch))


@pytest.fixture
def run(tmp_path) -> Run:
    trials = expand(CONFIG)
    folder = RunFolder(tmp_path)
    folder.write_config(CONFIG)
    for name in ROW_FILES:
        rows.write_header(tmp_path, trials, name)
    return Run(
        tmp_path,
        CONFIG,
        trials,
        Meta({"status": "running", "engine": "eager"}),
        {t.index: TrialState() for t in trials},
    )


def result(epoch: int, fallback=None) -> EpochResult:
    return EpochResult(epoch, np.array([0.5, 0.25], np.float32), 0.4, 0.9, 0.3, 0.95, 1.5, fallback=fallback)


def test_rows_then_checkpoint_then_meta(run, monkeypatch):
    order = []
    for module, name in ((rows, "append_epoch"), (checkpoint_files, "save"), (run_meta, "write")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name, **k: (order.append(name), real(*a, **k))[1])
    reporter = Notes()
    execute._Recorder(run, reporter).epoch_done(0, result(1), checkpoint_files.serialize({"w": 1}))
    assert order == ["append_epoch", "save", "write"]
    assert reporter.epochs == [(run.trials[0].key, 1)]


def test_meta_json_records_each_trial_and_the_run_keeps_its_own_fields(run):
    recorder = execute._Recorder(run, Notes())
    for epoch in (1, 2):
        recorder.epoch_done(0, result(epoch), checkpoint_files.serialize({"w": epoch}))
    written = json.loads(run.folder.meta_file.read_text())
    assert list(written) == ["status", "engine", "trials_done", "trials_total", "trials"]
    assert written["trials_done"] == 1 and written["trials_total"] == len(run.trials)
    first = written["trials"][0]
    assert first["key"] == run.trials[0].key and first["epochs"] == 2 and first["steps"] == 4
    assert first["status"] == "complete" and first["last_finite_loss"] == 0.25
    assert "trials" not in run.meta.document  # they are added as it is written, not kept in the run's fields
    assert checkpoint_files.summary(run.dir, run.trials[0])["epochs"] == 2


def test_an_engines_failure_is_recorded_per_trial_and_noted_once(run):
    reporter = Notes()
    recorder = execute._Recorder(run, reporter)
    for index in (0, 1):
        recorder.epoch_done(index, result(1, fallback="graph -> eager"), checkpoint_files.serialize({}))
    assert run.meta.fields.engine_fallback == {t.key: "graph -> eager" for t in run.trials[:2]}
    assert len(reporter.notes) == 1 and reporter.notes[0].startswith(f"{run.trials[0].key}: graph -> eager;")
