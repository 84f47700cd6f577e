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
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.analysis import compare_runs, inference
from bnbench.cli import app
from bnbench.views.compare_text import SHOWN, _comparison_grid, comparison_output
from bnbench.views.layout import natural_width, tokens
from bnbench.views.list_text import configs_table, runs_table

runner = CliRunner()
T_975_DF1 = math.tan(math.pi * 0.475)  # 97.5% quantiles of Student's t: 1 d.o.f. is Cauchy,
T_975_DF2 = 0.95 * math.sqrt(2 / (1 - 0.95**2))  # 2 d.o.f. has F(t) = 1/2 + t / (2 sqrt(2 + t^2))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_run(
    folder: Path,
    trials: dict,
    *,
    name="synth",
    log_every=2,
    baseline="plain",
    status="complete",
    sweep=None,
    run_id="20250101-000000",
) -> Path:
    """A run folder written by hand. trials: {(variant, seed[, sweep value]): {"losses": [[epoch 1 losses], ...],
    "acc": [test acc per epoch], optional "test_loss", "seconds"}}; epochs: the longest trial's."""
    run_dir = folder / name / run_id
    run_dir.mkdir(parents=True)
    variants = list(dict.fromkeys(k[0] for k in trials))
    seeds = sorted({k[1] for k in trials})
    epochs = max(len(trial["losses"]) for trial in trials.values())
    config = tiny_config(
        name,
        seeds,
        optimizer=None,
        training={"epochs": epochs, "batch_size": 10, "log_every": log_every},
        baseline=baseline,
        variants=[{"name": v, "norm": "none" if v == "plain" else "batchnorm"} for v in variants],
        sweep={path: values for path, values in (sweep or {}).items()},
    )
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
        trials[("bn", s)] = {
            "losses": [[1.0] * 4, [BN_FINAL[s]] * 4],
            "acc": [0.90, 0.88 + 0.01 * s],
            "test_loss": [0.5, 0.4 + 0.01 * s],
            "seconds": [2.0, 2.0 + s],
        }
        trials[("plain", s)] = {
            "losses": [[2.0] * 4, [PLAIN_FINAL[s]] * 4],
            "acc": [0.70, 0.80 + 0.02 * s],
            "test_loss": [0.9, 0.7 - 0.05 * s],
            "seconds": [1.0, 1.0],
        }
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
    t_stat = mean / se
    assert t.loc["bn", "train_loss_p_t"] == pytest.approx(1 - abs(t_stat) / math.sqrt(2 + t_stat**2))  # df = 2
    # the decision asks the skew-corrected test too: the larger p, the hull of the two intervals
    hall = inference.mean_tests(d[None, :])
    assert t.loc["bn", "train_loss_p_skew"] == pytest.approx(hall["p_skew"][0])
    assert t.loc["bn", "train_loss_p"] == max(t.loc["bn", "train_loss_p_t"], t.loc["bn", "train_loss_p_skew"])
    assert t.loc["bn", "train_loss_ci_low"] == pytest.approx(min(mean - T_975_DF2 * se, hall["ci_low"][0]))
    assert t.loc["bn", "train_loss_ci_high"] == pytest.approx(max(mean + T_975_DF2 * se, hall["ci_high"][0]))
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
def test_a_constant_difference_has_no_t_interval_but_an_exact_p(tmp_path, shift):
    """d = [0, 0] or [1, 1]: the t statistic is 0/0 or x/0, so no t-interval and no t-test, said in words; the exact
    sign-flip test still stands: of the 4 sign vectors, |sum| >= |observed sum| for all 4 when d = 0 (p = 1), and
    for the 2 that keep both signs equal when d = [1, 1] (p = 2/2^2). With 1 comparison the Holm family is 1."""
    same = {"losses": [[1.0, 0.5]], "acc": [0.9]}
    moved = {"losses": [[1.0 + shift, 0.5 + shift]], "acc": [0.9]}
    run = write_run(tmp_path, {("bn", 0): moved, ("plain", 0): same, ("bn", 1): moved, ("plain", 1): same})
    (comparison,), _ = compare_runs([run])
    t = rows([comparison])
    assert t.loc["bn", "train_loss_delta"] == pytest.approx(shift)
    assert pd.isna(t.loc["bn", "train_loss_ci_low"]) and pd.isna(t.loc["bn", "train_loss_ci_high"])
    assert pd.isna(t.loc["bn", "train_loss_p_t"])
    exact = 1.0 if shift == 0 else 2 / 2**2
    assert t.loc["bn", "train_loss_p_exact"] == pytest.approx(exact)
    assert t.loc["bn", "train_loss_p"] == pytest.approx(exact)  # the t-test is undefined: the decision is exact
    assert t.loc["bn", "train_loss_p_holm"] == pytest.approx(exact) and t.loc["bn", "train_loss_tests"] == 1
    assert t.loc["bn", "train_loss_note"] == "constant difference: no t-interval"
    # lower loss is better: bn is 1 higher on both seeds (2 losses), or tied on both (neither)
    assert (t.loc["bn", "train_loss_wins"], t.loc["bn", "train_loss_losses"]) == (0, 0 if shift == 0 else 2)
    assert "constant difference: no t-interval" in comparison_output([comparison], "markdown", ["train_loss"])


