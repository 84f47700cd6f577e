"""The run folder as one object: its files' names, its config, meta, lock and status, its temporaries; and how
runs are found under a results folder."""

import pytest
from support.configs import tiny_config

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.trials import expand
from bnbench.rundir import checkpoint_files, rows, search
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.lock import stage_run_dir
from bnbench.rundir.meta import Meta
from bnbench.rundir.schema import ROW_FILES
from bnbench.rundir.trial_state import trial_status

CONFIG = Config.model_validate(tiny_config("folder"))


@pytest.fixture
def run(tmp_path) -> RunFolder:
    """A run folder as a new run makes it: config, meta, row headers (no rows)."""
    staging, path, lock = stage_run_dir(tmp_path, CONFIG.name)
    lock.release()
    staging.rename(path)
    folder = RunFolder(path)
    folder.write_config(CONFIG)
    folder.write_meta(Meta({"status": "running", "trials_done": 0}))
    for name in ROW_FILES:
        rows.write_header(path, expand(CONFIG), name)
    return folder


def test_it_knows_its_files(run):
    assert run.config_file == run.path / "config.yaml" and run.meta_file == run.path / "meta.json"
    assert run.log_file == run.path / "run.log" and run.file("batches.csv") == run.path / "batches.csv"
    trial = expand(CONFIG)[0]
    assert run.checkpoint_files(trial) == (
        run.path / "checkpoints" / f"{trial.key}.pt",
        run.path / "checkpoints" / f"{trial.key}.weights.pt",
    )
    assert str(run) == str(run.path)


def test_its_config_and_meta_read_back(run):
    assert run.config() == CONFIG and run.raw_config()["name"] == "folder"
    assert run.has_meta() and run.meta().fields.status == "running"
    assert run.read_bytes("epochs.csv").startswith(b"variant,seed,epoch,")


def test_a_damaged_config_is_one_line_naming_it(run):
    run.config_file.write_text("name: [")
    with pytest.raises(BnbenchError) as e:
        run.config()
    assert str(e.value).startswith(f"{run.config_file}: not readable YAML (")
    run.config_file.write_text("- a list")
    with pytest.raises(BnbenchError, match="expected a mapping of config fields"):
        run.raw_config()


def test_status_is_complete_running_or_partial(run):
    assert run.status(run.meta()) == "partial"  # says running, but no process holds the lock
    lock = run.lock().acquire()
    try:
        assert run.lock().held_elsewhere()
    finally:
        lock.release()
    assert run.status(Meta({"status": "complete"})) == "complete"


def test_trial_status_words():
    assert trial_status(2, 2, False, True, False) == "complete"
    assert trial_status(1, 2, True, True, False) == "diverged"
    assert trial_status(0, 2, False, False, True) == "pending"
    assert trial_status(1, 2, False, True, True) == "running"
    assert trial_status(1, 2, False, True, False) == "stopped"


def test_only_the_temporaries_of_atomic_writes_are_removed(run):
    (run.path / "checkpoints").mkdir()
    left = [run.path / ".meta.json.tmp4242", run.path / "checkpoints" / ".plain-s0.pt.tmp17"]
    users = [run.path / ".notes.txt.tmp1", run.path / "meta.json.tmp5"]
    for path in left + users:
        path.write_text("x")
    run.remove_temporaries()
    assert [p.exists() for p in left + users] == [False, False, True, True]


def test_a_checkpoint_saved_reads_back(run):
    trial = expand(CONFIG)[0]
    assert checkpoint_files.summary(run.path, trial) is None and checkpoint_files.load(run.path, trial) is None
    checkpoint_files.save(run.path, trial, checkpoint_files.serialize({"w": 1}), {"key": trial.key, "epochs": 1})
    assert checkpoint_files.summary(run.path, trial) == {"key": trial.key, "epochs": 1}
    assert checkpoint_files.load(run.path, trial) == {"w": 1}
    checkpoint_files.drop(run.path, trial)
    assert not run.checkpoint_files(trial)[0].exists()


def test_a_damaged_checkpoint_is_one_line(run):
    trial = expand(CONFIG)[0]
    path = run.checkpoint_files(trial)[0]
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BnbenchError) as e:
        checkpoint_files.summary(run.path, trial)
    assert str(e.value).startswith(f"{path}: damaged checkpoint (")


def test_runs_are_found_newest_first_and_by_id(tmp_path, run):
    older = RunFolder(run.path.with_name("20000101-000000"))
    older.path.mkdir()
    older.write_meta(Meta({}))
    (run.path.parent / ".20990101-000000.new").mkdir()  # being set up: not a run yet
    assert search.find_runs([tmp_path]) == [run.path, older.path]
    assert search.holds_run(run.path) and not search.holds_run(tmp_path)
    assert [r.path for r in search.runs_of(tmp_path, CONFIG.name)] == [run.path, older.path]
    assert search.find_run("20000101-000000", search.find_runs([tmp_path])) == older.path
    assert search.find_run(f"folder/{run.path.name}", [older.path]) == run.path  # found beside it
    with pytest.raises(BnbenchError, match="not a run folder, nor the id of a run"):
        search.find_run("nothing", [older.path])
    with pytest.raises(BnbenchError, match="no such folder"):
        search.find_runs([tmp_path / "missing"])
