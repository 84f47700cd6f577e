"""`bnbench compare`: statistics checked by hand on synthetic run folders, and end to end on real digits runs."""
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.compare import compare_runs
from bnbench.report import comparison_output

runner = CliRunner()
T_975_DF1 = math.tan(math.pi * 0.475)  # 97.5% quantiles of Student's t: 1 d.o.f. is Cauchy,
T_975_DF2 = 0.95 * math.sqrt(2 / (1 - 0.95 ** 2))  # 2 d.o.f. has F(t) = 1/2 + t / (2 sqrt(2 + t^2))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_run(folder: Path, trials: dict, *, name="synth", log_every=2, baseline="plain", status="complete",
              sweep=None, run_id="20250101-000000") -> Path:
    """A run folder written by hand. trials: {(variant, seed[, sweep value]): {"losses": [[epoch 1 losses], ...],
    "acc": [test acc per epoch], optional "test_loss", "seconds"}}; epochs: the longest trial's."""
    run_dir = folder / name / run_id
    run_dir.mkdir(parents=True)
    variants = list(dict.fromkeys(k[0] for k in trials))
    seeds = sorted({k[1] for k in trials})
    epochs = max(len(trial["losses"]) for trial in trials.values())
    config = {"name": name, "seeds": seeds, "dataset": {"name": "digits"}, "baseline": baseline,
              "variants": [{"name": v, "norm": "none" if v == "plain" else "batchnorm"} for v in variants],
              "training": {"epochs": epochs, "batch_size": 10, "log_every": log_every}, "device": "cpu",
              "sweep": {path: values for path, values in (sweep or {}).items()}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "meta.json").write_text(json.dumps({"status": status}))
    sweep_cols = "".join(f",{p}" for p in (sweep or {}))
    batches = [f"variant,seed{sweep_cols},epoch,batch,step,loss"]
    rows = [f"variant,seed{sweep_cols},epoch,train_loss,train_acc,test_loss,test_acc,seconds"]
    for key, trial in trials.items():
        label = ",".join(map(str, key))
        step = 0
        for e, losses in enumerate(trial["losses"], start=1):
            for b, loss in enumerate(losses, start=1):
                step += 1
                batches.append(f"{label},{e},{b},{step},{loss}")
            test_loss = trial.get("test_loss", [1.0] * epochs)[e - 1]
            seconds = trial.get("seconds", [1.0] * epochs)[e - 1]
            rows.append(f"{label},{e},{np.mean(losses)},0.5,{test_loss},{trial['acc'][e - 1]},{seconds}")
    (run_dir / "batches.csv").write_text("\n".join(batches) + "\n")
    (run_dir / "epochs.csv").write_text("\n".join(rows) + "\n")
    return run_dir


# ---- known numbers -----------------------------------------------------------------------------------------------

BN_FINAL, PLAIN_FINAL = [0.30, 0.32, 0.45], [0.50, 0.60, 0.70]


@pytest.fixture
def synthetic(tmp_path):
    """bn vs plain, 3 seeds, 2 epochs of 4 batches; final train losses BN_FINAL and PLAIN_FINAL."""
    trials = {}
    for s in range(3):
        trials[("bn", s)] = {"losses": [[1.0] * 4, [BN_FINAL[s]] * 4], "acc": [0.90, 0.88 + 0.01 * s],
                             "test_loss": [0.5, 0.4 + 0.01 * s], "seconds": [2.0, 2.0 + s]}
        trials[("plain", s)] = {"losses": [[2.0] * 4, [PLAIN_FINAL[s]] * 4], "acc": [0.70, 0.80 + 0.02 * s],
                                "test_loss": [0.9, 0.7 - 0.05 * s], "seconds": [1.0, 1.0]}
    return write_run(tmp_path / "results", trials)


def rows(comparisons):
    return comparisons[0].table.set_index("variant")