def test_two_pairs_are_flagged_and_the_verdict_asks_for_eight_seeds(tmp_path):
    trials = {
        (v, s): {"losses": [[1.0] * 4], "acc": [0.80 + 0.05 * (v == "bn") + 0.01 * s * (v == "bn")]}
        for v in ("bn", "plain")
        for s in (0, 1)
    }
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    t = rows([comparison])
    assert t.loc["bn", "test_acc_note"] == "2 pairs: interval unreliable"
    half = T_975_DF1 * np.std([5.0, 6.0], ddof=1) / math.sqrt(2)  # 1 degree of freedom: t = 12.7
    assert t.loc["bn", "test_acc_ci_low"] == pytest.approx(5.5 - half)
    assert (
        f"no difference shown in test acc: +5.50 pts, unadjusted 95% CI [{5.5 - half:+.2f}, {5.5 + half:+.2f}], 2/2 "
        f"seeds better" in t.loc["bn", "verdict"]
    )
    assert t.loc["bn", "verdict"].endswith(
        "only 2 pairs: too few to check that the differences are near-symmetric, as the tests assume; run ≥ 8 seeds"
    )


def curve(drop_at: int, steps: int = 20, high: float = 1.0, low: float = 0.5) -> dict:
    """Two epochs of steps/2 batches: the loss is `high` until step `drop_at`, then `low`. With window 2, the smoothed
    loss is first defined at step 2 and is `low` from step drop_at + 1 on."""
    losses = [high if i < drop_at else low for i in range(1, steps + 1)]
    return {"losses": [losses[: steps // 2], losses[steps // 2 :]], "acc": [0.5, 0.6]}


def t_p_df2(mean: float, se: float) -> float:
    """Two-sided one-sample t-test p with 2 degrees of freedom: F(t) = 1/2 + t / (2 sqrt(2 + t^2))."""
    t = mean / se
    return 1 - abs(t) / math.sqrt(2 + t**2)


def test_steps_to_target_judges_both_curves_the_same_way(tmp_path):
    """Target: the mean over plain's seeds of its smoothed loss (window 2) at half its run, step ceil(20 / 2) = 10.
    Every plain curve below has dropped to 0.5 by step 9, so that level is 0.5 on every seed, and so is the target.
    T = the first step whose mean of the last 2 losses is at or below it, one after the drop, for plain's trials as
    for bn's; the step before it is measured too, so every crossing is exact (after = T - 1). speedup = T_plain /
    T_bn.
    seed 0, faster: plain drops at step 9 (T 10), bn at step 3 (T 4): 10/4.
    seed 1, slower: plain drops at step 5 (T 6), bn at step 9 (T 10): 6/10, shown as such.
    seed 2, equal: both drop at step 8 (T 9): exactly 1."""
    trials = {
        ("bn", 0): curve(3),
        ("plain", 0): curve(9),
        ("bn", 1): curve(9),
        ("plain", 1): curve(5),
        ("bn", 2): curve(8),
        ("plain", 2): curve(8),
    }
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"])
    assert per_seed.loc["bn", "steps_at"].tolist() == [4, 10, 9]
    assert per_seed.loc["bn", "steps_after"].tolist() == [3, 9, 8]
    assert per_seed.loc["plain", "steps_at"].tolist() == [10, 6, 9]
    assert per_seed.loc["plain", "steps_after"].tolist() == [9, 5, 8]
    assert per_seed.steps_target.tolist() == [0.5] * 6 and per_seed.steps_ref.tolist() == [10] * 6
    assert per_seed.steps_why.tolist() == [""] * 6
    ratios = [10 / 4, 6 / 10, 1.0]
    logs = np.log(ratios)
    mean, se = logs.mean(), logs.std(ddof=1) / math.sqrt(3)
    t = rows([comparison])
    assert t.loc["bn", "steps_estimator"] == "geometric mean"
    assert t.loc["bn", "steps_speedup"] == pytest.approx(np.exp(mean))  # geometric mean
    assert t.loc["bn", "steps_speedup_high"] == pytest.approx(np.exp(mean))  # exact: no range
    skewed = inference.mean_tests(logs[None, :])  # log 2.5, log 0.6, 0: skewed, so the hull is the wider
    assert t.loc["bn", "steps_ci_low"] == pytest.approx(np.exp(min(mean - T_975_DF2 * se, skewed["ci_low"][0])))
    assert t.loc["bn", "steps_ci_high"] == pytest.approx(np.exp(max(mean + T_975_DF2 * se, skewed["ci_high"][0])))
    assert t.loc["bn", "steps_p_t"] == pytest.approx(t_p_df2(mean, se))
    assert t.loc["bn", "steps_p"] == pytest.approx(max(t_p_df2(mean, se), skewed["p_skew"][0]))
    # sign flips of (log 2.5, log 0.6, 0): |±0.92 ± 0.51| is 1.43 or 0.41, never below the observed 0.41
    assert t.loc["bn", "steps_p_exact"] == pytest.approx(1.0)
    # one Holm family of 4 with test acc (no difference: p 1), steps to the accuracy target (every seed at its
    # first evaluation, T in (0, 10]: speedup in [1/10, 10], no direction certain, p 1) and divergence (none: p 1):
    # the smallest p times 4
    assert (t.loc["bn", "test_acc_p"], t.loc["bn", "steps_acc_p"], t.loc["bn", "diverged_p"]) == (1.0, 1.0, 1.0)
    assert t.loc["bn", "steps_tests"] == 4
    assert t.loc["bn", "steps_p_holm"] == pytest.approx(min(1, 4 * t.loc["bn", "steps_p"]))
    assert (t.loc["bn", "steps_pairs"], t.loc["bn", "steps_reached"], t.loc["bn", "steps_censored"]) == (3, 3, 0)
    assert t.loc["bn", "steps_unit"] == "steps" and t.loc["bn", "steps_note"] == ""
    assert t.loc["bn", "steps_target"] == 0.5 and t.loc["bn", "steps_at"] == pytest.approx((4 + 10 + 9) / 3)
    assert t.loc["plain", "steps_speedup"] == 1.0 and t.loc["plain", "steps_at"] == pytest.approx((10 + 6 + 9) / 3)
    markdown = comparison_output([comparison], "markdown", ["steps"])
    assert f"{np.exp(mean):.2f}×<br>[" in markdown and "1.00× (reference)" in markdown


def test_a_slower_variant_shows_a_speedup_below_one(tmp_path):
    """bn drops at step 11 (T 12), after its baseline on every seed: plain drops at steps 5..9 (T 6..10, target 0.5
    at step 10). Speedups 6/12 .. 10/12; 5 seeds all slower: the t-test on the log speedups (4 d.o.f.) decides even
    after Holm over the family of 4, where the exact sign-flip p (2/2^5) could not: the verdict says so."""
    trials = {("bn", s): curve(11) for s in range(5)} | {("plain", s): curve(5 + s) for s in range(5)}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    t = rows([comparison])
    logs = np.log(np.array([6, 7, 8, 9, 10]) / 12)
    mean, se = logs.mean(), logs.std(ddof=1) / math.sqrt(5)
    x = mean / se  # Student's t with 4 d.o.f.: F(x) = 1/2 + 3/8 u (1 - u^2 / 12 (1 + x^2/4)), u = x / sqrt(1 + x^2/4)
    cdf = 0.5 + 3 / 8 * x / math.sqrt(1 + x * x / 4) * (1 - x * x / (12 * (1 + x * x / 4)))
    p = 2 * min(cdf, 1 - cdf)
    alpha = 4 * 0.975 * 0.025  # its 97.5% quantile: 2 sqrt(q - 1), q = cos(arccos(sqrt(alpha)) / 3) / sqrt(alpha)
    quantile = 2 * math.sqrt(math.cos(math.acos(math.sqrt(alpha)) / 3) / math.sqrt(alpha) - 1)
    skewed = inference.mean_tests(logs[None, :])  # the decision's: the hull with the skew-corrected interval
    low = np.exp(min(mean - quantile * se, skewed["ci_low"][0]))
    high = np.exp(max(mean + quantile * se, skewed["ci_high"][0]))
    assert t.loc["bn", "steps_speedup"] == pytest.approx(np.exp(mean)) and t.loc["bn", "steps_speedup"] < 1
    assert (t.loc["bn", "steps_ci_low"], t.loc["bn", "steps_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert t.loc["bn", "steps_p_t"] == pytest.approx(p)
    p = max(p, skewed["p_skew"][0])
    assert t.loc["bn", "steps_p"] == pytest.approx(p) and t.loc["bn", "steps_p_holm"] == pytest.approx(4 * p)
    assert 4 * p < 0.05 and t.loc["bn", "steps_p_exact"] == pytest.approx(2 / 2**5)
    assert (
        f"; reaches plain's half-run loss {np.exp(mean):.2f}× later, unadjusted 95% CI [{low:.2f}, {high:.2f}] "
        f"(Holm p={4 * p:.2g});" in t.loc["bn", "verdict"]
    )
    assert "; t-tests with skew correction, Holm over 4 tests (exact for test acc" in t.loc["bn", "verdict"]
    assert (  # 2/2^5 = 0.0625
        "; the exact test would not decide speed to half-run loss (p=0.062): rests on normality; only 5 pairs"
        in t.loc["bn", "verdict"]
    )
    assert f"{np.exp(mean):.2f}×<br>[{low:.2f}, {high:.2f}]" in comparison_output([comparison], "markdown", ["steps"])


def test_a_crossing_known_only_within_bounds_makes_the_summary_a_median(tmp_path):
    """Target 0.5 (plain's smoothed loss at step 10), window 2, batch size 10. Each seed's speedup lies in
    [(after_plain + 1) / at_bn, at_plain / (after_bn + 1)]:
    seed 0: bn is at 0.5 from step 1, so its first smoothed point (step 2) already meets the target: T_bn in (0, 2];
      plain T 10 exactly: speedup in [10/2, 10/1].
    seed 1: bn never gets below 0.9: censored at its own last step 20, T_bn >= 21: speedup in (0, 6/21].
    seed 2: both meet the target at their first smoothed point, T in (0, 2] each: speedup in [1/2, 2/1].
    Not every crossing is exact, so the summary is the median, known between median(lows) = 1/2 and
    median(highs) = 2; 3 pairs are too few for an order-statistic interval; the sign test: 1 win (seed 0's low
    end is above 1), 1 loss (seed 1's high end is below 1), p = 1."""
    trials = {
        ("bn", 0): curve(1),
        ("plain", 0): curve(9),
        ("bn", 1): curve(30, low=0.9, high=0.9),
        ("plain", 1): curve(5),
        ("bn", 2): curve(1),
        ("plain", 2): curve(1),
    }
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"])
    assert per_seed.loc["bn", "steps_after"].tolist() == [0, 20, 0]
    assert per_seed.loc["bn", "steps_at"].tolist() == pytest.approx([2, np.nan, 2], nan_ok=True)
    assert per_seed.loc["plain", "steps_after"].tolist() == [9, 5, 0]
    assert per_seed.loc["plain", "steps_at"].tolist() == [10, 6, 2]
    t = rows([comparison])
    assert t.loc["bn", "steps_estimator"] == "median"
    assert t.loc["bn", "steps_speedup"] == pytest.approx(1 / 2)
    assert t.loc["bn", "steps_speedup_high"] == pytest.approx(2)
    assert pd.isna(t.loc["bn", "steps_ci_low"]) and pd.isna(t.loc["bn", "steps_ci_high"])
    assert pd.isna(t.loc["bn", "steps_p_t"]) and t.loc["bn", "steps_p_exact"] == t.loc["bn", "steps_p"] == 1.0
    assert (t.loc["bn", "steps_pairs"], t.loc["bn", "steps_reached"], t.loc["bn", "steps_censored"]) == (3, 2, 1)
    assert t.loc["bn", "steps_note"] == "fewer than 6 pairs: no distribution-free interval"
    assert t.loc["bn", "steps_at"] == 2.0  # the mean over the seeds that reached it
    assert (
        "no difference shown in speed to plain's half-run loss: median 0.50–2.00× (Holm p=1), 1/3 seeds did not "
        "reach it within their run;" in t.loc["bn", "verdict"]
    )
    # seed 0 with an exact seed 3 (bn T 6, plain T 10: 10/6): every seed reached it, so the geometric mean, known
    # between its value on the low ends, sqrt(5 * 10/6), and on the high ends, sqrt(10 * 10/6); the interval spans
    # the low ends' t-interval's low end to the high ends' high end (1 d.o.f.); faster even at the low ends, so the
    # t-test is made on them (Cauchy: p = 1 - 2/pi arctan |t|), the exact sign flip on them too: both > 0, p = 2/2^2
    only = write_run(
        tmp_path / "b", {k: v for k, v in trials.items() if k[1] == 0} | {("bn", 3): curve(5), ("plain", 3): curve(9)}
    )
    t = rows(compare_runs([only])[0])
    lows, highs = np.log([5, 10 / 6]), np.log([10, 10 / 6])
    low, high = np.exp(lows.mean()), np.exp(highs.mean())
    assert (low, high) == (pytest.approx(math.sqrt(5 * 10 / 6)), pytest.approx(math.sqrt(10 * 10 / 6)))
    assert t.loc["bn", "steps_estimator"] == "geometric mean" and t.loc["bn", "steps_censored"] == 0
    assert t.loc["bn", "steps_speedup"] == pytest.approx(low)
    assert t.loc["bn", "steps_speedup_high"] == pytest.approx(high)
    half_low, half_high = (T_975_DF1 * ends.std(ddof=1) / math.sqrt(2) for ends in (lows, highs))
    assert t.loc["bn", "steps_ci_low"] == pytest.approx(np.exp(lows.mean() - half_low))
    assert t.loc["bn", "steps_ci_high"] == pytest.approx(np.exp(highs.mean() + half_high))
    p = 1 - 2 / math.pi * math.atan(abs(lows.mean() / (lows.std(ddof=1) / math.sqrt(2))))
    assert t.loc["bn", "steps_p_t"] == pytest.approx(p) == t.loc["bn", "steps_p"]
    assert t.loc["bn", "steps_p_exact"] == pytest.approx(0.5)
    assert (
        t.loc["bn", "steps_note"]
        == "2 pairs: interval unreliable; crossings known only between two measured points: a range"
    )
    # the verdict leaves out an interval spanning more than 100× (1 d.o.f.: [0.00, ...]): it says nothing of speed
    assert t.loc["bn", "steps_ci_high"] / t.loc["bn", "steps_ci_low"] > 100
    assert f"{low:.2f}–{high:.2f}× (Holm p=" in t.loc["bn", "verdict"]


def test_never_reached_is_censored_counted_never_dropped(tmp_path):
    """plain drops to 0.5 at step 3; its smoothed loss at half its run (step 4) is 0.5, first met at step 4 (step 3
    is 0.75). bn never gets below 0.9 within its 8 steps: censored, T_bn >= 9, so its speedup is at most 4/9 and has
    no lower bound: the median of one pair is 'at most 4/9'. The sign test: 1 loss, p = 2 * 1/2 = 1."""
    trials = {
        ("bn", 0): {"losses": [[1.0] * 4, [0.9] * 4], "acc": [0.5, 0.6]},
        ("plain", 0): {"losses": [[1.0, 1.0, 0.5, 0.5], [0.5] * 4], "acc": [0.5, 0.6]},
    }
    comparisons, _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparisons[0].trials.set_index("variant")
    assert (per_seed.loc["plain", "steps_after"], per_seed.loc["plain", "steps_at"]) == (3, 4)
    assert per_seed.loc["bn", "steps_after"] == 8 and pd.isna(per_seed.loc["bn", "steps_at"])
    t = rows(comparisons)
    assert (t.loc["bn", "steps_reached"], t.loc["bn", "steps_censored"], t.loc["bn", "steps_pairs"]) == (0, 1, 1)
    assert t.loc["bn", "steps_estimator"] == "median" and t.loc["bn", "steps_speedup"] == 0.0
    assert t.loc["bn", "steps_speedup_high"] == pytest.approx(4 / 9) and t.loc["bn", "steps_p"] == 1.0
    assert "median ≤0.44×<br>exact p=1, Holm 1 (4)<br>reached 0/1" in comparison_output(
        comparisons, "markdown", ["steps"]
    )
    assert (
        "no difference shown in speed to plain's half-run loss: median ≤0.44× (Holm p=1), 1/1 seeds did not "
        "reach it within their run;" in t.loc["bn", "verdict"]
    )


def test_a_baseline_trial_that_misses_the_common_target_is_censored_and_the_summary_a_median(tmp_path):
    """One target for every seed: the mean of plain's smoothed losses (window 2) at half its run (step 10): 0.5 on
    seeds 0 and 1 (dropped at step 5), 0.9 on seed 2 (flat at 0.9): (0.5 + 0.5 + 0.9) / 3 = 0.6333. Plain's seed 2
    never gets there within its 20 steps: its crossing is a step in [21, inf). bn drops at step 3 on every seed:
    T 4 exactly. Speedups: 6/4 on seeds 0 and 1, and in [21/4, inf) on seed 2. A bound is infinite, so the summary
    is the median: median(lows) = median(highs) = log 1.5; 3 pairs, no interval; the sign test: 3 wins (every low
    end above 1), no loss: p = 2/2^3. bn itself reached it on every seed: nothing censored on its side."""
    flat = {"losses": [[0.9] * 10] * 2, "acc": [0.5, 0.6]}
    trials = {
        ("bn", 0): curve(3),
        ("plain", 0): curve(5),
        ("bn", 1): curve(3),
        ("plain", 1): curve(5),
        ("bn", 2): curve(3),
        ("plain", 2): flat,
    }
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"])
    target = (0.5 + 0.5 + 0.9) / 3
    assert per_seed.steps_target.tolist() == pytest.approx([target] * 6)
    assert per_seed.loc["plain", "steps_at"].tolist() == pytest.approx([6, 6, np.nan], nan_ok=True)
    assert per_seed.loc["plain", "steps_after"].tolist() == [5, 5, 20]
    assert per_seed.loc["bn", "steps_at"].tolist() == [4, 4, 4]
    t = rows([comparison])
    assert t.loc["bn", "steps_estimator"] == "median"
    assert t.loc["bn", "steps_speedup"] == pytest.approx(1.5)
    assert t.loc["bn", "steps_speedup_high"] == pytest.approx(1.5)
    assert pd.isna(t.loc["bn", "steps_ci_low"]) and pd.isna(t.loc["bn", "steps_p_t"])
    assert t.loc["bn", "steps_p"] == t.loc["bn", "steps_p_exact"] == pytest.approx(2 / 2**3)
    assert (t.loc["bn", "steps_pairs"], t.loc["bn", "steps_reached"], t.loc["bn", "steps_censored"]) == (3, 3, 0)
    assert t.loc["bn", "steps_note"] == "fewer than 6 pairs: no distribution-free interval"
    assert t.loc["bn", "steps_baseline_censored"] == 1  # and the verdict says so, below
    # the family of 4: test acc (equal: exact p 1), this p, the accuracy speed (every trial at its first evaluation,
    # T in (0, 10]: no direction certain, p 1), divergence (none: p 1): Holm 4 x 1/4 = 1
    assert t.loc["bn", "steps_p_holm"] == pytest.approx(1.0)
    assert (
        "no difference shown in speed to plain's half-run loss: median 1.50× (Holm p=1), 1/3 of plain's seeds did "
        "not reach it within their run;"
    ) in t.loc["bn", "verdict"]


def test_steps_to_the_baselines_test_accuracy_at_half_its_run(tmp_path):
    """Without evals.csv (older runs) the evaluations are the epoch ends, steps 4, 8, 12, 16: plain's accuracy at
    half its run (step 8) is 60%, which it first met at step 8 after missing it at step 4: T_plain in (4, 8].
    bn seed 0 first meets 60% at step 12, after step 8: speedup in [5/12, 8/9]; bn seed 1 is there at its first
    evaluation, T in (0, 4]: speedup in [5/4, 8/1]. Both reached it: the geometric mean, between its value on the
    low ends, sqrt(5/12 * 5/4), and on the high ends, sqrt(8/9 * 8). Below 1 on the low ends, above on the high
    ends: no direction is certain, so p = 1."""
    losses = [[1.0] * 4] * 4
    plain = {"losses": losses, "acc": [0.5, 0.6, 0.7, 0.8]}
    trials = {
        ("bn", 0): {"losses": losses, "acc": [0.5, 0.5, 0.6, 0.7]},
        ("plain", 0): plain,
        ("bn", 1): {"losses": losses, "acc": [0.8] * 4},
        ("plain", 1): plain,
    }
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    per_seed = comparison.trials.set_index(["variant", "seed"])
    assert per_seed.loc["bn", "steps_acc_after"].tolist() == [8, 0]
    assert per_seed.loc["bn", "steps_acc_at"].tolist() == [12, 4]
    assert per_seed.loc["plain", "steps_acc_after"].tolist() == [4, 4]
    assert per_seed.loc["plain", "steps_acc_at"].tolist() == [8, 8]
    assert per_seed.steps_acc_target.tolist() == pytest.approx([60.0] * 4) and (per_seed.steps_acc_ref == 8).all()
    t = rows([comparison])
    lows, highs = np.log([5 / 12, 5 / 4]), np.log([8 / 9, 8])
    low, high = math.sqrt(5 / 12 * 5 / 4), math.sqrt(8 / 9 * 8)
    assert t.loc["bn", "steps_acc_estimator"] == "geometric mean"
    assert t.loc["bn", "steps_acc_speedup"] == pytest.approx(low) and low < 1
    assert t.loc["bn", "steps_acc_speedup_high"] == pytest.approx(high) and high > 1
    ci_low = np.exp(lows.mean() - T_975_DF1 * lows.std(ddof=1) / math.sqrt(2))
    ci_high = np.exp(highs.mean() + T_975_DF1 * highs.std(ddof=1) / math.sqrt(2))
    assert t.loc["bn", "steps_acc_ci_low"] == pytest.approx(ci_low)
    assert t.loc["bn", "steps_acc_ci_high"] == pytest.approx(ci_high)
    assert t.loc["bn", "steps_acc_p"] == t.loc["bn", "steps_acc_p_exact"] == 1.0
    assert (t.loc["bn", "steps_acc_reached"], t.loc["bn", "steps_acc_censored"]) == (2, 0)
    assert t.loc["bn", "steps_acc_at"] == pytest.approx(8.0) and t.loc["bn", "steps_acc_target"] == pytest.approx(60.0)
    assert (
        t.loc["bn", "steps_acc_note"]
        == "2 pairs: interval unreliable; crossings known only between two measured points: a range"
    )
    assert ci_high / ci_low > 100  # [0.00, 3078712.10]: an interval that says nothing is left out of the verdict
    assert (
        f"no difference shown in speed to plain's half-run test acc: {low:.2f}–{high:.2f}× (Holm p=1);"
        in t.loc["bn", "verdict"]
    )


def test_diverged_trials_are_named_and_left_out(tmp_path):
    trials = {
        (v, s): {"losses": [[1.0] * 4, [base - 0.1 * (v == "bn")] * 4], "acc": [0.5, 0.6]}
        for s, base in enumerate([0.5, 0.6, 0.7])
        for v in ("bn", "plain")
    }
    trials[("bn", 1)] = {"losses": [[1.0] * 4, [1.0, float("nan")]], "acc": [0.5, 0.1]}  # diverged at step 6
    trials[("plain", 2)] = {"losses": [[1.0, float("inf")]], "acc": [0.1]}  # the baseline diverged at step 2
    (comparison,), _ = compare_runs([write_run(tmp_path, trials)])
    t = rows([comparison])
    assert t.loc["bn", "diverged"] == "seed 1 diverged at step 6"
    assert t.loc["plain", "diverged"] == "seed 2 diverged at step 2"
    assert t.loc["bn", "seeds"] == 2 and t.loc["bn", "pairs"] == 1 and t.loc["plain", "seeds"] == 2
    assert t.loc["bn", "train_loss_mean"] == pytest.approx(np.mean([0.4, 0.6]))  # seeds 0 and 2, not the NaN
    assert t.loc["bn", "train_loss_delta"] == pytest.approx(-0.1)  # seed 0 is the only pair
    # one pair: no interval and no t-test; the exact sign flip of one difference: both signs give its |d|, p = 1
    assert pd.isna(t.loc["bn", "train_loss_ci_low"]) and pd.isna(t.loc["bn", "train_loss_p_t"])
    assert t.loc["bn", "train_loss_p_exact"] == t.loc["bn", "train_loss_p"] == 1.0
    assert t.loc["bn", "epoch"] == 2  # the last epoch of the trials that did not diverge
    # McNemar on the 3 seeds both ran: 1 where only bn diverged, 1 where only plain did: 2 P(X <= 1), X ~ Bin(2, 1/2)
    assert t.loc["bn", "diverged_p"] == 1.0 and t.loc["bn", "diverged_tests"] == 4
    text = comparison_output([comparison], "markdown")
    assert "bn<br>diverged 1/3 seeds<br>seed 1 diverged at step 6" in text and "1 pair: no interval" in text
    assert t.loc["bn", "diverged_seeds"] == 1
    assert "bn diverged on 1/3 seeds, plain on 1/3 (exact p=1, Holm p=1)" in t.loc["bn", "verdict"]
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
    trials = {
        (v, s): {"losses": [[9.0] * 4, [1.0 + s, 2.0 + s, 3.0, 5.0 - (v == "bn")]], "acc": [0.5, 0.6]}
        for v in ("bn", "plain")
        for s in (0, 1)
    }
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
    trials = {
        (v, s): {"losses": [[1.0] * 4, [0.5 - 0.1 * (v == "bn")] * 4], "acc": [0.5, 0.6]}
        for v in ("bn", "plain")
        for s in (0, 1)
    }
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
    for column in [
        "train_loss_mean",
        "train_loss_ci_low",
        "train_loss_p",
        "train_loss_p_holm",
        "test_acc_delta",
        "steps_speedup",
        "steps_ci_low",
        "seeds",
    ]:
        assert csv[column].tolist() == pytest.approx(table[column].astype(float).tolist(), nan_ok=True)
        assert [r[column] if r[column] is not None else np.nan for r in records] == pytest.approx(
            table[column].astype(float).tolist(), nan_ok=True
        )
    assert {"seeds", "pairs", "train_loss_ci_low", "train_loss_ci_high", "verdict"} <= set(csv.columns)
    assert csv.verdict[0] == table.verdict[0] and records[0]["verdict"] == table.verdict[0]
    bn = table.set_index("variant").loc["bn"]
    expected = [
        bn.train_loss_mean,
        bn.train_loss_std,
        bn.train_loss_delta,
        bn.train_loss_ci_low,
        bn.train_loss_ci_high,
        bn.train_loss_p_t,  # each test's p follows, Student's first
    ]
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
    result = invoke("compare", digits_runs, "--full")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("quick-digits · digits, mlp [64, 32]") == 2 and "(baseline)" in result.stdout
    assert "1 pair: no interval" in result.stdout and "wins" in result.stdout
    result = invoke("compare", digits_runs, "--format", "markdown", "--baseline", "batchnorm")
    assert result.exit_code == 0 and "| batchnorm<br>(baseline) |" in result.stdout


# ---- bad input ---------------------------------------------------------------------------------------------------


def damage(run_dir: Path, name: str, edit) -> None:
    path = run_dir / name
    path.write_text(edit(path.read_text()))


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("batches.csv", lambda t: t[:-3], "batches.csv: the last line is cut off"),
        ("batches.csv", lambda t: t.replace(",loss", ",lost", 1), "batches.csv: missing column 'loss'"),
        ("epochs.csv", lambda t: t.replace(",0.5,", ",half,", 1), "epochs.csv: line 2: train_acc is 'half'"),
        ("batches.csv", lambda t: "\n".join(t.split("\n")[:3] + t.split("\n")[4:]), "line 4: step 4 should be 3"),
        ("batches.csv", lambda t: t.replace("bn,0,1,1,1,", "bm,0,1,1,1,", 1), "line 2: trial bm seed 0 is not in"),
        ("batches.csv", lambda t: t.replace(",5,0.3\n", ",5,nan\n", 1), "line 6: the loss is not finite but the trial"),
        ("epochs.csv", lambda t: "\n".join(t.split("\n")[:-2]) + "\n", "has 1 epoch here but 2 in batches.csv"),
        ("batches.csv", lambda t: "", "batches.csv: empty"),
        ("batches.csv", lambda t: t.replace("\n", ",x\n", 3).replace(",x", "", 2), "batches.csv: not a valid CSV"),
    ],
)
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
    comparisons, _ = compare_runs(
        [tmp_path], pool=False
    )  # the two alpha runs would be pooled (tests/analysis/test_pool.py)
    assert [(c.name, c.results.dir.name) for c in comparisons] == [
        ("beta", "20250301-000000"),
        ("alpha", "20250201-000000"),
        ("alpha", "20250101-000000"),
    ]


# ---- many comparisons ---------------------------------------------------------------------------------------------


def test_p_values_are_adjusted_across_variants_and_sweep_points(tmp_path):
    """2 variants x 2 sweep points = 4 comparisons. Test acc is in the verdict's family with both speedups and
    divergence: 4 x 4 = 16 tests. Here the others are p = 1 or cannot be made (counted as 1): every loss is 1.0, so
    each trial meets plain's loss at half its run (step 2) at its first smoothed point, T in (0, 2]: speedup in
    [1/2, 2], no direction certain (p 1); the only evaluation is at step 4, after half the run: no accuracy target
    (p NaN); nothing diverged (p 1). So the i-th smallest test acc p becomes max over j <= i of min(1, (16 - j + 1)
    p_(j)). The train loss is its own family of the 4 comparisons."""
    trials = {}
    for lr, shift in (("0.001", 0.0), ("0.01", 0.02)):
        for s in range(3):
            trials[("plain", s, lr)] = {"losses": [[1.0] * 4], "acc": [0.80 + 0.01 * s]}
            trials[("bn", s, lr)] = {"losses": [[1.0] * 4], "acc": [0.85 + shift + 0.013 * s * (1 + s)]}
            trials[("gn", s, lr)] = {"losses": [[1.0] * 4], "acc": [0.81 + 0.02 * (s == 1) - shift]}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials, sweep={"optimizer.lr": [0.001, 0.01]})])
    t = comparison.table[~comparison.table.baseline]
    assert (t.steps_p == 1.0).all() and t.steps_acc_p.isna().all() and (t.diverged_p == 1.0).all()
    assert (
        t.steps_acc_note == "no target on 3 seeds: no point of the baseline's curves in the first half of their run"
    ).all()
    raw = t.test_acc_p.to_numpy()
    assert (raw < 1).all()  # below every other member of the family: they come after them in Holm's order
    order = np.argsort(raw)
    expected = np.maximum.accumulate(np.minimum(1, (16 - np.arange(4)) * raw[order]))
    assert t.test_acc_p_holm.to_numpy()[order] == pytest.approx(expected)
    assert (t.test_acc_tests == 16).all() and (t.test_acc_p_holm >= t.test_acc_p).all()
    assert (t.steps_tests == 16).all() and (t.diverged_tests == 16).all() and (t.train_loss_tests == 4).all()
    for v, holm in zip(t.verdict.to_numpy()[order], expected):  # the adjusted p computed here, in each verdict
        assert holm >= 0.05 and v.split(": ", 1)[1].startswith("no difference shown in test acc: ")
        assert f"seeds better (Holm p={holm:.2g});" in v and "t-tests with skew correction, Holm over 16 tests" in v


