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
from bnbench.analysis import compare_runs
from bnbench.layout import natural_width, tokens
from bnbench.report import SHOWN, _comparison_grid, comparison_output, configs_table, runs_table

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
    assert t.loc["bn", "seconds_mean"] == pytest.approx(5.0) and t.loc["bn", "seconds_delta"] == pytest.approx(3.0)
    assert "seconds_p" not in t.columns and "seconds_ci_low" not in t.columns  # wall time: Δ only, no test
    assert t.loc["bn", "train_loss_p_holm"] == t.loc["bn", "train_loss_p"] and t.loc["bn", "train_loss_tests"] == 1
    assert t.loc["bn", "train_loss_note"] == ""  # 3 pairs with spread: a trusted interval
    assert pd.isna(t.loc["plain", "train_loss_delta"]) and pd.isna(t.loc["plain", "pairs"])
    assert not t.loc["bn", "partial"] and t.loc["bn", "epoch"] == 2


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_differences_without_spread_have_no_interval_and_no_p(tmp_path, shift):
    """d = [0, 0] or [1, 1]: the t statistic is 0/0 or x/0; no interval and no p-value, said in words."""
    same = {"losses": [[1.0, 0.5]], "acc": [0.9]}
    moved = {"losses": [[1.0 + shift, 0.5 + shift]], "acc": [0.9]}
    run = write_run(tmp_path, {("bn", 0): moved, ("plain", 0): same, ("bn", 1): moved, ("plain", 1): same})
    (comparison,), _ = compare_runs([run])
    t = rows([comparison])
    assert t.loc["bn", "train_loss_delta"] == pytest.approx(shift)
    assert pd.isna(t.loc["bn", "train_loss_ci_low"]) and pd.isna(t.loc["bn", "train_loss_p"])
    assert pd.isna(t.loc["bn", "train_loss_p_holm"]) and t.loc["bn", "train_loss_tests"] == 0
    assert t.loc["bn", "train_loss_note"] == "no spread: interval undefined" and t.loc["bn", "train_loss_wins"] == 0
    assert "no spread: interval undefined" in comparison_output([comparison], "markdown", ["train_loss"])


def test_two_pairs_are_flagged_and_the_verdict_asks_for_five_seeds(tmp_path):
    trials = {(v, s): {"losses": [[1.0] * 4], "acc": [0.80 + 0.05 * (v == "bn") + 0.01 * s * (v == "bn")]}
              for v in ("bn", "plain") for s in (0, 1)}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    t = rows([comparison])
    assert t.loc["bn", "test_acc_note"] == "2 pairs: interval unreliable"
    half = T_975_DF1 * np.std([5.0, 6.0], ddof=1) / math.sqrt(2)  # 1 degree of freedom: t = 12.7
    assert t.loc["bn", "test_acc_ci_low"] == pytest.approx(5.5 - half)
    assert "2 pairs: interval unreliable" in t.loc["bn", "verdict"]
    assert t.loc["bn", "verdict"].endswith("only 2 pairs: run ≥ 5 seeds")