def test_means_and_paired_difference_with_t_interval_by_hand(synthetic):
    (comparison,), skipped = compare_runs([synthetic])
    assert skipped == []
    t = rows([comparison])
    assert t.loc["plain", "baseline"] and not t.loc["bn", "baseline"]
    assert t.loc["bn", "train_loss_mean"] == pytest.approx(np.mean(BN_FINAL))
    assert t.loc["bn", "train_loss_std"] == pytest.approx(np.std(BN_FINAL, ddof=1))
    d = np.array(BN_FINAL) - np.array(PLAIN_FINAL)
    mean, se = d.mean(), d.std(ddof=1) / math.sqrt(3)
    assert t.loc["bn", "train_loss_delta"] == pytest.approx(mean)
    assert t.loc["bn", "train_loss_ci_low"] == pytest.approx(mean - T_975_DF2 * se)
    assert t.loc["bn", "train_loss_ci_high"] == pytest.approx(mean + T_975_DF2 * se)
    t_stat = mean / se
    assert t.loc["bn", "train_loss_p"] == pytest.approx(1 - abs(t_stat) / math.sqrt(2 + t_stat ** 2))  # df = 2
    assert t.loc["bn", "train_loss_wins"] == 3 and t.loc["bn", "pairs"] == 3 and t.loc["bn", "seeds"] == 3
    # accuracy in percent, higher is better; best accuracy and its epoch
    assert t.loc["bn", "test_acc_mean"] == pytest.approx(89.0)
    assert t.loc["bn", "test_acc_delta"] == pytest.approx(89.0 - 82.0)
    assert t.loc["bn", "best_acc_mean"] == pytest.approx(90.0) and t.loc["bn", "best_epoch"] == 1
    assert t.loc["plain", "best_epoch"] == 2 and t.loc["bn", "best_acc_wins"] == 3
    assert t.loc["bn", "test_loss_delta"] == pytest.approx(np.mean([0.4 - 0.7, 0.41 - 0.65, 0.42 - 0.6]))
    assert t.loc["bn", "seconds_mean"] == pytest.approx(5.0) and t.loc["bn", "seconds_wins"] == 0
    assert pd.isna(t.loc["plain", "train_loss_delta"]) and pd.isna(t.loc["plain", "pairs"])
    assert not t.loc["bn", "partial"] and t.loc["bn", "epoch"] == 2


def test_identical_results_give_a_zero_interval_and_p_one(tmp_path):
    same = {"losses": [[1.0, 0.5]], "acc": [0.9]}
    run = write_run(tmp_path, {("bn", 0): same, ("plain", 0): same, ("bn", 1): same, ("plain", 1): same})
    t = rows(compare_runs([run])[0])
    assert (t.loc["bn", "train_loss_delta"], t.loc["bn", "train_loss_ci_low"], t.loc["bn", "train_loss_p"]) == (0, 0, 1)
    assert t.loc["bn", "train_loss_wins"] == 0


def test_steps_to_target_and_speedup_on_a_constructed_curve(tmp_path):
    """plain: 10 batches at 1.0 then 10 at 0.5 -> target 0.5, 20 steps. bn seed 0: 1.0 x3 then 0.2: the mean of
    2 batches first reaches 0.5 at step 5 (speedup 4). bn seed 1 stays at 0.9: never."""
    plain = {"losses": [[1.0] * 10, [0.5] * 10], "acc": [0.5, 0.6]}
    trials = {("bn", 0): {"losses": [[1.0] * 3 + [0.2] * 7, [0.2] * 10], "acc": [0.5, 0.6]},
              ("bn", 1): {"losses": [[0.9] * 10, [0.9] * 10], "acc": [0.5, 0.6]},
              ("plain", 0): plain, ("plain", 1): plain}
    t = rows(compare_runs([write_run(tmp_path / "a", trials, log_every=2)])[0])
    assert t.loc["bn", "steps_to_target"] == 5 and t.loc["bn", "speedup"] == 4
    assert (t.loc["bn", "target_reached"], t.loc["bn", "target_pairs"], t.loc["bn", "smoothing"]) == (1, 2, 2)
    assert t.loc["plain", "steps_to_target"] == 12  # its own target, measured the same way: (0.5 + 0.5) / 2 at 12
    # log_every 0: one epoch (10 batches); bn seed 0 has its first full window at step 10: 0.44 <= 0.5
    t = rows(compare_runs([write_run(tmp_path / "b", trials, log_every=0)])[0])
    assert t.loc["bn", "steps_to_target"] == 10 and t.loc["bn", "speedup"] == 2 and t.loc["bn", "smoothing"] == 10
    assert t.loc["plain", "steps_to_target"] == 20 and t.loc["plain", "speedup"] == 1  # "at or below" the target
    text = comparison_output(compare_runs([tmp_path / "a"])[0], "markdown", ["steps"])
    assert "step 5<br>speedup 4.00×<br>not reached 1/2" in text


