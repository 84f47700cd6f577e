"""Crash safety: a run stopped at several moments then --resume gives files identical to an uninterrupted run;
Ctrl-C and SIGTERM stop cleanly; a changed config refuses to resume; a held lock refuses a second process.

What a stopped run leaves and how --resume goes on from it is checked here, in this process, the run stopped by a
real SIGINT at the moment each test names (support.interrupt); what only a separate process shows (a real
SIGKILL, SIGINT and SIGTERM, workers and the verdict process dying with their run, two processes at once) is
checked end to end, in the slow tier."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from support.cli_calls import ok
from support.configs import tiny_config
from support.interrupt import interrupted_when
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.rundir.lock import RunLock

CONFIG = tiny_config("crash", training={"epochs": 3, "batch_size": 4, "log_every": 0, "eval_every": 100})
BATCHES = 3 * 2 * 2 * (1437 // 4 + 1)


def bnbench(*args, **kwargs):
    # SIGINT back to its default: a test run started in the background inherits it ignored, and Python then
    # installs no KeyboardInterrupt handler
    return subprocess.Popen(
        [sys.executable, "-m", "bnbench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


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
    try:  # polled while the run writes: a staging folder is renamed into place between any two calls
        return path.read_text().count("\n") - 1
    except FileNotFoundError:
        return 0


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
    ok("run", config_file, "--out", out, "-q")
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
        tear_rows(run_dir)
    return run_dir


def tear_rows(run_dir):
    for name in ("batches.csv", "epochs.csv"):
        with open(run_dir / name, "a") as f:
            f.write("plain,1,3,17")  # a row cut off mid-write


def stopped_here(config_file, tmp_path, ready, *args):
    """A run of `config_file` into `tmp_path`, stopped here by SIGINT when `ready(run folder)`."""
    return interrupted_when(ready, tmp_path / "crash", "run", config_file, "--out", tmp_path, "-q", *args)


MOMENTS = {
    "first-epoch": (lambda d: rows(d / "batches.csv") > 0, False),  # during the first trial's first epoch
    "mid-run-torn-write": (lambda d: rows(d / "epochs.csv") >= 4, True),  # mid-run, with torn rows in both CSVs
    "late": (lambda d: rows(d / "batches.csv") >= BATCHES * 0.7, False),  # in the last trials
}


@pytest.mark.slow
def test_kill_and_resume_equals_an_uninterrupted_run(config_file, reference, tmp_path):
    """A real SIGKILL, mid-run, with torn rows: meta.json still says running (the other moments: stopped here)."""
    moment, tear = MOMENTS["mid-run-torn-write"]
    run_dir = kill_when(bnbench("run", config_file, "--out", tmp_path, "-q"), tmp_path, moment, tear)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"
    finish("run", config_file, "--out", tmp_path, "--resume", "-q")  # newest partial run of this config
    assert same_files(run_dir, reference)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_stopped_at_any_moment_resumes_to_an_uninterrupted_run(config_file, reference, tmp_path, moment):
    ready, tear = MOMENTS[moment]
    run_dir = stopped_here(config_file, tmp_path, ready)
    if tear:
        tear_rows(run_dir)
    ok("run", config_file, "--out", tmp_path, "--resume", "-q")  # newest partial run of this config
    assert same_files(run_dir, reference)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "complete"


def test_stopped_twice_then_resumed_by_folder(config_file, reference, tmp_path):
    run_dir = stopped_here(config_file, tmp_path, lambda d: rows(d / "epochs.csv") >= 2)
    interrupted_when(lambda d: rows(d / "epochs.csv") >= 7, tmp_path / "crash", "run", run_dir, "--resume", "-q")
    ok("run", run_dir, "--resume", "--jobs", "2", "-q")
    assert same_files(run_dir, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, code, said", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_ctrl_c_and_sigterm_stop_cleanly_and_say_how_to_resume(config_file, reference, tmp_path, sig, code, said):
    """SIGTERM is what Slurm and Kubernetes send on pre-emption: it stops like Ctrl-C (it used to leave meta.json
    'running'), with the shell's exit status for it."""
    process = bnbench("run", config_file, "--out", tmp_path, "-q")
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("crash/*/checkpoints/*.pt")):
        time.sleep(0.01)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=60)
    run_dir = run_dir_of(tmp_path)
    assert process.returncode == code, output
    assert said in output and f"Resume with:\n  bnbench run --resume {run_dir} -q\n" in output
    assert "Traceback" not in output
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    finish("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


def test_changed_config_refuses_to_resume(config_file, tmp_path):
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(CONFIG))
    run_dir = stopped_here(edited, tmp_path, lambda d: rows(d / "batches.csv") > 0)
    edited.write_text(yaml.safe_dump(CONFIG | {"training": CONFIG["training"] | {"epochs": 4}}))
    result = CliRunner().invoke(app, ["run", str(run_dir), "--resume"])
    assert result.exit_code == 2
    assert (
        f"{edited}: changed since the run began (training.epochs: 3 -> 4; in the run -> in the file now)"
        in result.output.replace("\n", "")
    )
    assert "Traceback" not in result.output


