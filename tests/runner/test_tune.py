"""`bnbench tune`: the three stages in one folder, each variant trained at its own chosen setting, choices made on
validation rows only, a stopped tune resumed to the files of one that never stopped, and the digits case where
tuning changes the answer."""

import json
import re
import signal
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import pytest
import yaml
from support.cli_calls import invoke, ok, refused
from support.configs import tiny_config
from support.interrupt import interrupted_when

from bnbench.analysis import reading
from bnbench.analysis.tuning import chosen, tuning_finals
from bnbench.errors import Interrupted
from bnbench.experiment.trials import expand
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.tunes import STAGES
from bnbench.runner import tune as tuning
from bnbench.runner.state import Silent

CONFIG = tiny_config(
    "tune-digits",
    seeds=(5, 6),
    training={"epochs": 2, "batch_size": 32, "log_every": 0},
    dataset={"name": "digits", "validation": 0.2},
)
GRID = "optimizer.lr=1e-3,1e-2"
FILES = ("batches.csv", "epochs.csv", "evals.csv")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tune.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def tune_dir_of(out):
    (found,) = (out / "tune-digits").iterdir()
    return found


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    """An uninterrupted tune: its folder and its printed answer."""
    out = tmp_path_factory.mktemp("reference")
    printed = ok("tune", config_file, "--grid", GRID, "--tune-seeds", "0-1", "--out", out, "-q")
    return tune_dir_of(out), printed


def test_one_folder_holds_the_three_stages(reference):
    tune_dir, printed = reference
    spec = json.loads((tune_dir / "tune.json").read_text())
    assert spec["stage"] == "complete" and spec["grid"] == {"optimizer.lr": ["1e-3", "1e-2"]}
    assert spec["tune_seeds"] == [0, 1] and spec["final_seeds"] == [5, 6] and spec["metric"] == "val_acc"
    configs = {stage: RunFolder(tune_dir / stage).config() for stage in STAGES}
    assert configs["tuning"].sweep == {"optimizer.lr": ["1e-3", "1e-2"]} and configs["tuning"].seeds == [0, 1]
    assert configs["shared"].seeds == configs["tuned"].seeds == [5, 6] and not configs["shared"].sweep
    assert [v.overrides for v in configs["tuned"].variants] == [spec["choices"][v] for v in ("batchnorm", "plain")]
    assert all(RunFolder(tune_dir / s).meta().fields.status == "complete" for s in STAGES)
    trained = {(t.variant.name, t.config.optimizer.lr) for t in expand(configs["tuned"])}
    assert trained == {(v, spec["choices"][v]["optimizer.lr"]) for v in ("batchnorm", "plain")}
    assert f"done: {tune_dir}" in printed and "at each variant's own best (batchnorm optimizer.lr=" in printed


def test_the_tuned_stage_trains_each_variant_as_a_run_at_its_setting_would(reference, tmp_path):
    """The per-variant override changes nothing else: the tuned run's batchnorm rows are those of a plain run of
    the config at batchnorm's chosen lr (same seeds, same split), stacked with plain at another lr or not."""
    tune_dir, _ = reference
    lr = json.loads((tune_dir / "tune.json").read_text())["choices"]["batchnorm"]["optimizer.lr"]
    config = {**CONFIG, "optimizer": {"name": "adam", "lr": lr}, "variants": [{"name": "batchnorm"}]}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    ok("run", path, "--out", tmp_path, "-q")
    (alone,) = (tmp_path / "tune-digits").iterdir()
    tuned = (tune_dir / "tuned" / "evals.csv").read_text().splitlines()
    assert [line for line in tuned if line.startswith("batchnorm,")] == (alone / "evals.csv").read_text().splitlines()[
        1:
    ]


def test_no_choice_reads_a_test_metric(reference, monkeypatch):
    """The tuning rows' test columns scrambled give the same choices; the frame the choice is made from has none."""
    tune_dir, _ = reference
    tune = tuning.read(tune_dir)
    assert not [c for c in tuning_finals(tune).columns if "test" in c]
    load = reading.load_run

    def scrambled(run_dir):
        results = load(run_dir)
        for column in ("test_acc", "test_loss"):
            results.epochs[column] = np.random.default_rng(0).permutation(results.epochs[column].to_numpy())[::-1]
        return results

    monkeypatch.setattr(reading, "load_run", scrambled)
    assert chosen(tune) == tune.choices