def test_never_reached_says_so(tmp_path):
    trials = {("bn", 0): {"losses": [[1.0] * 4, [0.9] * 4], "acc": [0.5, 0.6]},
              ("plain", 0): {"losses": [[1.0] * 4, [0.5] * 4], "acc": [0.5, 0.6]}}
    comparisons, _ = compare_runs([write_run(tmp_path, trials)])
    assert rows(comparisons).loc["bn", "target_reached"] == 0
    assert "| not reached |" in comparison_output(comparisons, "markdown", ["steps"])


def test_diverged_trials_are_named_and_left_out(tmp_path):
    trials = {(v, s): {"losses": [[1.0] * 4, [base - 0.1 * (v == "bn")] * 4], "acc": [0.5, 0.6]}
              for s, base in enumerate([0.5, 0.6, 0.7]) for v in ("bn", "plain")}
    trials[("bn", 1)] = {"losses": [[1.0] * 4, [1.0, float("nan")]], "acc": [0.5, 0.1]}  # diverged at step 6
    trials[("plain", 2)] = {"losses": [[1.0, float("inf")]], "acc": [0.1]}  # the baseline diverged at step 2
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    t = rows([comparison])
    assert t.loc["bn", "diverged"] == "seed 1 diverged at step 6"
    assert t.loc["plain", "diverged"] == "seed 2 diverged at step 2"
    assert t.loc["bn", "seeds"] == 2 and t.loc["bn", "pairs"] == 1 and t.loc["plain", "seeds"] == 2
    assert t.loc["bn", "train_loss_mean"] == pytest.approx(np.mean([0.4, 0.6]))  # seeds 0 and 2, not the NaN
    assert t.loc["bn", "train_loss_delta"] == pytest.approx(-0.1)  # seed 0 is the only pair
    assert pd.isna(t.loc["bn", "train_loss_ci_low"]) and pd.isna(t.loc["bn", "train_loss_p"])
    assert t.loc["bn", "epoch"] == 2  # the last epoch of the trials that did not diverge
    text = comparison_output([comparison], "markdown")
    assert "bn<br>seed 1 diverged at step 6" in text and "1 seed: no interval" in text
    assert "nan" not in text.lower()
    left_out = comparison.trials.loc[~comparison.trials.ok, ["variant", "seed"]]
    assert sorted(map(tuple, left_out.values.tolist())) == [("bn", 1), ("plain", 2)]


def test_one_seed_gives_no_interval(tmp_path):
    trials = {("bn", 0): {"losses": [[0.4] * 4], "acc": [0.9]}, ("plain", 0): {"losses": [[0.5] * 4], "acc": [0.8]}}
    comparisons, _ = compare_runs([write_run(tmp_path, trials)])
    t = rows(comparisons)
    assert t.loc["bn", "train_loss_delta"] == pytest.approx(-0.1)
    assert pd.isna(t.loc["bn", "train_loss_std"]) and pd.isna(t.loc["bn", "train_loss_ci_high"])
    markdown = comparison_output(comparisons, "markdown")
    assert "1 seed: no interval" in markdown and "±" not in markdown.split("\n\n")[1]
    csv = pd.read_csv(io.StringIO(comparison_output(comparisons, "csv")))
    assert csv.train_loss_ci_low.isna().all() and csv.seeds.tolist() == [1, 1]