def test_an_edited_run_config_refuses_to_resume_even_without_its_source(config_file, tmp_path):
    """meta.json keeps the resolved config the run started with; the source file may be gone."""
    source = tmp_path / "gone.yaml"
    source.write_text(yaml.safe_dump(CONFIG))
    run_dir = stopped_here(source, tmp_path, lambda d: rows(d / "batches.csv") > 0)
    source.unlink()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["training"]["epochs"] = 12
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", str(run_dir), "--resume"])
    assert result.exit_code == 2, result.output
    assert (
        f"{run_dir / 'config.yaml'}: edited since the run began (training.epochs: 3 -> 12; as started -> as "
        f"now)" in result.output.replace("\n", "")
    )


def test_a_held_lock_refuses_and_a_dead_holder_does_not_block(half_run, tmp_path):
    """The stopped run released its flock, as the kernel does for a killed process (every SIGKILL test of the
    slow tier resumes over a dead holder's lock)."""
    run_dir = stopped_run(half_run, tmp_path)
    lock = RunLock(run_dir).acquire()
    try:
        result = CliRunner().invoke(app, ["run", str(run_dir), "--resume"])
        assert result.exit_code == 2
        assert f"in use by pid {os.getpid()} on" in result.output
    finally:
        lock.release()
    ok("run", run_dir, "--resume", "-q")


@pytest.mark.slow
def test_two_runs_of_one_config_get_separate_folders(config_file, tmp_path):
    small = ["--set", "training.epochs=1", "--seeds", "0"]
    processes = [bnbench("run", config_file, "--out", tmp_path, "-q", *small) for _ in range(2)]
    for p in processes:
        assert p.wait(timeout=300) == 0
    runs = list((tmp_path / "crash").iterdir())
    assert len(runs) == 2
    assert runs[0].joinpath("batches.csv").read_text() == runs[1].joinpath("batches.csv").read_text()


