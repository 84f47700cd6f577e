"""Daily use of `bnbench run`: a run grows (more seeds, more epochs) into the same folder and equals one run made
whole; options that would change trained trials are refused; seed ranges; verbosity and run.log; -h, --version."""

import pytest
import yaml
from support.cli_calls import invoke, ok
from support.configs import tiny_config

CONFIG = tiny_config("grow", training={"epochs": 2, "batch_size": 32, "log_every": 10, "eval_every": 20})
ROW_FILES = ("batches.csv", "epochs.csv", "evals.csv")


def rows(run_dir, name):
    """The file's lines, without epochs.csv's wall-clock seconds column."""
    lines = (run_dir / name).read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in lines] if name == "epochs.csv" else lines


def run_of(out, name="grow"):
    (run_dir,) = (out / name).iterdir()
    return run_dir


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "grow.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def whole(tmp_path_factory, config_file):
    """One run with seeds 0-3 and 3 epochs: what every grown run must equal."""
    out = tmp_path_factory.mktemp("whole")
    ok("run", config_file, "--seeds", "0-3", "--set", "training.epochs=3", "--out", out, "-q")
    return run_of(out)


def test_adding_seeds_trains_only_the_new_trials_and_equals_one_run_of_all_seeds(tmp_path, config_file, whole):
    ok("run", config_file, "--out", tmp_path, "-q", "--set", "training.epochs=3")
    run_dir = run_of(tmp_path)
    before = {name: rows(run_dir, name) for name in ROW_FILES}
    checkpoints = {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()}
    output = ok("run", "--resume", run_dir, "--seeds", "2,3", "-v")
    assert "8 trials (4 already done)" in output and "added seeds 2, 3" in output
    assert "-s0 epoch" not in output and "-s1 epoch" not in output  # the finished trials did not train again
    assert {
        p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir() if p.name in checkpoints
    } == checkpoints
    for name in ROW_FILES:
        after = rows(run_dir, name)
        assert after == rows(whole, name), name
        assert after[: len(before[name])] == before[name], name  # the old rows untouched, byte for byte
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["seeds"] == [0, 1, 2, 3]
    assert "nothing to do" in ok("run", "--resume", run_dir, "--seeds", "1-3")  # all there already


def test_adding_epochs_continues_finished_trials_exactly(tmp_path, config_file, whole):
    ok("run", config_file, "--out", tmp_path, "-q", "--seeds", "0-3")
    run_dir = run_of(tmp_path)
    output = ok("run", "--resume", run_dir, "--set", "training.epochs=3", "-v")
    assert "epoch 1/3" not in output and "epoch 2/3" not in output and "epoch 3/3" in output
    for name in ROW_FILES:
        assert rows(run_dir, name) == rows(whole, name), name


@pytest.mark.parametrize(
    "args, named",
    [
        (["--set", "optimizer.lr=0.1"], "--set optimizer.lr"),
        (["--set", "training.epochs=1"], "--set training.epochs=1"),
        (["--device", "cpu"], "--device"),
        (["--seeds", "x"], "--seeds x"),
    ],
)
def test_options_that_would_change_trained_trials_are_refused(tmp_path, config_file, args, named):
    ok("run", config_file, "--out", tmp_path, "-q", "--seeds", "0")  # 2 epochs
    run_dir = run_of(tmp_path)
    before = (run_dir / "batches.csv").read_bytes()
    result = invoke("run", "--resume", run_dir, *args)
    assert result.exit_code == 2 and named in result.output and len(result.output.strip().splitlines()) == 1
    assert (run_dir / "batches.csv").read_bytes() == before


@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("1,2,5-8", [1, 2, 5, 6, 7, 8]), ("7", [7])])
def test_seed_ranges(tmp_path, config_file, text, seeds):
    ok(
        "run",
        config_file,
        "--out",
        tmp_path,
        "-q",
        "--set",
        "training.epochs=1",
        "--set",
        "training.eval_every=null",
        "--seeds",
        text,
        "--set",
        "variants=[{name: plain, norm: none}]",
        "--set",
        "baseline=plain",
    )
    assert yaml.safe_load((run_of(tmp_path) / "config.yaml").read_text())["seeds"] == seeds