def test_sweep_points_are_paired_within_the_point(tmp_path):
    trials = {}
    for lr, shift in (("0.001", 0.0), ("0.01", 0.3)):
        for s in (0, 1):
            trials[("bn", s, lr)] = {"losses": [[0.2 + shift + 0.01 * s] * 4], "acc": [0.9]}
            trials[("plain", s, lr)] = {"losses": [[0.5 + shift] * 4], "acc": [0.8]}
    run = write_run(tmp_path, trials, sweep={"optimizer.lr": [0.001, 0.01]})
    t = compare_runs([run])[0][0].table
    assert t["optimizer.lr"].tolist() == ["0.001", "0.001", "0.01", "0.01"]
    assert t[t.variant == "bn"].train_loss_delta.tolist() == pytest.approx([-0.295, -0.295])


def test_windows_are_the_tutorials_lines(tmp_path):
    trials = {(v, s): {"losses": [[9.0] * 4, [1.0 + s, 2.0 + s, 3.0, 5.0 - (v == "bn")]], "acc": [0.5, 0.6]}
              for v in ("bn", "plain") for s in (0, 1)}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    w = comparison.windows.set_index(["variant", "mini_batch"])
    assert w.loc[("plain", 2), "loss_mean"] == pytest.approx(np.mean([1.5, 2.5]))
    assert w.loc[("bn", 4), "loss_mean"] == pytest.approx(3.5) and w.loc[("plain", 4), "loss_mean"] == 4.0
    assert w.loc[("bn", 2), "loss_std"] == pytest.approx(np.std([1.5, 2.5], ddof=1))
    epoch1 = compare_runs([tmp_path], epoch=1)[0][0].windows
    assert epoch1.loss_mean.tolist() == [9.0] * 4 and set(epoch1.epoch) == {1}
    result = invoke("compare", tmp_path, "--windows", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "| mini-batch | bn | plain |" in result.stdout
    assert "| 4 | 3.5000 ± 0.0000 | 4.0000 ± 0.0000 |" in result.stdout


def test_partial_run_is_compared_at_the_common_epoch_and_marked(tmp_path):
    trials = {(v, s): {"losses": [[1.0] * 4, [0.5 - 0.1 * (v == "bn")] * 4], "acc": [0.5, 0.6]}
              for v in ("bn", "plain") for s in (0, 1)}
    trials[("plain", 1)] = {"losses": [[1.0] * 4], "acc": [0.5]}  # stopped after epoch 1
    run = write_run(tmp_path, trials, status="partial")
    (comparison,), _ = compare_runs([run])
    t = rows([comparison])
    assert t.loc["bn", "status"] == "partial" and t.loc["bn", "partial"] and t.loc["bn", "epoch"] == 1
    assert "[partial]" in comparison.title and "epoch 1 of 2" in comparison_output([comparison], "markdown")
    result = invoke("compare", run, "--epoch", 2)
    assert result.exit_code == 2 and "trial plain seed 1 has only 1 epoch" in result.stderr


# ---- exports -----------------------------------------------------------------------------------------------------

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def test_every_format_carries_the_same_numbers(synthetic, tmp_path):
    comparisons, _ = compare_runs([synthetic])
    table = comparisons[0].table
    csv = pd.read_csv(io.StringIO(comparison_output(comparisons, "csv")))
    records = json.loads(comparison_output(comparisons, "json"))
    for column in ["train_loss_mean", "train_loss_ci_low", "train_loss_p", "test_acc_delta", "speedup", "seeds"]:
        assert csv[column].tolist() == pytest.approx(table[column].astype(float).tolist(), nan_ok=True)
        assert [r[column] if r[column] is not None else np.nan for r in records] == \
            pytest.approx(table[column].astype(float).tolist(), nan_ok=True)
    assert {"seeds", "pairs", "train_loss_ci_low", "train_loss_ci_high"} <= set(csv.columns)
    bn = table.set_index("variant").loc["bn"]
    expected = [bn.train_loss_mean, bn.train_loss_std, bn.train_loss_delta, bn.train_loss_ci_low,
                bn.train_loss_ci_high, bn.train_loss_p]
    markdown = comparison_output(comparisons, "markdown", ["train_loss"])
    cell = next(line for line in markdown.splitlines() if line.startswith("| bn ")).split(" | ")[2]
    latex = comparison_output(comparisons, "latex", ["train_loss"])
    tex_cell = next(line for line in latex.splitlines() if line.startswith("bn & ")).split(" & ")[2]
    result = invoke("compare", synthetic, "-m", "train_loss", "--output", tmp_path / "table.txt")
    assert result.exit_code == 0, result.output
    plain = (tmp_path / "table.txt").read_text()
    lines = plain.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("│ bn "))
    rich_cell = " ".join(line.split("│")[3] for line in lines[start:start + 4])
    for text in (cell, tex_cell, rich_cell):
        numbers = [float(x) for x in re.findall(NUMBER, text)]
        assert numbers[:6] == pytest.approx(expected, abs=6e-3), text
    assert r"\begin{tabular}" in latex and r"$\pm$" in latex and r"$\Delta$" in latex


