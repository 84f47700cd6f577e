"""Side effects and faults (issue 34): a --plot path that is a device, git's index lock, exports racing to one
folder, a disk that refuses a write (full, read-only) at the lock, the last meta.json, run.log's verdict, standard
output and prune, odd files where prune expects checkpoints, and the temporaries a killed prune leaves. Each fault
is one line naming the file and what to do, a non-zero exit, and a run folder that still resumes."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.cli_calls import invoke, ok, refused
from support.configs import tiny_config

from bnbench.errors import BnbenchError
from bnbench.rundir import environment, log, store
from bnbench.rundir import lock as run_lock
from bnbench.views import tensorboard

CONFIG = tiny_config("faults", training={"epochs": 1, "batch_size": 32, "log_every": 0, "eval_every": 20})
KEYS = ["batchnorm-s0", "batchnorm-s1", "plain-s0", "plain-s1"]
FULL = "No space left on device"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "faults.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    """A complete run, never faulted."""
    out = tmp_path_factory.mktemp("reference")
    ok("run", config_file, "--out", out, "-q")
    (run_dir,) = (out / "faults").iterdir()
    return run_dir


@pytest.fixture
def run_dir(reference, tmp_path):
    """A copy of the complete run to damage."""
    return shutil.copytree(reference, tmp_path / "faults" / reference.name)


class _Refusing:
    """An open file whose writes that `refuse` picks fail as on a full disk."""

    def __init__(self, file, refuse):
        self._file, self._refuse = file, refuse

    def write(self, data):
        if self._refuse(data):
            raise OSError(errno.ENOSPC, FULL)
        return self._file.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self._file.close()


def full_disk(monkeypatch, module, refuse):
    """`open` in `module` gives files whose write of `data` to `path` fails when refuse(path, data)."""

    def refusing_open(path, *args, **kwargs):
        return _Refusing(open(path, *args, **kwargs), lambda data: refuse(Path(path), data))

    monkeypatch.setattr(module, "open", refusing_open, raising=False)


def refusing(monkeypatch, call: str, error: int, text: str, picks):
    """os.`call` (unlink, replace) fails with `error` for the paths `picks` chooses."""
    real = getattr(os, call)

    def fail(path, *args, **kwargs):
        if picks(Path(path), *map(Path, args)):
            raise OSError(error, text, str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, call, fail)


def meta(run_dir):
    return json.loads((run_dir / "meta.json").read_text())


# ---- side effects ------------------------------------------------------------------------------------------------


def test_a_plot_path_that_is_a_device_or_a_pipe_is_refused_and_nothing_is_written_beside_it(tmp_path):
    assert refused("compare", tmp_path, "--plot", "/dev/null") == (
        "error: --plot /dev/null: not a regular file (a device or named pipe); name a file, e.g. compare.png"
    )
    assert not Path("/dev/null.png").exists()
    os.mkfifo(tmp_path / "figure.png")  # drawing into it would wait for a reader forever
    for path in (tmp_path / "figure", tmp_path / "figure.png"):
        line = refused("compare", tmp_path, "--plot", path)
        assert line == f"error: --plot {tmp_path / 'figure.png'}: not a regular file (a device or named pipe); " + (
            "name a file, e.g. compare.png"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_is_read_without_rewriting_the_checkouts_index(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path), *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    index = tmp_path / ".git" / "index"
    stamp = index.stat().st_mtime + 5
    os.utime(tmp_path / "code.py", (stamp, stamp))  # stale stat data: a plain `git status` rewrites the index
    before = index.stat().st_ino
    assert environment._git_commit(tmp_path) == head
    assert index.stat().st_ino == before and not (tmp_path / ".git" / "index.lock").exists()
    (tmp_path / ".git" / "index.lock").write_text("")  # the user's own git holds the lock meanwhile
    (tmp_path / "code.py").write_text("x = 2\n")
    assert environment._git_commit(tmp_path) == head + "+dirty"


# ---- exports to one folder ---------------------------------------------------------------------------------------


def test_an_export_started_while_another_writes_is_refused_and_the_first_writes_each_trial_once(
    reference, tmp_path, monkeypatch
):
    pytest.importorskip("tensorboard")
    tb, real, refusals = tmp_path / "tb", tensorboard.EventFile.write, []

    def write(self, *args):
        if not refusals:  # the first export is writing its first trial: a second one starts now
            with pytest.raises(BnbenchError) as refusal:
                tensorboard.export(reference, tb)
            refusals.append(str(refusal.value))
        real(self, *args)

    monkeypatch.setattr(tensorboard.EventFile, "write", write)
    ok("export", reference, "--tensorboard", tb)
    assert refusals == [f"--tensorboard {tb}: another export is writing {tb / 'faults'}; wait for it to finish"]
    assert len(sorted(tb.rglob("events.out.tfevents.*"))) == len(KEYS)
    assert [p.name for p in (tb / "faults").iterdir()] == [reference.name]


# ---- a disk that refuses a write ----------------------------------------------------------------------------------


def test_a_full_disk_at_the_lock_is_one_line_and_changes_nothing(run_dir, monkeypatch):
    before = (run_dir / "meta.json").read_bytes()
    full_disk(monkeypatch, run_lock, lambda path, data: path.name == "lock")
    assert refused("prune", run_dir) == (
        f"error: {run_dir / 'lock'}: cannot write ({FULL}); free space, then run the command again"
    )
    monkeypatch.undo()
    assert (run_dir / "meta.json").read_bytes() == before
    assert "freed" in ok("prune", run_dir)  # the lock was let go


def test_a_full_disk_at_a_new_runs_lock_leaves_no_folder(config_file, tmp_path, monkeypatch):
    full_disk(monkeypatch, run_lock, lambda path, data: path.name == "lock")
    line = refused("run", config_file, "--out", tmp_path, "-q")
    assert line.startswith(f"error: {tmp_path / 'faults'}/.") and line.endswith(
        f"/lock: cannot write ({FULL}); free space, then run the command again"
    )
    assert list((tmp_path / "faults").iterdir()) == []


def test_a_full_disk_at_the_last_meta_json_write_is_one_line_and_the_run_resumes(
    config_file, reference, tmp_path, monkeypatch
):
    def completing(path, data):
        return path.name.startswith(".meta.json.tmp") and json.loads(data)["status"] == "complete"

    full_disk(monkeypatch, store, completing)
    result = invoke("run", config_file, "--out", tmp_path, "-q")
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "faults").iterdir()
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {run_dir / 'meta.json'}: cannot write ({FULL}); free space, then resume with: "
        f"bnbench run --resume {run_dir}\n"
    )
    assert meta(run_dir)["status"] != "complete" and not list(run_dir.rglob(".*.tmp*"))
    ok("run", "--resume", run_dir, "-q")
    assert meta(run_dir)["status"] == "complete"
    assert (run_dir / "batches.csv").read_bytes() == (reference / "batches.csv").read_bytes()
    assert (run_dir / "run.log").read_text().endswith("finished: every trial trained\n")


def test_a_full_disk_at_the_verdict_line_is_one_line_and_the_run_is_complete(config_file, tmp_path, monkeypatch):
    full_disk(monkeypatch, log, lambda path, data: "verdict:" in data)
    result = invoke("run", config_file, "--out", tmp_path, "-q")
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "faults").iterdir()
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {run_dir / 'run.log'}: cannot write ({FULL}); free space, then see the verdict of the complete "
        f"run with: bnbench compare {run_dir}\n"
    )
    assert meta(run_dir)["status"] == "complete"
    assert "batchnorm" in ok("compare", run_dir)


def to_full_output(*args):
    """`python -m bnbench ARGS` with its standard output on /dev/full (every write: ENOSPC)."""
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "bnbench", *map(str, args)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )


@pytest.mark.parametrize("args", [["list"], ["--help"], ["run", "-h"]], ids=["list", "help", "command-help"])
def test_a_full_standard_output_is_one_line(tmp_path, args):
    """The help was a traceback (click writes it before any command's error handling runs)."""
    ended = to_full_output(*args, *(["--results", tmp_path] if args == ["list"] else []))
    assert ended.returncode == 2
    assert ended.stderr == f"error: standard output: cannot write ({FULL}); free space, then run the command again\n"


@pytest.mark.slow
def test_a_full_standard_output_during_a_run_blames_the_output_and_the_run_resumes(tmp_path):
    """It said the run folder could not be written ("free space or fix the folder")."""
    ended = to_full_output("run", "quick", "--set", "training.epochs=1", "--seeds", "0", "--out", tmp_path, "-q")
    assert ended.returncode == 2
    (run_dir,) = (tmp_path / "quick-digits").iterdir()
    assert ended.stderr == (
        f"error: standard output: cannot write ({FULL}); every finished epoch is saved: free space where it goes, "
        f"then resume with:\n  bnbench run --resume {run_dir} -q\n"
    )
    assert "batchnorm vs plain" in ok("run", "--resume", run_dir, "-q")


# ---- prune --------------------------------------------------------------------------------------------------------


def test_prune_on_a_read_only_disk_is_one_line_and_pruning_again_finishes(run_dir, monkeypatch):
    checkpoint = run_dir / "checkpoints" / "batchnorm-s1.pt"
    refusing(monkeypatch, "unlink", errno.EROFS, "Read-only file system", lambda path: path == checkpoint)
    assert refused("prune", run_dir, "--keep", "none") == (
        f"error: {checkpoint}: cannot write (Read-only file system); make its file system writable, then prune again"
    )
    monkeypatch.undo()
    left = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoint.name in left and len(left) < len(KEYS)  # pruned up to the refused file
    assert f"from {len(left)} trial" in ok("prune", run_dir, "--keep", "none")
    assert list((run_dir / "checkpoints").iterdir()) == []
    assert "nothing to do" in ok("run", "--resume", run_dir, "-q")


def test_prune_whose_rename_is_refused_is_one_line_and_leaves_no_temporary(run_dir, monkeypatch):
    weights = run_dir / "checkpoints" / "plain-s0.weights.pt"
    refusing(monkeypatch, "replace", errno.EROFS, "Read-only file system", lambda src, dst: dst == weights)
    assert refused("prune", run_dir) == (
        f"error: {weights}: cannot write (Read-only file system); make its file system writable, then prune again"
    )
    monkeypatch.undo()
    assert not list(run_dir.rglob(".*.tmp*")) and (run_dir / "checkpoints" / "plain-s0.pt").exists()
    ok("prune", run_dir)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [f"{key}.weights.pt" for key in KEYS]


def test_prune_refuses_a_checkpoints_file_or_a_folder_for_a_checkpoint_and_changes_nothing(run_dir):
    before = (run_dir / "meta.json").read_bytes()
    checkpoint = run_dir / "checkpoints" / "plain-s1.pt"
    checkpoint.unlink()
    checkpoint.mkdir()
    assert refused("prune", run_dir) == (
        f"error: {checkpoint}: not a checkpoint file (a folder, pipe or device); move it away, then prune again"
    )
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "checkpoints").write_text("")
    assert refused("prune", run_dir, "--keep", "none") == (
        f"error: {run_dir / 'checkpoints'}: not a folder (a run keeps its checkpoints in one); move it away, then "
        f"prune again"
    )
    assert (run_dir / "meta.json").read_bytes() == before and (run_dir / "checkpoints").is_file()


def test_prune_removes_the_temporaries_a_killed_prune_left_and_no_file_of_the_users(run_dir):
    ours = [run_dir / ".meta.json.tmp4242", run_dir / "checkpoints" / ".plain-s0.weights.pt.tmp4242"]
    users = [run_dir / ".notes.tmp", run_dir / ".draft.md.tmp1", run_dir / "checkpoints" / ".mine.tmpl"]
    for path in ours + users:
        path.write_text("")
    ok("prune", run_dir)
    assert [path.exists() for path in ours + users] == [False, False, True, True, True]