def curve(drop_at: int, steps: int = 20, high: float = 1.0, low: float = 0.5) -> dict:
    """Two epochs of steps/2 batches: the loss is `high` until step `drop_at`, then `low`."""
    losses = [high if i < drop_at else low for i in range(1, steps + 1)]
    return {"losses": [losses[:steps // 2], losses[steps // 2:]], "acc": [0.5, 0.6]}


def test_steps_to_target_judges_both_curves_the_same_way(tmp_path):
    """Target: plain's final train loss (epoch 2's mean); window 2. Per seed, T = the first step whose mean of the
    last 2 losses is at or below it; speedup = T_plain / T_bn.
    seed 0, faster: plain 1.0 then 0.5 from step 12 (target 0.5, T 13); bn drops at step 5 (T 6): 13/6.
    seed 1, slower: plain drops at step 5 (target 0.5, T 6), bn at step 9 (T 10): 6/10, shown as such.
    seed 2, equal: both drop at step 8 (T 9): exactly 1."""
    trials = {("bn", 0): curve(5), ("plain", 0): curve(12), ("bn", 1): curve(9), ("plain", 1): curve(5),
              ("bn", 2): curve(8), ("plain", 2): curve(8)}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"])
    assert per_seed.loc["bn", "steps_step"].tolist() == [6, 10, 9]
    assert per_seed.loc["plain", "steps_step"].tolist() == [13, 6, 9]
    ratios = [13 / 6, 6 / 10, 1.0]
    assert per_seed.loc["bn", "steps_ratio"].tolist() == pytest.approx(ratios)
    assert per_seed.loc["plain", "steps_ratio"].tolist() == [1.0, 1.0, 1.0]  # the baseline never beats itself
    t = rows([comparison])
    logs = np.log(ratios)
    half = T_975_DF2 * logs.std(ddof=1) / math.sqrt(3)
    assert t.loc["bn", "steps_speedup"] == pytest.approx(np.exp(logs.mean()))  # geometric mean
    assert t.loc["bn", "steps_ci_low"] == pytest.approx(np.exp(logs.mean() - half))
    assert t.loc["bn", "steps_ci_high"] == pytest.approx(np.exp(logs.mean() + half))
    assert t.loc["bn", "steps_bound"] == "" and (t.loc["bn", "steps_reached"], t.loc["bn", "steps_pairs"]) == (3, 3)
    assert t.loc["plain", "steps_speedup"] == 1.0 and t.loc["plain", "steps_at"] == pytest.approx(28 / 3)
    markdown = comparison_output([comparison], "markdown", ["steps"])
    assert f"{np.exp(logs.mean()):.2f}×<br>[" in markdown and "1.00× (reference)" in markdown


def test_a_slower_variant_shows_a_speedup_below_one(tmp_path):
    trials = {("bn", s): curve(9) for s in (0, 1, 2)} | {("plain", s): curve(5 + s) for s in (0, 1, 2)}
    t = rows(compare_runs([write_run(tmp_path, trials)])[0])
    assert t.loc["bn", "steps_speedup"] == pytest.approx(np.exp(np.mean(np.log([6 / 10, 7 / 10, 8 / 10]))))
    assert "(slower)" in comparison_output(compare_runs([tmp_path])[0], "markdown", ["steps"])


def test_bounds_first_window_never_and_no_target(tmp_path):
    """seed 0: bn is at 0.5 from step 1, so its first full window (step 2) already meets the target: T_bn <= 2,
    speedup >= 13/2. seed 1: bn never gets below 0.9: speedup < T_plain / 20 = 6/20. seed 2: both meet the target
    in their first window: no ratio at all (n/a)."""
    trials = {("bn", 0): curve(1), ("plain", 0): curve(12), ("bn", 1): curve(30, low=0.9, high=0.9),
              ("plain", 1): curve(5), ("bn", 2): curve(1), ("plain", 2): curve(1)}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"]).loc["bn"]
    assert per_seed.steps_reach.tolist() == ["within", "never", "within"]
    assert per_seed.steps_relation.tolist() == ["≥", "<", "n/a"] and per_seed.steps_ratio[0] == 13 / 2
    assert per_seed.steps_ratio[1] == pytest.approx(6 / 20)
    t = rows([comparison])
    assert t.loc["bn", "steps_bound"] == "n/a" and pd.isna(t.loc["bn", "steps_speedup"])  # bounds both ways
    # seed 2 reached the target too, with no ratio
    assert (t.loc["bn", "steps_pairs"], t.loc["bn", "steps_na"], t.loc["bn", "steps_reached"]) == (2, 1, 2)
    assert t.loc["bn", "steps_note"] == "bounds both ways: no mean; n/a on 1 seed: both met it at their first " \
                                        "measured point"
    # without the seed that never reached it, the mean is a lower bound
    only = write_run(tmp_path / "b", {k: v for k, v in trials.items() if k[1] == 0} | {("bn", 3): curve(5),
                                                                                     ("plain", 3): curve(12)})
    t = rows(compare_runs([only])[0])
    assert t.loc["bn", "steps_bound"] == "≥" and t.loc["bn", "steps_speedup"] == pytest.approx(
        np.sqrt(13 / 2 * 13 / 6))
    assert "≥" in t.loc["bn", "verdict"] and pd.isna(t.loc["bn", "steps_ci_low"])


def test_never_reached_is_an_upper_bound_counted_never_dropped(tmp_path):
    trials = {("bn", 0): {"losses": [[1.0] * 4, [0.9] * 4], "acc": [0.5, 0.6]},
              ("plain", 0): {"losses": [[1.0] * 4, [0.5] * 4], "acc": [0.5, 0.6]}}
    comparisons, _ = compare_runs([write_run(tmp_path, trials)])
    t = rows(comparisons)
    assert (t.loc["bn", "steps_reached"], t.loc["bn", "steps_pairs"], t.loc["bn", "steps_bound"]) == (0, 1, "≤")
    assert t.loc["bn", "steps_speedup"] == pytest.approx(6 / 8)  # plain meets 0.5 at step 6 of 8
    assert "≤0.75× (slower)<br>reached 0/1" in comparison_output(comparisons, "markdown", ["steps"])


def test_steps_to_the_baselines_best_test_accuracy(tmp_path):
    """Without evals.csv (older runs) the evaluations are the epoch ends: plain's best is 0.7 at epoch 3 (step
    12); bn reaches it at epoch 2 (step 8): 1.5x; a bn seed already there at epoch 1 gives a bound (>= 12/4)."""
    losses = [[1.0] * 4] * 3
    trials = {("bn", 0): {"losses": losses, "acc": [0.5, 0.7, 0.7]}, ("plain", 0): {"losses": losses,
                                                                                    "acc": [0.5, 0.6, 0.7]},
              ("bn", 1): {"losses": losses, "acc": [0.8, 0.8, 0.8]}, ("plain", 1): {"losses": losses,
                                                                                    "acc": [0.5, 0.6, 0.7]}}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"]).loc["bn"]
    assert per_seed.steps_acc_relation.tolist() == ["=", "≥"] and per_seed.steps_acc_ratio.tolist() == [1.5, 3.0]
    t = rows([comparison])
    assert t.loc["bn", "steps_acc_bound"] == "≥" and t.loc["bn", "steps_acc_speedup"] == pytest.approx(np.sqrt(4.5))


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
    assert "bn<br>diverged 1/3 seeds<br>seed 1 diverged at step 6" in text and "1 pair: no interval" in text
    assert t.loc["bn", "diverged_seeds"] == 1 and "bn diverged on 1/3 seeds" in t.loc["bn", "verdict"]
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
    assert "1 pair: no interval" in markdown and "±" not in markdown.split("\n\n")[2]
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
    for column in ["train_loss_mean", "train_loss_ci_low", "train_loss_p", "train_loss_p_holm", "test_acc_delta",
                   "steps_speedup", "steps_ci_low", "seeds"]:
        assert csv[column].tolist() == pytest.approx(table[column].astype(float).tolist(), nan_ok=True)
        assert [r[column] if r[column] is not None else np.nan for r in records] == \
            pytest.approx(table[column].astype(float).tolist(), nan_ok=True)
    assert {"seeds", "pairs", "train_loss_ci_low", "train_loss_ci_high", "verdict"} <= set(csv.columns)
    assert csv.verdict[0] == table.verdict[0] and records[0]["verdict"] == table.verdict[0]
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
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("│"))
    rich_cell = " ".join(line.split("│")[3] for line in lines[start:end])
    for text in (cell, tex_cell, rich_cell):
        numbers = [float(x) for x in re.findall(NUMBER, re.sub(r"\(\d+ pairs?\)", "", text))]
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
    assert f"plot: {tmp_path / 'quick.png'}" in result.stderr
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
    assert older.loc["plain", "baseline"] and older.loc["plain", "steps_total"] == 2 * 144
    png = (tmp_path / "quick.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


def test_real_run_table_and_markdown(digits_runs):
    result = invoke("compare", digits_runs)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("quick-digits · digits, mlp [64, 32]") == 2 and "(baseline)" in result.stdout
    assert "1 pair: no interval" in result.stdout and "wins" in result.stdout
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
    comparisons, _ = compare_runs([tmp_path], pool=False)  # the two alpha runs would be pooled (tests/test_pool.py)
    assert [(c.name, c.results.dir.name) for c in comparisons] == [
        ("beta", "20250301-000000"), ("alpha", "20250201-000000"), ("alpha", "20250101-000000")]


# ---- many comparisons ---------------------------------------------------------------------------------------------

def test_p_values_are_adjusted_across_variants_and_sweep_points(tmp_path):
    """2 variants x 2 sweep points = 4 tests per metric; each row's Holm p is computed by hand from the 4 raw ones."""
    trials = {}
    for lr, shift in (("0.001", 0.0), ("0.01", 0.02)):
        for s in range(3):
            trials[("plain", s, lr)] = {"losses": [[1.0] * 4], "acc": [0.80 + 0.01 * s]}
            trials[("bn", s, lr)] = {"losses": [[1.0] * 4], "acc": [0.85 + shift + 0.013 * s * (1 + s)]}
            trials[("gn", s, lr)] = {"losses": [[1.0] * 4], "acc": [0.81 + 0.02 * (s == 1) - shift]}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials, sweep={"optimizer.lr": [0.001, 0.01]})])
    t = comparison.table[~comparison.table.baseline]
    raw = t.test_acc_p.to_numpy()
    order = np.argsort(raw)
    expected = np.maximum.accumulate(np.minimum(1, (4 - np.arange(4)) * raw[order]))
    assert t.test_acc_p_holm.to_numpy()[order] == pytest.approx(expected)
    assert (t.test_acc_tests == 4).all() and (t.test_acc_p_holm >= t.test_acc_p).all()
    assert all("Holm p=" in v and "4 tests" in v for v in t.verdict)