# ---- end to end on the digits set --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Two real runs of the shipped quick config through `bnbench run`: 2 epochs of seeds 0 and 1, then 1 epoch of
    seed 0 (the newest)."""
    out = tmp_path_factory.mktemp("results")
    for seeds, epochs in (("0,1", 2), ("0", 1)):
        result = invoke("run", "quick", "--set", f"training.epochs={epochs}", "--seeds", seeds, "--out", out, "-q")
        assert result.exit_code == 0, result.output
    return out


def test_real_runs_compare_with_the_numbers_of_their_csvs(digits_runs, tmp_path):
    result = invoke("compare", digits_runs, "--plot", tmp_path / "quick.png", "--format", "csv")
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(io.StringIO(result.stdout))
    assert csv.experiment.unique().tolist() == ["quick-digits"] and csv.run.nunique() == 2
    newest = csv[csv.run == csv.run.iloc[0]].set_index("variant")
    assert newest.loc["batchnorm", "seeds"] == 1  # the newest run (seed 0 only) comes first
    older = csv[csv.run != csv.run.iloc[0]].set_index("variant")
    run_dir = Path(older.run.iloc[0])
    batches = pd.read_csv(run_dir / "batches.csv")
    final = batches[batches.epoch == 2].groupby(["variant", "seed"]).loss.mean()
    assert older.loc["plain", "train_loss_mean"] == pytest.approx(final["plain"].mean())
    d = final["batchnorm"] - final["plain"]
    assert older.loc["batchnorm", "train_loss_delta"] == pytest.approx(d.mean())
    half = T_975_DF1 * d.std(ddof=1) / math.sqrt(2)
    assert older.loc["batchnorm", "train_loss_ci_low"] == pytest.approx(d.mean() - half)
    assert older.loc["batchnorm", "train_loss_ci_high"] == pytest.approx(d.mean() + half)
    epochs = pd.read_csv(run_dir / "epochs.csv")
    acc = 100 * epochs[epochs.epoch == 2].groupby("variant").test_acc.mean()
    assert older.loc["batchnorm", "test_acc_mean"] == pytest.approx(acc["batchnorm"])
    assert older.loc["plain", "baseline"] and older.loc["plain", "steps"] == 2 * 144
    png = (tmp_path / "quick.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


def test_real_run_table_and_markdown(digits_runs):
    result = invoke("compare", digits_runs)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("quick-digits · digits, mlp [64, 32]") == 2 and "(baseline)" in result.stdout
    assert "1 seed: no interval" in result.stdout and "wins" in result.stdout
    result = invoke("compare", digits_runs, "--format", "markdown", "--baseline", "batchnorm")
    assert result.exit_code == 0 and "| batchnorm<br>(baseline) |" in result.stdout


# ---- bad input ---------------------------------------------------------------------------------------------------

def damage(run_dir: Path, name: str, edit) -> None:
    path = run_dir / name
    path.write_text(edit(path.read_text()))


@pytest.mark.parametrize("name, edit, message", [
    ("batches.csv", lambda t: t[:-3], "batches.csv: the last line is cut off"),
    ("batches.csv", lambda t: t.replace(",loss", ",lost", 1), "batches.csv: missing column 'loss'"),
    ("epochs.csv", lambda t: t.replace(",0.5,", ",half,", 1), "epochs.csv: line 2: train_acc is 'half'"),
    ("batches.csv", lambda t: "\n".join(t.split("\n")[:3] + t.split("\n")[4:]), "line 4: step 4 should be 3"),
    ("batches.csv", lambda t: t.replace("bn,0,1,1,1,", "bm,0,1,1,1,", 1), "line 2: trial bm seed 0 is not in"),
    ("batches.csv", lambda t: t.replace(",5,0.3\n", ",5,nan\n", 1), "line 6: the loss is not finite but the trial"),
    ("epochs.csv", lambda t: "\n".join(t.split("\n")[:-2]) + "\n", "has 1 epochs here but 2 in batches.csv"),
    ("batches.csv", lambda t: "", "batches.csv: empty"),
    ("batches.csv", lambda t: t.replace("\n", ",x\n", 3).replace(",x", "", 2), "batches.csv: not a valid CSV"),
])
def test_damaged_files_name_the_file_and_exit_2(synthetic, name, edit, message):
    damage(synthetic, name, edit)
    result = invoke("compare", synthetic)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.output and result.stderr.startswith("error: ")


def test_folders_without_runs_and_unknown_baseline(tmp_path, synthetic):
    (tmp_path / "empty").mkdir()
    result = invoke("compare", tmp_path / "empty")
    assert result.exit_code == 2 and "no bnbench runs found" in result.stderr
    (synthetic / "config.yaml").rename(synthetic / "config.old")
    result = invoke("compare", synthetic)
    assert result.exit_code == 2 and f"{synthetic / 'config.yaml'}: missing" in result.stderr
    (synthetic / "config.old").rename(synthetic / "config.yaml")
    result = invoke("compare", synthetic, "--baseline", "nope")
    assert result.exit_code == 2 and "--baseline nope: not a variant" in result.stderr and "bn, plain" in result.stderr
    for option in (["--format", "xml"], ["--metric", "loss"]):
        result = invoke("compare", synthetic, *option)
        assert result.exit_code == 2 and f"{option[0]} {option[1]}: unknown" in result.stderr


def test_one_bad_run_is_skipped_with_a_warning(synthetic):
    bad = synthetic.parent / "20240101-000000"
    bad.mkdir()
    (bad / "meta.json").write_text("{}")
    result = invoke("compare", synthetic.parent.parent, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"warning: skipped {bad}: {bad / 'config.yaml'}: missing")
    assert {r["run"] for r in json.loads(result.stdout)} == {str(synthetic)}


def test_runs_are_grouped_by_experiment_newest_first(tmp_path):
    one = {("bn", 0): {"losses": [[0.4] * 4], "acc": [0.9]}, ("plain", 0): {"losses": [[0.5] * 4], "acc": [0.8]}}
    write_run(tmp_path, one, name="alpha", run_id="20250101-000000")
    write_run(tmp_path, one, name="beta", run_id="20250301-000000")
    write_run(tmp_path, one, name="alpha", run_id="20250201-000000")
    comparisons, _ = compare_runs([tmp_path])
    assert [(c.name, c.results.dir.name) for c in comparisons] == [
        ("beta", "20250301-000000"), ("alpha", "20250201-000000"), ("alpha", "20250101-000000")]