@pytest.mark.parametrize("text", ["3-1", "1,,2", "a-b", "-2"])
def test_bad_seed_ranges_are_one_line(tmp_path, config_file, text):
    result = invoke("run", config_file, "--out", tmp_path, "--seeds", text)
    assert result.exit_code == 2 and f"--seeds {text}" in result.output and not (tmp_path / "grow").exists()


def test_verbosity_levels_and_run_log_keeps_every_line(tmp_path, config_file):
    quiet = ok("run", config_file, "--out", tmp_path / "q", "-q", "--seeds", "0")
    default = ok("run", config_file, "--out", tmp_path / "d", "--seeds", "0")
    loud = ok("run", config_file, "--out", tmp_path / "v", "-vv", "--seeds", "0")
    assert "Loss after mini-batch" not in quiet + default and "epoch 1/2:" not in quiet + default
    assert "plain-s0: done, 2 epochs" in default and "plain-s0: done" not in quiet
    assert loud.count("Loss after mini-batch") == 2 * 2 * (1437 // 32 // 10) and "epoch 1/2:" in loud
    log = (run_of(tmp_path / "q") / "run.log").read_text()
    assert log.count("Loss after mini-batch") == 2 * 2 * (1437 // 32 // 10)
    assert "batchnorm-s0 epoch 2/2: train loss" in log and "batchnorm-s0: done, 2 epochs" in log


def test_run_ends_with_the_verdict_and_the_next_command(tmp_path, config_file):
    output = ok("run", config_file, "--out", tmp_path, "-q")
    run_dir = run_of(tmp_path)
    assert "batchnorm vs plain:" in output and f"next: bnbench compare {run_dir}" in output


def test_version_and_short_help():
    from importlib.metadata import version

    assert ok("--version").strip() == f"bnbench {version('bnbench')}"
    assert "run [OPTIONS] {CONFIG} [RUN_DIR]" in ok("run", "-h") and "<list[str]>" not in ok("run", "-h")
    assert "--install-completion" in ok("-h")


def test_verdict_lines_come_from_the_forked_process_or_from_here(whole, monkeypatch):
    from bnbench.analysis.show import summary
    from bnbench.runner import closing

    expected = summary(whole)["verdicts"]
    assert expected and expected[0].startswith("batchnorm vs plain:")
    assert closing.ClosingLines().lines(whole) == expected
    dying = closing.ClosingLines()
    dying.process.kill()
    dying.process.join()
    assert dying.lines(whole) == expected  # worked out here instead
    monkeypatch.setattr(closing.sys, "platform", "darwin")
    elsewhere = closing.ClosingLines()
    assert elsewhere.process is None and elsewhere.lines(whole) == expected


# ---- a grow stopped at any point --------------------------------------------------------------------------------

GROW = ("--seeds", "0-3", "--set", "training.epochs=3")


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory, config_file):
    """A complete run of seeds 0, 1 and 2 epochs, to copy and grow."""
    out = tmp_path_factory.mktemp("small")
    ok("run", config_file, "--out", out, "-q", "--seeds", "0,1")
    return run_of(out)


def copy_of(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "grow" / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def status(run_dir):
    from bnbench.analysis.show import summary

    return summary(run_dir)["status"]


def truthful(run_dir):
    """The run says partial, or it is complete and every trial of its config.yaml is there."""
    from bnbench.analysis.show import summary

    s = summary(run_dir)
    return s["status"] == "partial" or (
        s["damage"] is None
        and all(t["status"] == "complete" for t in s["trials"])
        and len(s["trials"]) == 2 * len(yaml.safe_load((run_dir / "config.yaml").read_text())["seeds"])
    )


@pytest.mark.parametrize("write", range(1, 8))
def test_a_grow_stopped_at_any_write_never_claims_complete_and_resumes_to_the_whole_run(
    tmp_path, two_epoch_run, whole, monkeypatch, write
):
    """Ctrl-C (as a kill would) at each of the first file writes of a grow: meta.json marked running, the grown
    meta.json, config.yaml, the rows cut back, the first new epoch's rows and checkpoint. The run is never
    "complete" with trials missing, `--resume` with the same options is not "nothing to do", and it ends equal to
    the run made whole."""
    from bnbench.rundir import store

    run_dir = copy_of(two_epoch_run, tmp_path)
    real, calls = store.atomic_write, []

    def stop_at_write(path, data):
        calls.append(path.name)
        if len(calls) == write:
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write", stop_at_write)
    result = invoke("run", "--resume", run_dir, *GROW, "-q")
    monkeypatch.undo()
    assert result.exit_code == 130, result.output
    assert f"Resume with:\n  bnbench run --resume {run_dir} -q\n" in result.output
    assert "Traceback" not in result.output
    assert truthful(run_dir) and (write == 1 or status(run_dir) == "partial")  # the first: nothing was written
    assert "nothing to do" not in ok("run", "--resume", run_dir, *GROW, "-q")
    assert status(run_dir) == "complete"
    for name in ROW_FILES:
        assert rows(run_dir, name) == rows(whole, name), name


def test_a_grow_stopped_between_its_two_writes_resumes_without_the_options(tmp_path, two_epoch_run, whole, monkeypatch):
    """Stopped after the grown meta.json, before config.yaml: the run is not refused as edited, and a plain
    --resume finishes the grow it began."""
    from bnbench.rundir import store

    run_dir = copy_of(two_epoch_run, tmp_path)
    real = store.atomic_write

    def stop_at_config(path, data):
        if path.name == "config.yaml":
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write", stop_at_config)
    assert invoke("run", "--resume", run_dir, *GROW, "-q").exit_code == 130
    monkeypatch.undo()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["seeds"] == [0, 1]  # as before the grow
    ok("run", "--resume", run_dir, "-q")
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["seeds"] == [0, 1, 2, 3]
    for name in ROW_FILES:
        assert rows(run_dir, name) == rows(whole, name), name


def test_a_refused_grow_leaves_a_complete_run_complete(tmp_path, two_epoch_run):
    run_dir = copy_of(two_epoch_run, tmp_path)
    meta = (run_dir / "meta.json").read_bytes()
    assert invoke("run", "--resume", run_dir, "--set", "training.epochs=1").exit_code == 2
    assert (run_dir / "meta.json").read_bytes() == meta and status(run_dir) == "complete"


def test_a_grown_run_lists_its_epochs_once(tmp_path, two_epoch_run):
    run_dir = copy_of(two_epoch_run, tmp_path)
    import json

    ok("run", "--resume", run_dir, "--set", "training.epochs=3", "-q")
    ok("run", "--resume", run_dir, "--set", "training.epochs=4", "-q")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert [t for t in meta["overrides"]["set"] if "epochs" in t] == ["training.epochs=4"]
    assert "--set training.epochs=4" in ok("list", "--results", tmp_path, "--format", "json")


def test_a_decaying_schedule_refuses_more_epochs_and_a_stepped_one_grows_exactly(tmp_path, write_config):
    """cosine and linear spread their decay over training.epochs, which the trained epochs followed; warmup and
    step milestones are counted in epochs from the start, so more epochs continue them exactly."""
    training = {"epochs": 2, "batch_size": 32, "log_every": 0}
    sgd = {"name": "sgd", "lr": 0.05, "nesterov": True, "warmup_epochs": 0.5}
    cosine = write_config(tiny_config("cos", [0], optimizer=sgd | {"schedule": "cosine"}, training=training), "c.yaml")
    ok("run", cosine, "--out", tmp_path / "c", "-q")
    result = invoke("run", "--resume", run_of(tmp_path / "c", "cos"), "--set", "training.epochs=3")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "decays its lr (cosine schedule) to 0 over its 2 epochs" in result.output
    stepped = tiny_config("st", [0], optimizer=sgd | {"schedule": "step", "milestones": [1]}, training=training)
    ok("run", write_config(stepped, "s.yaml"), "--out", tmp_path / "grown", "-q")
    ok("run", "--resume", run_of(tmp_path / "grown", "st"), "--set", "training.epochs=3", "-q")
    ok("run", write_config(stepped, "s.yaml"), "--out", tmp_path / "whole", "-q", "--set", "training.epochs=3")
    for name in ROW_FILES:
        assert rows(run_of(tmp_path / "grown", "st"), name) == rows(run_of(tmp_path / "whole", "st"), name), name