# ---- layout ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 120, 200, None])
def test_the_table_reads_at_any_width_and_never_splits_a_cell(digits_runs, width):
    """Every line fits (widths 60-200) or nothing is wrapped at all (piped: None); every cell line's tokens, the
    run id and the verdict's tokens appear whole on one line."""
    comparisons, _ = compare_runs([digits_runs])
    text = comparison_output(comparisons, "table", width=width, full=True)
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
    assert any("quick-digits" in line for line in lines)  # a run under its experiment's name
    assert any(line.startswith("placement ") for line in lines)  # a config under the name `bnbench run` takes
    assert width is None or all(len(line) <= width or len(tokens(line)) == 1 for line in lines)


def test_a_baseline_without_a_smoothed_point_in_its_first_half_gives_no_target_with_the_reason(tmp_path):
    """Steps are n/a where the baseline has no target: window 5 over a run of 8 steps gives plain's first smoothed
    point at step 5, after half its run (step 4)."""
    plain = {"losses": [[1.0] * 4, [0.2, 1.0, 1.0, 0.2]], "acc": [0.5, 0.6]}
    trials = {("bn", 0): curve(2, steps=8), ("plain", 0): plain}
    (comparison,), _ = compare_runs([write_run(tmp_path, trials, log_every=5)])
    why = "no point of the baseline's curves in the first half of their run"
    assert comparison.trials.steps_why.tolist() == [why, why] and comparison.trials.steps_target.isna().all()
    t = rows([comparison])
    assert pd.isna(t.loc["bn", "steps_speedup"]) and t.loc["bn", "steps_pairs"] == 0 and t.loc["bn", "pairs"] == 1
    assert t.loc["bn", "steps_note"] == f"no target on 1 seed: {why}" and pd.isna(t.loc["bn", "steps_p"])
    assert pd.isna(t.loc["plain", "steps_speedup"])
    assert f"speed to plain's half-run loss: n/a (no target on 1 seed: {why})" in t.loc["bn", "verdict"]


def test_a_run_of_one_variant_shows_its_numbers_without_deltas(tmp_path):
    """Also a window longer than the run (log_every 500, 8 steps): no smoothed point, said so."""
    trials = {("bn", s): {"losses": [[1.0 - 0.1 * s] * 4, [0.5] * 4], "acc": [0.5, 0.6]} for s in (0, 1)}
    run = write_run(tmp_path, trials, baseline="bn", log_every=500)
    (comparison,), _ = compare_runs([run])
    t = rows([comparison])
    assert t.loc["bn", "train_loss_mean"] == 0.5 and pd.isna(t.loc["bn", "train_loss_delta"])
    assert t.loc["bn", "steps_note"] == (
        "no target on 2 seeds: no point of the baseline's curves in the first half of their run"
    )
    for args in ([], ["--windows"], ["--plot", tmp_path / "one.png"], ["--format", "json"]):
        result = invoke("compare", run, *args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