def test_compare_of_a_tune_folder_compares_its_tuned_and_shared_runs(reference):
    tune_dir, _ = reference
    titles = re.findall(r" · run (\w+) · ", ok("compare", tune_dir, "--all"))
    assert titles == ["tuned", "shared"]  # not the tuning stage: its test numbers chose nothing, and answer nothing
    assert re.findall(r" · run (\w+) · ", ok("compare", tune_dir.parent.parent, "--all")) == titles  # a results folder
    assert re.findall(r" · run (\w+) · ", ok("compare", tune_dir / "tuning")) == ["tuning"]  # named: compared


def stopped(config_file, tmp_path, stage, rows):
    """A tune stopped by SIGINT once its `stage` run has `rows` epoch rows."""

    def ready(tune_dir):
        try:
            return (tune_dir / stage / "epochs.csv").read_text().count("\n") - 1 >= rows
        except FileNotFoundError:
            return False

    args = ("tune", config_file, "--grid", GRID, "--tune-seeds", "0-1", "--out", tmp_path, "-q")
    return interrupted_when(ready, tmp_path / "tune-digits", *args)


@pytest.mark.parametrize("stage, rows", [("tuning", 3), ("tuned", 1)])
def test_a_stopped_tune_resumes_to_the_files_of_one_that_never_stopped(config_file, reference, tmp_path, stage, rows):
    tune_dir = stopped(config_file, tmp_path, stage, rows)
    assert json.loads((tune_dir / "tune.json").read_text())["stage"] == stage
    result = invoke("tune", "--resume", tune_dir, "-q")
    assert result.exit_code == 0, result.output
    for name in FILES:
        for s in STAGES:
            cut = (lambda t: [line.rsplit(",", 1)[0] for line in t.splitlines()]) if name == "epochs.csv" else str
            assert cut((tune_dir / s / name).read_text()) == cut((reference[0] / s / name).read_text()), (s, name)
    assert result.output.splitlines()[-1] == f"done: {tune_dir}"


class StopAfterAnEpoch(Silent):
    def epoch_done(self, trial, result):
        raise KeyboardInterrupt


def test_a_stop_says_to_resume_the_tune_and_keeps_its_settings(config_file, tmp_path):
    tune = tuning.start(str(config_file), (GRID,), tune_seeds=[0, 1], out=tmp_path)
    with pytest.raises(Interrupted) as stop:
        tuning.train(tune, reporting=lambda: nullcontext(StopAfterAnEpoch()))
    assert str(stop.value) == f"interrupted; nothing finished is lost. Resume with: bnbench tune --resume {tune.dir}"
    assert refused("tune", "--resume", tune.dir, "--grid", GRID) == (
        f"error: --grid: a tune keeps the settings it began with; continue it with: bnbench tune --resume {tune.dir}"
    )


@pytest.mark.slow
def test_on_digits_tuning_each_variant_changes_the_verdict(tmp_path):
    """BN's best Adam lr on digits (3 epochs) is 1e-3, plain's 1e-2: at the shared 1e-3 BN is better by 6 points;
    each at its own best, no difference is shown. About 12 s on 2 cores."""
    printed = ok(
        "tune", "quick", "--set", "dataset.validation=0.2", "--set", "training.epochs=3",
        "--grid", "optimizer.lr=1e-3,1e-2", "--seeds", "100-104", "--out", tmp_path, "-q",
    )  # fmt: skip
    (tune_dir,) = (tmp_path / "quick-digits").iterdir()
    assert json.loads((tune_dir / "tune.json").read_text())["choices"] == {
        "batchnorm": {"optimizer.lr": 0.001},
        "plain": {"optimizer.lr": 0.01},
    }
    lines = printed.splitlines()
    answers = [line for line in lines if ", test acc vs plain: " in line]
    assert answers == [
        "at each variant's own best (batchnorm optimizer.lr=0.001, plain optimizer.lr=0.01), test acc vs plain: "
        "batchnorm +3.11 pts, unadjusted 95% CI [-0.30, +6.34] (Holm p=0.25), no difference shown",
        "at the shared optimizer.lr=0.001, test acc vs plain: batchnorm +6.00 pts, unadjusted 95% CI [+3.68, +8.44] "
        "(Holm p=0.006), better",
    ]
    tuned = next(line for line in lines if line.startswith("at each variant's own best") and "): batchnorm" in line)
    shared = next(line for line in lines if line.startswith("at the shared optimizer.lr=0.001: "))
    assert "batchnorm vs plain: no difference shown in test acc: +3.11 pts" in tuned
    assert "batchnorm vs plain: better test acc +6.00 pts" in shared
    chosen = next(line for line in lines if line.startswith("chosen: "))
    assert "plain optimizer.lr=0.01 (val acc 96.28; optimizer.lr at the grid's largest: widen the grid)" in chosen


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, files",
    [
        (["--jobs", "2"], ("batches.csv", "evals.csv")),
        (["--set", "training.engine=stacked"], ("evals.csv",)),  # stacked sums a batch's loss in its own order
    ],
)
def test_jobs_and_the_stacked_engine_train_the_same_trials(config_file, reference, tmp_path, args, files):
    """The stacked engine trains the tuned stage's variants, each at its own lr, as one group."""
    ok("tune", config_file, "--grid", GRID, "--tune-seeds", "0-1", "--out", tmp_path, "-q", *args)
    tune_dir = tune_dir_of(tmp_path)
    for s in STAGES:
        for name in files:
            assert (tune_dir / s / name).read_text() == (reference[0] / s / name).read_text(), (s, name)