# ---- layout ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [60, 80, 120, 200, None])
def test_the_table_reads_at_any_width_and_never_splits_a_cell(digits_runs, width):
    """Every line fits (widths 60-200) or nothing is wrapped at all (piped: None); every cell line's tokens, the
    run id and the verdict's tokens appear whole on one line."""
    comparisons, _ = compare_runs([digits_runs])
    text = comparison_output(comparisons, "table", width=width)
    lines = text.splitlines()
    if width is not None:
        assert max(map(len, lines)) <= width
    for c in comparisons:
        grid = _comparison_grid(c, SHOWN)
        words = [w for row in grid.rows for cell in row for line in cell for w in tokens(line)]
        words += tokens(grid.title) + [w for v in grid.lead for w in tokens(v)] + [c.results.dir.name]
        for word in words:
            assert any(word in line for line in lines), (word, width)
        if width is None:
            assert all(any(line in out for out in lines) for row in grid.rows for cell in row for line in cell)
            assert grid.title in lines and all(v in lines for v in grid.lead)
    fits = width is None or all(natural_width(_comparison_grid(c, SHOWN)) <= width for c in comparisons)
    assert ("┃" in text) == fits  # boxed where it fits, records below


@pytest.mark.parametrize("width", [40, 80, None])
def test_list_never_truncates_run_ids_or_names(digits_runs, width):
    text = runs_table(digits_runs, width) + configs_table(None, width)
    lines = text.splitlines()
    for run_dir in (digits_runs / "quick-digits").iterdir():
        assert any(run_dir.name in line for line in lines)
    assert any("quick-digits" in line for line in lines) and any("placement-cifar10" in line for line in lines)
    assert width is None or all(len(line) <= width or len(tokens(line)) == 1 for line in lines)