@pytest.mark.slow
def test_stacked_run_killed_between_trials_of_a_group_resumes_exactly(config_file, tmp_path):
    """A stacked group records its trials one by one; a kill in between leaves them an epoch apart."""
    stacked = ["--set", "training.engine=stacked"]
    ok("run", config_file, "--out", tmp_path / "reference", "-q", *stacked)
    reference = {
        name: (run_dir_of(tmp_path / "reference") / name).read_text()
        for name in ("batches.csv", "epochs.csv", "evals.csv")
    }
    out = tmp_path / "killed"
    run_dir = stopped_here(
        config_file, out, lambda d: rows(d / "epochs.csv") % 4 != 0 or rows(d / "epochs.csv") >= 8, *stacked
    )
    ok("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


# ---- damaged folders, signals, workers -----------------------------------------------------------------------------


def half_done(run_dir):
    return rows(run_dir / "epochs.csv") >= 6


@pytest.fixture(scope="module")
def half_run(config_file, tmp_path_factory):
    """A run stopped once half of its 12 trial-epochs are done, to copy and damage."""
    return stopped_here(config_file, tmp_path_factory.mktemp("half"), half_done)


def stopped_run(half_run, tmp_path):
    """A copy of `half_run` under tmp_path/crash/, as a run stopped there."""
    return damaged_copy(half_run, tmp_path, lambda run_dir: None)


def trial_begun(run_dir):
    """A moment to kill a run: meta.json records a trial that has finished an epoch, not all of them."""
    trials = json.loads((run_dir / "meta.json").read_text()).get("trials", [])
    return any(t["status"] == "running" for t in trials)


def cut(name, keep):
    """Damage: keep only `keep(text)` of a run file."""

    def damage(run_dir):
        path = run_dir / name
        path.write_text(keep(path.read_text()))

    return damage


@pytest.mark.parametrize(
    "damage, retrained",
    [
        (cut("batches.csv", lambda t: t[: int(0.4 * len(t))]), True),
        (lambda d: (d / "batches.csv").unlink(), True),
        (cut("batches.csv", lambda t: "a,b,c\n" + t.split("\n", 1)[1]), False),  # the header is written anew
        (cut("batches.csv", lambda t: t.replace(",1,5,5,", ",1,x,\0,", 1)), True),
        (cut("epochs.csv", lambda t: t.rsplit("\n", 3)[0] + "\n"), True),
        (cut("evals.csv", lambda t: "\n".join(t.split("\n")[:4])), True),
    ],
    ids=["batches-truncated", "batches-deleted", "header-replaced", "garbage-value", "epochs-cut", "evals-cut"],
)
def test_resume_over_damaged_files_retrains_what_is_missing(half_run, reference, tmp_path, damage, retrained):
    """Rows are checked against every trial's checkpoint: a trial with missing or damaged rows (or checkpoint)
    is trained again from its start, with a note; the files then equal an uninterrupted run's."""
    run_dir = stopped_run(half_run, tmp_path)
    damage(run_dir)
    output = ok("run", run_dir, "--resume", "-q")
    assert "Traceback" not in output
    assert ("is trained again from its start" in output.replace("\n", " ")) == retrained
    assert same_files(run_dir, reference)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("content", [b"garbage", b""], ids=["garbage", "empty"])
def test_a_damaged_checkpoint_is_noted_and_its_trial_retrained_unless_finished(half_run, reference, tmp_path, content):
    """Each checkpoint damaged in turn: an unfinished trial is trained again from its start; a finished one keeps
    its rows, checked against meta.json's record of it; either way a note names the file."""
    run_dir = stopped_run(half_run, tmp_path)
    trials = {t["key"]: t["status"] for t in json.loads((run_dir / "meta.json").read_text())["trials"]}
    damaged = sorted((run_dir / "checkpoints").glob("*.pt"))
    for path in damaged:
        path.write_bytes(content)
    output = ok("run", run_dir, "--resume", "-q").replace("\n", " ")
    for key in (path.stem for path in damaged):
        finished = trials[key] in ("complete", "diverged")
        said = "has finished, and its rows" if finished else "is trained again from its start"
        assert f"{key}.pt: damaged checkpoint" in output and f"{key} {said}" in output, key
    assert same_files(run_dir, reference)


def children(pid: int) -> list[int]:
    return [
        int(p)
        for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    ]


def comm(pid: int) -> str:
    return open(f"/proc/{pid}/comm").read().strip()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"


def all_die(pids: list[int], within: float = 10) -> bool:
    deadline = time.time() + within
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


@pytest.mark.slow
def test_workers_die_with_a_killed_parent_and_the_run_resumes(config_file, reference, tmp_path):
    """SIGKILL of the parent of a --jobs 2 run: the workers (which used to live on as orphans holding the lock)
    die too, the lock is free, and the run resumes."""
    process = bnbench("run", config_file, "--out", tmp_path, "-q", "--jobs", "2")
    deadline = time.time() + 120
    while time.time() < deadline and not (
        list(tmp_path.glob("crash/*/batches.csv")) and rows(next(tmp_path.glob("crash/*/batches.csv"))) > 0
    ):
        time.sleep(0.01)
    workers = children(process.pid)
    assert len(workers) >= 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert all_die(workers)
    run_dir = run_dir_of(tmp_path)
    finish("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


@pytest.mark.slow
def test_the_verdict_process_ends_with_its_run(config_file, tmp_path):
    """`run` forks a process that imports pandas for the closing verdict while the run trains: it must not
    outlive the run, killed or finished."""
    process = bnbench("run", config_file, "--out", tmp_path, "-q")
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("crash/*/batches.csv")):
        time.sleep(0.01)
    helpers = children(process.pid)
    assert [comm(p) for p in helpers] == ["bnbench-verdict"]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert all_die(helpers)


@pytest.mark.slow
def test_a_killed_worker_is_named_with_its_trials_and_the_run_resumes(config_file, reference, tmp_path):
    process = bnbench("run", config_file, "--out", tmp_path, "-q", "--jobs", "2")
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("crash/*/checkpoints/*.pt")):
        time.sleep(0.01)
    victim = [p for p in children(process.pid) if comm(p) != "bnbench-verdict"][0]  # a worker, not run's verdict
    os.kill(victim, signal.SIGKILL)  # as the OOM killer would
    output, _ = process.communicate(timeout=120)
    run_dir = run_dir_of(tmp_path)
    assert process.returncode == 2, output
    one_line = output.replace("\n", "")
    assert f"worker process {victim} died (killed by SIGKILL" in one_line and "while training " in one_line
    assert f"Resume with:\n  bnbench run --resume {run_dir}" in output and "Traceback" not in output
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    finish("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


def test_resume_of_a_complete_run_changes_nothing_and_a_run_folder_needs_resume(complete_run, tmp_path):
    run_dir = damaged_copy(complete_run, tmp_path, lambda run_dir: None)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = CliRunner().invoke(app, ["run", str(run_dir), "--resume"])
    assert result.exit_code == 0 and f"nothing to do: {run_dir} is complete" in result.output.replace("\n", "")
    assert before == {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = CliRunner().invoke(app, ["run", str(run_dir)])
    assert result.exit_code == 2 and f"to continue it: bnbench run --resume {run_dir}" in result.output.replace(
        "\n", ""
    )


def test_config_resume_matches_the_resolved_config_not_only_the_name(config_file, tmp_path):
    stopped_here(config_file, tmp_path, lambda d: rows(d / "batches.csv") > 0)  # a 3-epoch run, stopped
    result = CliRunner().invoke(
        app, ["run", str(config_file), "--out", str(tmp_path), "--resume", "--set", "training.epochs=1"]
    )
    assert result.exit_code == 2
    message = result.output.replace("\n", "")
    assert "no partial run of 'crash' with this config" in message and "training.epochs: 3 -> 1" in message


def test_jobs_above_the_core_count_are_capped_and_said(config_file, tmp_path):
    output = ok("run", config_file, "--out", tmp_path, "-q", "--jobs", "64", "--set", "training.epochs=1")
    assert f"note: --jobs 64: using {os.cpu_count()} worker processes, one per CPU core" in output


def test_a_failed_start_leaves_no_run_folder(tmp_path, monkeypatch):
    """Everything before training is written in a hidden folder and renamed into place: a run folder is never
    half made (an early Ctrl-C used to leave one that neither resumed nor compared)."""
    from bnbench.experiment.config import Config
    from bnbench.experiment.trials import expand
    from bnbench.rundir import meta
    from bnbench.runner import execute as runner

    config = Config.model_validate(CONFIG)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(meta, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner._create_run_dir(tmp_path, config, expand(config), meta.Meta({}))
    assert list((tmp_path / "crash").iterdir()) == []
    monkeypatch.undo()
    run_dir, lock = runner._create_run_dir(tmp_path, config, expand(config), meta.Meta({"status": "running"}))
    lock.release()
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "batches.csv",
        "config.yaml",
        "epochs.csv",
        "evals.csv",
        "lock",
        "meta.json",
    ]
    assert [p.name for p in (tmp_path / "crash").iterdir()] == [run_dir.name]


def test_a_full_disk_is_one_line_and_the_run_resumes(config_file, reference, tmp_path, monkeypatch):
    import errno

    from bnbench.rundir import checkpoint_files

    real, calls = checkpoint_files.save, []

    def full(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    monkeypatch.setattr(checkpoint_files, "save", full)
    result = CliRunner().invoke(app, ["run", str(config_file), "--out", str(tmp_path), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    run_dir = run_dir_of(tmp_path)
    assert f"{run_dir}: cannot write (No space left on device)" in result.output.replace("\n", "")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    assert not list(run_dir.rglob(".*tmp*"))
    monkeypatch.undo()
    ok("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


def test_config_and_run_folder_both_given_to_resume(config_file, half_run, reference, tmp_path):
    run_dir = stopped_run(half_run, tmp_path)
    result = CliRunner().invoke(app, ["run", str(config_file), str(run_dir)])
    assert result.exit_code == 2 and "add --resume" in result.output
    result = CliRunner().invoke(app, ["run", "quick", str(run_dir), "--resume"])
    assert result.exit_code == 2 and "a run of 'crash', not of quick" in result.output.replace("\n", "")
    ok("run", config_file, run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


# ---- a complete run, damaged ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def complete_run(config_file, reference, tmp_path_factory):
    """A finished run of CONFIG, to copy and damage."""
    out = tmp_path_factory.mktemp("complete")
    ok("run", config_file, "--out", out, "-q")
    return run_dir_of(out)


def damaged_copy(complete_run, tmp_path, damage):
    import shutil

    run_dir = tmp_path / "crash" / complete_run.name
    shutil.copytree(complete_run, run_dir)
    damage(run_dir)
    return run_dir


def drop_lines(name, first, last):
    """Damage: cut lines first..last (1-based, the header is line 1) out of a run file."""

    def damage(run_dir):
        lines = (run_dir / name).read_text().splitlines(keepends=True)
        (run_dir / name).write_text("".join(lines[: first - 1] + lines[last:]))

    return damage


def without_checkpoints(damage=lambda d: None):
    def both(run_dir):
        import shutil

        shutil.rmtree(run_dir / "checkpoints")
        damage(run_dir)

    return both


@pytest.mark.parametrize(
    "damage, retrained, named",
    [
        (drop_lines("batches.csv", 100, 300), ["batchnorm-s0"], True),
        (cut("batches.csv", lambda t: "".join(t.splitlines(keepends=True)[:-10])), ["plain-s1"], True),  # the last
        (drop_lines("epochs.csv", 2, 2), ["batchnorm-s0"], True),
        (drop_lines("evals.csv", 3, 3), ["batchnorm-s0"], False),  # only the checkpoint tells an evaluation is missing
        (without_checkpoints(drop_lines("batches.csv", 100, 300)), ["batchnorm-s0"], True),
    ],
    ids=["batches-cut", "last-rows-cut", "epoch-row-cut", "eval-row-cut", "rows-cut-checkpoints-gone"],
)
def test_a_damaged_complete_run_is_named_by_show_and_repaired_by_resume(
    complete_run, reference, tmp_path, damage, retrained, named
):
    """A complete run whose rows were cut is not "nothing to do": `show` names the damage and the repair
    command (where the rows alone tell), `--resume` trains again exactly the damaged trials and ends equal to the
    run."""
    from bnbench.analysis.show import summary

    run_dir = damaged_copy(complete_run, tmp_path, damage)
    if named:
        shown = summary(run_dir)
        assert shown["damage"] and shown["next"] == f"bnbench run --resume {run_dir}"
        text = CliRunner().invoke(app, ["show", str(run_dir)]).output.replace("\n", "")
        assert "damaged" in text and f"repair with: bnbench run --resume {run_dir}" in text
    output = ok("run", "--resume", run_dir, "-v")
    assert "nothing to do" not in output and "Traceback" not in output
    trained = sorted({line.split(" epoch")[0] for line in output.splitlines() if " epoch 1/3:" in line})
    assert trained == retrained
    assert same_files(run_dir, reference)
    assert summary(run_dir)["status"] == "complete" and summary(run_dir)["damage"] is None


def test_a_complete_run_without_checkpoints_is_still_complete(complete_run, tmp_path):
    """Checkpoints deleted to free space: the rows are the result, nothing is trained again (meta.json records
    every trial finished)."""
    run_dir = damaged_copy(complete_run, tmp_path, without_checkpoints())
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert "nothing to do" in ok("run", "--resume", run_dir)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_a_deleted_checkpoints_folder_of_a_partial_run_is_retrained_with_a_note(config_file, reference, tmp_path):
    import shutil

    run_dir = stopped_here(config_file, tmp_path, trial_begun)
    shutil.rmtree(run_dir / "checkpoints")
    trials = json.loads((run_dir / "meta.json").read_text())["trials"]
    output = ok("run", run_dir, "--resume", "-q").replace("\n", " ")
    begun = [t["key"] for t in trials if t["status"] == "running"]
    assert begun and all(f".pt: missing: {key} is trained again from its start" in output for key in begun)
    assert not any(f"{t['key']} is trained again" in output for t in trials if t["status"] == "complete")
    assert same_files(run_dir, reference)


def test_staging_left_by_a_killed_start_is_removed_by_the_next_run(tmp_path):
    """SIGKILL while a run folder is set up leaves only a hidden staging folder (never an empty run folder);
    the next run of that experiment removes it, and no command takes it for a run."""
    from bnbench.rundir.lock import stage_run_dir
    from bnbench.rundir.search import find_runs

    parent = tmp_path / "crash"
    staging, run_dir, lock = stage_run_dir(tmp_path, "crash")
    (staging / "meta.json").write_text("{}")
    lock.release()  # as the kernel does when the process is killed
    assert [p.name for p in parent.iterdir()] == [staging.name]
    assert find_runs([tmp_path]) == []
    held, _, held_lock = stage_run_dir(tmp_path, "crash")  # the name may be the same: the stale one is gone
    assert not (staging / "meta.json").exists() and [p.name for p in parent.iterdir()] == [held.name]
    stage_run_dir(tmp_path, "crash")[2].release()  # a live run's staging folder stays
    assert held.exists()
    held_lock.release()


def test_a_full_disk_while_a_run_folder_is_made_or_repaired_is_one_line(
    config_file, half_run, reference, tmp_path, monkeypatch
):
    """ENOSPC in the staging folder: one line, no folder left; in resume's repair of the rows: one line with the
    resume command, the run partial, and a later resume ends equal to the uninterrupted run."""
    import errno

    from bnbench.rundir import store

    real = store.atomic_write

    def full_for(name):
        def write(path, data):
            if path.name == name:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, data)

        return write

    monkeypatch.setattr(store, "atomic_write", full_for("epochs.csv"))
    result = CliRunner().invoke(app, ["run", str(config_file), "--out", str(tmp_path), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().startswith(f"error: --out {tmp_path}: cannot write the run folder (No space left")
    assert list((tmp_path / "crash").iterdir()) == []
    monkeypatch.undo()
    run_dir = stopped_run(half_run, tmp_path)
    monkeypatch.setattr(store, "atomic_write", full_for("batches.csv"))
    result = CliRunner().invoke(app, ["run", "--resume", str(run_dir), "-q"])
    monkeypatch.undo()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{run_dir}: cannot write (No space left on device)" in result.output.replace("\n", "")
    assert f"resume with:\n  bnbench run --resume {run_dir} -q\n" in result.output
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"  # partial: no process holds it
    ok("run", run_dir, "--resume", "-q")
    assert same_files(run_dir, reference)


def test_a_scheduled_recipe_stopped_mid_run_resumes_to_the_uninterrupted_run(tmp_path, write_config):
    """The lr of each step is a function of the step count a checkpoint holds (engines.schedule): a resumed
    cosine-with-warmup run, SGD with Nesterov momentum and no norm decay, continues its schedule exactly, also
    with --jobs 2."""
    recipe = {"name": "sgd", "lr": 0.05, "nesterov": True, "weight_decay": 5e-4, "norm_decay": False}
    recipe |= {"schedule": "cosine", "warmup_epochs": 0.5}
    config = tiny_config("crash", optimizer=recipe, training={"epochs": 3, "batch_size": 32, "log_every": 0})
    config_file = write_config(config, "crash.yaml")
    ok("run", config_file, "--out", tmp_path / "whole", "-q")
    whole = run_dir_of(tmp_path / "whole")
    reference = {name: (whole / name).read_text() for name in ("batches.csv", "epochs.csv", "evals.csv")}
    run_dir = stopped_here(config_file, tmp_path / "stopped", lambda d: rows(d / "epochs.csv") >= 3)
    assert rows(run_dir / "epochs.csv") < 12
    ok("run", run_dir, "--resume", "--jobs", "2", "-q")
    assert same_files(run_dir, reference)