@pytest.mark.slow
def test_until_decided_adds_fresh_seeds_to_the_tuned_stage_and_the_shared_stage_trains_them(config_file, tmp_path):
    printed = ok(
        "tune", config_file, "--grid", GRID, "--tune-seeds", "0-1", "--until-decided", "--max-seeds", "10",
        "--out", tmp_path, "-q",
    )  # fmt: skip
    tune_dir = tune_dir_of(tmp_path)
    seeds = [5, 6, 2, 3, 4, 7, 8, 9, 10, 11]  # the config's, then the smallest that tuned nothing
    assert RunFolder(tune_dir / "tuned").config().seeds == seeds == RunFolder(tune_dir / "shared").config().seeds
    assert "compared on test over seeds 5,6,2,3,4,7,8,9,10,11" in printed
    assert "at each variant's own best (batchnorm optimizer.lr=0.01, plain optimizer.lr=0.01): batchnorm vs plain: " \
        "better test acc +5.64 pts" in printed  # fmt: skip


def bnbench(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "bnbench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow
def test_a_killed_tune_resumes_to_the_files_of_one_that_never_stopped(config_file, reference, tmp_path):
    """A real SIGKILL in the tuned stage: its meta.json still says running; --resume finishes the tune."""
    process = bnbench("tune", config_file, "--grid", GRID, "--tune-seeds", "0-1", "--out", tmp_path, "-q")
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("tune-digits/*/tuned/epochs.csv")):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    tune_dir = tune_dir_of(tmp_path)
    assert json.loads((tune_dir / "tuned" / "meta.json").read_text())["status"] == "running"
    ok("tune", "--resume", tune_dir, "-q")
    for s in STAGES:
        for name in ("batches.csv", "evals.csv"):
            assert (tune_dir / s / name).read_text() == (reference[0] / s / name).read_text(), (s, name)


def test_a_complete_tune_resumed_prints_its_answer_and_draws_its_sensitivity(reference, tmp_path):
    pytest.importorskip("matplotlib")
    tune_dir, printed = reference
    result = invoke("tune", "--resume", tune_dir, "--plot", tmp_path / "sensitivity")
    assert result.exit_code == 0, result.output
    assert result.stdout == printed.split("\n", 3)[3]  # the answer, without the three stages' training lines
    assert (tmp_path / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"


def test_show_of_a_tune_folder_names_its_runs(reference):
    tune_dir, _ = reference
    assert refused("show", tune_dir) == (
        f"error: {tune_dir}: a tune folder, which holds three runs; show one of them ({tune_dir}/tuned, shared or "
        f"tuning), or the tune's answer: bnbench tune --resume {tune_dir}"
    )


def test_list_names_each_stage_under_its_experiment_and_gives_the_tuning_stage_no_test_verdict(reference):
    tune_dir, _ = reference
    listing = ok("list", "--results", tune_dir.parent.parent, "--format", "json")
    runs = {(run["name"], run["run"]): run for run in json.loads(listing)["runs"]}
    assert set(runs) == {("tune-digits", f"{tune_dir.name}/{stage}") for stage in STAGES}
    assert runs[("tune-digits", f"{tune_dir.name}/tuning")]["verdict"] == "chose on validation"
    assert runs[("tune-digits", f"{tune_dir.name}/tuned")]["verdict"] != "chose on validation"


def test_the_tuning_stage_prints_and_logs_no_test_number(reference):
    """Its progress lines (run.log holds every one, whatever -q showed) report the validation split."""
    tune_dir, _ = reference
    log = (tune_dir / "tuning" / "run.log").read_text()
    assert "test acc" not in log and "test loss" not in log
    done = r"batchnorm-s0-optimizer\.lr=0\.001: done, 2 epochs, train loss \d\.\d{4}, val acc \d+\.\d\d%"
    assert re.search(done, log)
    assert re.search(r"epoch 1/2: train loss \d\.\d{4}, val loss \d\.\d{4}, val acc \d+\.\d\d% \(", log)