def test_a_target_the_baseline_never_meets_is_na_with_the_reason(tmp_path):
    """Window 3 over epochs of 4 batches does not divide them: every mean of 3 batches of plain's curve is at least
    (1 + 1 + 0.2) / 3 = 0.73, above its epoch-2 mean 0.6, so no seed has a ratio."""
    plain = {"losses": [[1.0] * 4, [0.2, 1.0, 1.0, 0.2]], "acc": [0.5, 0.6]}
    trials = {("bn", 0): curve(2, steps=8), ("plain", 0): plain}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials, log_every=3)])
    t = rows([comparison])
    assert pd.isna(t.loc["bn", "steps_speedup"]) and t.loc["bn", "steps_na"] == 1
    assert t.loc["bn", "steps_note"] == "n/a on 1 seed: plain never met its own target"
    assert pd.isna(t.loc["plain", "steps_speedup"])
    assert "speedup to plain's final train loss: n/a (n/a on 1 seed: plain never met its own target" in \
        t.loc["bn", "verdict"]


def test_a_run_of_one_variant_shows_its_numbers_without_deltas(tmp_path):
    """Also a window longer than the run (log_every 500, 8 steps): no smoothed point, said so."""
    trials = {("bn", s): {"losses": [[1.0 - 0.1 * s] * 4, [0.5] * 4], "acc": [0.5, 0.6]} for s in (0, 1)}
    run = write_run(tmp_path, trials, baseline="bn", log_every=500)
    (comparison,), _ = compare_runs([run])
    t = rows([comparison])
    assert t.loc["bn", "train_loss_mean"] == 0.5 and pd.isna(t.loc["bn", "train_loss_delta"])
    assert t.loc["bn", "steps_note"] == "n/a on 2 seeds: no full smoothing window"
    for args in ([], ["--windows"], ["--plot", tmp_path / "one.png"], ["--format", "json"]):
        result = invoke("compare", run, *args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
