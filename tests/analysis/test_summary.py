"""bnbench.analysis.summary and sentences: the comparison's numbers and verdicts, checked against computations
made here, independently (brute-force smoothing and crossings, scipy.stats, a plain Holm), on run folders written
by hand and on a real digits run edited by hand.

Each test fails on the code before the rebuild (commit e9ece1d); what that code printed for the same folders
through `bnbench compare` is recorded in a comment per test."""

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import optimize, stats
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.analysis import compare_runs, inference
from bnbench.cli import app

ALPHA = 0.05
FOUR = 4  # the verdict family's tests per compared row: test acc, the two speedups, divergence
NAN = float("nan")


# ---- run folders by hand -----------------------------------------------------------------------------------------


def write_run(
    folder: Path,
    trials: dict,
    *,
    name="synth",
    run_id="20250101-000000",
    batch_size=10,
    log_every=2,
    baseline="plain",
    meta=None,
    evals=None,
) -> Path:
    """A run folder as the runner writes it (numbers with 9 significant digits). trials: {(variant, seed):
    {"losses": [[epoch 1's losses], ...], "acc": [test acc per epoch], optional "test_loss", "seconds"}};
    a variant named plain has norm none, the others batchnorm. evals: {(variant, seed): [(epoch, step, acc)]}
    written as evals.csv (without it, the evaluations are the epoch ends)."""
    run_dir = folder / name / run_id
    run_dir.mkdir(parents=True)
    variants = list(dict.fromkeys(k[0] for k in trials))
    seeds = sorted({k[1] for k in trials})
    epochs = max(len(t["losses"]) for t in trials.values())
    config = tiny_config(
        name,
        seeds,
        optimizer=None,
        training={"epochs": epochs, "batch_size": batch_size, "log_every": log_every},
        baseline=baseline,
        variants=[{"name": v, "norm": "none" if v.startswith("plain") else "batchnorm"} for v in variants],
    )
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "meta.json").write_text(json.dumps(meta or {"status": "complete"}))
    batches = ["variant,seed,epoch,batch,step,loss"]
    rows = ["variant,seed,epoch,train_loss,train_acc,test_loss,test_acc,seconds"]
    for (variant, seed), trial in sorted(trials.items(), key=lambda kv: (kv[0][1], variants.index(kv[0][0]))):
        step = 0
        for e, losses in enumerate(trial["losses"], start=1):
            for b, loss in enumerate(losses, start=1):
                step += 1
                batches.append(f"{variant},{seed},{e},{b},{step},{loss:.9g}")
            test_loss = trial.get("test_loss", [1.0] * epochs)[e - 1]
            seconds = trial.get("seconds", [1.0] * epochs)[e - 1]
            rows.append(
                f"{variant},{seed},{e},{np.mean(losses):.9g},0.5,{test_loss:.9g},{trial['acc'][e - 1]:.9g},"
                f"{seconds:.4f}"
            )
    (run_dir / "batches.csv").write_text("\n".join(batches) + "\n")
    (run_dir / "epochs.csv").write_text("\n".join(rows) + "\n")
    if evals is not None:
        lines = ["variant,seed,epoch,step,test_loss,test_acc"]
        lines += [f"{v},{s},{e},{step},1.0,{acc:.9g}" for (v, s), points in evals.items() for e, step, acc in points]
        (run_dir / "evals.csv").write_text("\n".join(lines) + "\n")
    return run_dir


def table(run: Path, **options) -> pd.DataFrame:
    (comparison,), skipped = compare_runs([run], **options)
    assert skipped == []
    return comparison.table.set_index("variant")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def json_rows(*args) -> dict:
    result = invoke("compare", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return {row["variant"]: row for row in json.loads(result.stdout)}


# ---- independent computations ------------------------------------------------------------------------------------


def brute_smoothed(losses: np.ndarray, window: int) -> dict:
    """{step: mean of the `window` losses ending there}, summed directly, for every step with a full window."""
    return {t: math.fsum(losses[t - window : t]) / window for t in range(window, len(losses) + 1)}


def brute_crossing(curve: dict, level: float, higher: bool = False):
    """The first step of `curve` ({step: value}) whose value meets `level`, and the defined step before it (0 when
    it is the first); (last step, None) when never."""
    steps = sorted(curve)
    for i, step in enumerate(steps):
        if (curve[step] >= level) if higher else (curve[step] <= level):
            return (steps[i - 1] if i else 0), step
    return steps[-1], None


def brute_half_run_level(base_runs: list, window: int) -> float:
    """The point's loss target: over the baseline's trials (its `ok` seeds, each a full run's losses), the mean
    of the level each one's directly smoothed curve has at its last full window at or before ceil(half its
    steps)."""
    levels = []
    for losses in base_runs:
        smoothed, ref = brute_smoothed(losses, window), math.ceil(0.5 * len(losses))
        levels.append(smoothed[max(s for s in smoothed if s <= ref)])
    return math.fsum(levels) / len(levels)


def brute_loss_speed(base: np.ndarray, variant: np.ndarray, window: int, level: float):
    """One seed's crossings of the point's loss target `level`: (after, at) of its baseline trial and of its
    variant trial (at None: never within the run)."""
    return (brute_crossing(brute_smoothed(base, window), level), brute_crossing(brute_smoothed(variant, window), level))


def plain_holm(p: list) -> list:
    """Holm over a family whose NaN members (tests that could not be made) count as p = 1 and stay NaN."""
    q = [1.0 if math.isnan(x) else x for x in p]
    order = sorted(range(len(q)), key=lambda i: q[i])
    out, running = [NAN] * len(q), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(q) - rank) * q[i]))
        out[i] = running
    return [NAN if math.isnan(x) else o for x, o in zip(p, out)]


def power(n: int, delta: float, sd: float, level: float) -> float:
    """Power of the two-sided paired t-test on n pairs, true mean delta, spread sd, at `level` (scipy.stats)."""
    df, nc = n - 1, delta * math.sqrt(n) / sd
    crit = stats.t.ppf(1 - level / 2, df)
    return stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc)  # the lower tail by symmetry (cdf gives NaN
    # far out)


def read_csv(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name)


def accuracies(run: Path, variant: str, epoch: int) -> pd.Series:
    """A variant's test accuracies (%) at `epoch` by seed (the seeds that have it), as the run's CSV holds them."""
    e = read_csv(run, "epochs.csv")
    return 100 * e[(e.variant == variant) & (e.epoch == epoch)].set_index("seed").test_acc


def curve(seed: int, slope: float, steps: int, noise: float = 0.0) -> np.ndarray:
    """A decreasing loss curve with a little seeded noise (no two smoothed values equal a target by accident)."""
    rng = np.random.default_rng(1000 + seed)
    return 2.0 - slope * np.arange(1, steps + 1) + noise * rng.standard_normal(steps)


# ---- 2. a constant difference within CSV rounding ----------------------------------------------------------------


def test_constant_gain_within_csv_rounding_has_no_t_interval_and_the_exact_p_decides(tmp_path):
    """+15/360 on every one of 6 seeds, read back from 9-significant-digit text with last-digit noise: no
    t-interval, no t-test p, the exact sign-flip p = 2/64 decides (its Holm: x4, the other tests being p = 1).
    Old code: "bn vs plain: test acc +4.17 pts [+4.17, +4.17] 95% CI, p=3.1e-38 (Holm p=3.1e-38, 1 test), wins 6/6;
    ...; better test acc (Holm p < 0.05)"."""
    noise = [-1e-9, 0.0, 1e-9, 1e-9, -1e-9, 0.0]
    losses = [[2.0 - 0.1 * b for b in range(10)]] * 2
    trials = {}
    for s in range(6):
        trials[("bn", s)] = {"losses": losses, "acc": [0.5, 0.902777778 + noise[s]]}
        trials[("plain", s)] = {"losses": losses, "acc": [0.5, 0.861111111 - noise[s]]}
    run = write_run(tmp_path, trials)
    d = accuracies(run, "bn", 2) - accuracies(run, "plain", 2)
    assert d.max() > d.min()  # the text does carry last-digit noise
    bn = table(run).loc["bn"]
    assert bn.test_acc_delta == pytest.approx(100 * 15 / 360, rel=1e-7)
    assert math.isnan(bn.test_acc_ci_low) and math.isnan(bn.test_acc_ci_high) and math.isnan(bn.test_acc_p_t)
    assert bn.test_acc_note == "constant difference: no t-interval"
    assert bn.test_acc_p_exact == 2 / 64 and bn.test_acc_p == bn.test_acc_p_exact
    assert bn.test_acc_p_holm == pytest.approx(FOUR * 2 / 64)  # steps, steps_acc, diverged: p = 1
    assert bn.test_acc_wins == 6 and "[+4.17, +4.17]" not in bn.verdict
    assert "could detect ≥ 0.00" not in bn.verdict  # no spread: no t-test power to speak of
    # 4 x 2/64 = 0.125, printed with 2 digits; no interval after the difference
    assert bn.verdict.startswith(
        "bn vs plain: no difference shown in test acc: +4.17 pts, 6/6 seeds better (Holm p=0.12);"
    )


# ---- 4. divergence is an outcome ---------------------------------------------------------------------------------

STEPS = 20  # 2 epochs of 10 batches


@pytest.fixture(scope="module")
def mixed_divergence(tmp_path_factory):
    """6 seeds; bn's seed 0 diverged at step 5 after four tiny losses (it would have met any target at once),
    plain's seed 1 at step 3; the pairs are seeds 2-5."""
    trials = {}
    for s in range(6):
        for v, slope in (("bn", 0.08), ("plain", 0.05)):
            loss = curve(s + 10 * (v == "bn"), slope, STEPS, noise=0.01)
            trials[(v, s)] = {
                "losses": [list(loss[:10]), list(loss[10:])],
                "acc": [0.5, 0.8 + 0.01 * s + 0.03 * (v == "bn") + 0.002 * (s % 3) * (v == "bn")],
                "test_loss": [1.0, 0.6 - 0.01 * s - 0.05 * (v == "bn") * (1 + 0.1 * s)],
            }
    trials[("bn", 0)] = {"losses": [[0.01, 0.01, 0.01, 0.01, NAN]], "acc": [NAN], "test_loss": [NAN]}
    trials[("plain", 1)] = {"losses": [[2.0, 1.9, NAN]], "acc": [NAN], "test_loss": [NAN]}
    return write_run(tmp_path_factory.mktemp("mixed"), trials), trials


def test_a_diverged_trial_feeds_no_speedup_nor_the_reached_counts(mixed_divergence):
    """Old code: "speedup ≥2.05× to plain's final train loss (5/6 seeds reached it)", steps_pairs 5, steps_reached
    5 — bn's seed 0, diverged at step 5, counted as reaching the target (at its first measured point)."""
    run, trials = mixed_divergence
    bn = table(run).loc["bn"]
    assert bn.steps_pairs == 4 and bn.steps_reached + bn.steps_censored == 4 and bn.steps_reached == 4
    b = read_csv(run, "batches.csv")  # the losses as the run holds them (9 significant digits)
    losses = {(v, s): b[(b.variant == v) & (b.seed == s)].loss.to_numpy() for v, s in trials}
    # the target: plain's ok seeds, 0 and 2-5 (seed 0's pair is not compared, but its baseline trial is a
    # baseline curve all the same); plain's seed 1 diverged and has none
    level = brute_half_run_level([losses[("plain", s)] for s in (0, 2, 3, 4, 5)], 2)
    assert bn.steps_target == pytest.approx(level, rel=1e-12)
    ratios, ats = [], []
    for s in (2, 3, 4, 5):
        (after_b, at_b), (after_v, at_v) = brute_loss_speed(losses[("plain", s)], losses[("bn", s)], 2, level)
        assert after_b + 1 == at_b and after_v + 1 == at_v  # every crossing exact
        ratios.append(at_b / at_v)
        ats.append(at_v)
    assert bn.steps_estimator == "geometric mean"
    assert bn.steps_speedup == pytest.approx(math.exp(np.mean(np.log(ratios))), rel=1e-12)
    assert bn.steps_at == pytest.approx(np.mean(ats))
    assert "seed 0 diverged at step 5" == bn.diverged


def test_every_paired_measure_uses_the_pairs_where_neither_diverged(mixed_divergence):
    """Old code: pairs 4 and the same test-acc delta, but steps_pairs 5 (bn's diverged seed 0 paired), no
    diverged_p, and the verdict "bn diverged on 1/6 seeds" without plain's."""
    run, _ = mixed_divergence
    t = table(run)
    bn = t.loc["bn"]
    pairs = [2, 3, 4, 5]
    assert bn.pairs == 4 and bn.seeds == 5 and t.loc["plain", "seeds"] == 5
    d = (accuracies(run, "bn", 2) - accuracies(run, "plain", 2)).loc[pairs]
    assert bn.test_acc_delta == pytest.approx(d.mean(), rel=1e-12)
    assert bn.test_acc_p_t == pytest.approx(stats.ttest_1samp(d, 0).pvalue, rel=1e-9)
    assert bn.test_acc_wins + bn.test_acc_losses == 4
    e = read_csv(run, "epochs.csv")
    loss = e[e.epoch == 2].pivot(index="seed", columns="variant", values="test_loss").loc[pairs]
    assert bn.test_loss_delta == pytest.approx((loss.bn - loss.plain).mean(), rel=1e-12)
    b = read_csv(run, "batches.csv")
    train = b[b.epoch == 2].groupby(["seed", "variant"]).loss.mean().unstack().loc[pairs]
    assert bn.train_loss_delta == pytest.approx((train.bn - train.plain).mean(), rel=1e-12)
    assert bn.steps_pairs == 4 and bn.steps_acc_pairs == 4
    assert bn.diverged_p == 1.0  # one discordant pair each way
    assert "bn diverged on 1/6 seeds, plain on 1/6" in bn.verdict


def test_a_baseline_that_diverged_more_is_named_with_mcnemars_p(tmp_path):
    """plain diverged on seeds 0-3, bn on none: 4 discordant pairs, all one way: McNemar's exact p = 2/2^4.
    Old code: "bn vs plain: test acc +4.10 pts [+2.83, +5.37] 95% CI, p=0.016 (Holm p=0.016, 1 test), wins 2/2 (2
    pairs: interval unreliable); speedup 1.75× ...; better test acc (Holm p < 0.05); only 2 pairs: run ≥ 5 seeds"
    — plain's 4 divergences never named, no diverged_p."""
    trials = {}
    for s in range(6):
        trials[("bn", s)] = {"losses": [list(curve(s, 0.08, 10, 0.01))], "acc": [0.85 + 0.01 * s]}
        trials[("plain", s)] = {"losses": [list(curve(s, 0.05, 10, 0.01))], "acc": [0.80 + 0.012 * s]}
    for s in range(4):
        trials[("plain", s)] = {"losses": [[2.0, 5.0, float("inf")]], "acc": [NAN]}
    t = table(write_run(tmp_path, trials))
    bn = t.loc["bn"]
    assert t.loc["plain", "diverged_seeds"] == 4 and bn.diverged_seeds == 0 and bn.pairs == 2
    assert bn.diverged_p == pytest.approx(0.125) == stats.binomtest(0, 4, 0.5).pvalue
    assert "bn diverged on 0/6 seeds, plain on 4/6" in bn.verdict
    family = [bn.test_acc_p, bn.steps_p, bn.steps_acc_p, bn.diverged_p]
    assert bn.diverged_p_holm == pytest.approx(plain_holm(family)[3], rel=1e-12)
    assert f"plain on 4/6 (exact p=0.12, Holm p={plain_holm(family)[3]:.2g})" in bn.verdict


# ---- 5. smoothing that a huge loss cannot spoil ------------------------------------------------------------------


def test_loss_crossings_equal_a_brute_force_trailing_mean_after_a_huge_loss(tmp_path):
    """bn's loss spikes to a finite 1e35 at step 3 (and 2e21 at step 5) and recovers; once the spike has left the
    window, the smoothed curve is the ordinary one again and the crossings are those of a directly summed
    trailing mean. (pandas' rolling mean, compensated, survives a single 1e35; after this spike its windows
    stay about 1.07 too low for the rest of the run.)
    Old code: "speedup 3.30× to plain's final train loss (4/4 seeds reached it)", steps_at 10.0: every bn crossing
    moved to step 10, the first window after the spike (a direct trailing mean crosses that target at step 23)."""
    window, steps = 5, 60
    trials = {}
    for s in range(4):
        bn = curve(s, 0.03, steps, 0.004)
        bn[2], bn[4] = 1e35, 2e21
        trials[("bn", s)] = {"losses": [list(bn)], "acc": [0.9]}
        trials[("plain", s)] = {"losses": [list(curve(s + 50, 0.02, steps, 0.004))], "acc": [0.8]}
    run = write_run(tmp_path, trials, log_every=window)
    b = read_csv(run, "batches.csv")
    own = {(v, s): b[(b.variant == v) & (b.seed == s)].loss.to_numpy() for v in ("bn", "plain") for s in range(4)}
    level = brute_half_run_level([own[("plain", s)] for s in range(4)], window)
    ratios, ats = [], []
    for s in range(4):
        (after_b, at_b), (after_v, at_v) = brute_loss_speed(own[("plain", s)], own[("bn", s)], window, level)
        smoothed = np.array([x for x in brute_smoothed(own[("bn", s)], window).values() if x < 1e3])
        assert np.abs(smoothed - level).min() > 1e-6  # no crossing rests on rounding
        assert at_v is not None and at_v > 10 and after_v + 1 == at_v  # after the first window past the spike
        assert after_b + 1 == at_b
        ratios.append(at_b / at_v)
        ats.append(at_v)
    (comparison,), _ = compare_runs([run])
    for s in range(4):  # the smoothed curve itself, wherever the spike is out of its window
        brute = brute_smoothed(b[(b.variant == "bn") & (b.seed == s)].loss.to_numpy(), window)
        shown = comparison.curves[(comparison.curves.variant == "bn") & (comparison.curves.seed == s)]
        clean = {step: x for step, x in brute.items() if step >= 10}
        assert dict(zip(shown.step, shown.loss)).keys() >= clean.keys()
        assert [dict(zip(shown.step, shown.loss))[step] for step in clean] == pytest.approx(
            list(clean.values()), rel=1e-12
        )
    bn = comparison.table.set_index("variant").loc["bn"]
    assert bn.steps_at == pytest.approx(np.mean(ats)) and bn.steps_reached == 4
    assert bn.steps_estimator == "geometric mean"
    assert bn.steps_speedup == pytest.approx(math.exp(np.mean(np.log(ratios))), rel=1e-12)


# ---- 6. p-value text agrees with the decision --------------------------------------------------------------------


def holm_edge_run(folder: Path, holm_p: float) -> Path:
    """bn vs plain, 6 seeds, whose accuracy differences give a t-test p of holm_p / 4; the other three tests of
    the family have p = 1 (identical loss curves and epoch-1 accuracies; no divergence). The differences are
    symmetric, so the skew-corrected test agrees with Student's."""
    t_stat = stats.t.ppf(1 - holm_p / FOUR / 2, 5)
    z = np.array([1.1, -1.1, 0.9, -0.9, 0.2, -0.2])
    z = (z - z.mean()) / z.std(ddof=1)
    d = t_stat / math.sqrt(6) + z  # sd 1 pts, mean t / sqrt(n)
    losses = [[2.0 - 0.1 * b for b in range(5)]] * 2
    trials = {}
    for s in range(6):
        trials[("bn", s)] = {"losses": losses, "acc": [0.5, 0.8 + d[s] / 100]}
        trials[("plain", s)] = {"losses": losses, "acc": [0.5, 0.8]}
    return write_run(folder, trials)


def test_a_holm_p_just_below_alpha_is_printed_below_it_and_called_better(tmp_path):
    """Old code: "test acc +1.56 pts [+0.51, +2.61] 95% CI, p=0.012 (Holm p=0.012, 1 test), wins 6/6; ...; better
    test acc (Holm p < 0.05)" — a family of 1 test."""
    run = holm_edge_run(tmp_path, 0.0498)
    d = accuracies(run, "bn", 2) - accuracies(run, "plain", 2)
    holm = FOUR * stats.ttest_1samp(d, 0).pvalue
    assert 0.0495 < holm < 0.05  # 2 digits would print "0.05"
    bn = table(run).loc["bn"]
    assert bn.test_acc_p_holm == pytest.approx(holm, rel=1e-9)
    assert bn.verdict.startswith("bn vs plain: better test acc +")
    assert f"6/6 seeds (Holm p={holm:.3g})" in bn.verdict and "Holm p=0.05)" not in bn.verdict
    assert "6/6 seeds (Holm p=0.0498);" in bn.verdict and "t-tests with skew correction, Holm over 4" in bn.verdict


def test_a_holm_p_just_above_alpha_is_not_called_better(tmp_path):
    """Old code: "test acc +1.55 pts [+0.50, +2.60] 95% CI, p=0.013 (Holm p=0.013, 1 test), wins 6/6; ...; better
    test acc (Holm p < 0.05)"."""
    run = holm_edge_run(tmp_path, 0.0502)
    d = accuracies(run, "bn", 2) - accuracies(run, "plain", 2)
    holm = FOUR * stats.ttest_1samp(d, 0).pvalue
    assert 0.05 < holm < 0.0505
    bn = table(run).loc["bn"]
    assert bn.test_acc_p_holm == pytest.approx(holm, rel=1e-6)  # the skew the CSVs' rounding leaves moves it 1e-7
    assert bn.verdict.startswith("bn vs plain: no difference shown in test acc: +")
    assert "6/6 seeds better (Holm p=0.05);" in bn.verdict and "better test acc" not in bn.verdict
    assert "these seeds could detect ≥" in bn.verdict


# ---- 8. the t-test or the exact test decides ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def five_seeds_clear(tmp_path_factory):
    """bn +5 to +7 pts on each of 5 seeds: a tiny t-test p, an exact p of 2/32 (its least at n = 5)."""
    losses = [[2.0 - 0.1 * b for b in range(5)]] * 2
    trials = {}
    for s, gain in enumerate([5.0, 6.5, 5.5, 7.0, 6.0]):
        trials[("bn", s)] = {"losses": losses, "acc": [0.5, 0.8 + 0.01 * s + gain / 100]}
        trials[("plain", s)] = {"losses": losses, "acc": [0.5, 0.8 + 0.01 * s]}
    return write_run(tmp_path_factory.mktemp("five"), trials)


def test_both_p_values_are_exported_and_the_exact_test_decides_when_asked(five_seeds_clear):
    """Old code: "Error: No such option: --test (Possible options: --title)" (exit code 2)."""
    run = five_seeds_clear
    d = accuracies(run, "bn", 2) - accuracies(run, "plain", 2)
    p_t = stats.ttest_rel(accuracies(run, "bn", 2), accuracies(run, "plain", 2)).pvalue
    exact = json_rows(run, "--test", "exact")["bn"]
    assert exact["test"] == "exact"
    assert exact["test_acc_p_exact"] == 0.0625 and exact["test_acc_p"] == 0.0625
    assert exact["test_acc_p_t"] == pytest.approx(p_t, rel=1e-9) and FOUR * p_t < ALPHA
    assert exact["test_acc_p_holm"] == pytest.approx(FOUR * 0.0625)
    assert exact["verdict"].startswith(f"bn vs plain: no difference shown in test acc: {d.mean():+.2f} pts")
    assert "5/5 seeds better (Holm p=0.25)" in exact["verdict"]  # 4 x 2/32
    assert (
        "exact tests, Holm over 4 tests; t-tests would decide test acc otherwise, assuming normality; only 5 pairs"
        in exact["verdict"]
    )
    result = invoke("compare", run, "--test", "exact", "--format", "csv")
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(io.StringIO(result.stdout)).set_index("variant")
    assert csv.loc["bn", "test_acc_p_exact"] == 0.0625 and csv.loc["bn", "test_acc_p_t"] == pytest.approx(p_t)
    assert d.min() > 4  # a clear effect


def test_the_t_test_decides_by_default_and_says_it_rests_on_normality(five_seeds_clear):
    """Old code: "test acc +6.00 pts [+5.02, +6.98] 95% CI, p=7.1e-05 (Holm p=7.1e-05, 1 test), wins 5/5; ...;
    better test acc (Holm p < 0.05)" — no exact p, no test_acc_p_exact, no word on normality."""
    p_t = stats.ttest_rel(accuracies(five_seeds_clear, "bn", 2), accuracies(five_seeds_clear, "plain", 2)).pvalue
    bn = json_rows(five_seeds_clear)["bn"]
    assert bn["test"] == "t" and bn["test_acc_p"] == pytest.approx(p_t, rel=1e-9) == bn["test_acc_p_t"]
    assert bn["test_acc_p_exact"] == 0.0625
    assert bn["verdict"].startswith("bn vs plain: better test acc +")
    assert f"5/5 seeds (Holm p={FOUR * p_t:.2g})" in bn["verdict"]
    assert "; t-tests with skew correction, Holm over 4 tests" in bn["verdict"]
    assert "; the exact test would not decide test acc (p=0.062): rests on normality; " in bn["verdict"]  # 2/32
    assert bn["verdict"].endswith(  # 5 seeds cannot show the skew or clusters that would break the t-tests
        "; only 5 pairs: too few to check that the differences are near-symmetric, as the tests assume; run ≥ 8 seeds"
    )


# ---- 9, 10. detectable effects, seeds needed, the verdict family -------------------------------------------------


@pytest.fixture(scope="module")
def no_difference(tmp_path_factory):
    """bn and ln vs plain, 6 seeds, 1 epoch of 20 steps: accuracies that differ by noise only; the accuracy
    speedup has no target (the only evaluation is at the run's end, after its half)."""
    rng = np.random.default_rng(7)
    trials = {}
    for s in range(6):
        base = 0.80 + 0.01 * s
        for v, slope in (("bn", 0.07), ("ln", 0.05), ("plain", 0.05)):
            trials[(v, s)] = {
                "losses": [list(curve(s + 20 * len(v), slope, 20, 0.01))],
                "acc": [base + (0 if v == "plain" else 0.01 * rng.standard_normal())],
            }
    return write_run(tmp_path_factory.mktemp("nodiff"), trials)


def test_no_difference_comes_with_the_effect_the_pairs_could_detect(no_difference):
    """Old code: no test_acc_detectable column; "bn vs plain: test acc -0.11 pts [-0.50, +0.28] 95% CI, p=0.5 (Holm
    p=0.99, 2 tests), wins 3/6; ...; faster to the target loss (Holm p < 0.05)", nothing on what 6 seeds could
    detect."""
    t = table(no_difference)
    for v in ("bn", "ln"):
        row = t.loc[v]
        assert row.test_acc_p_holm >= ALPHA and f"{v} vs plain: no difference shown in test acc:" in row.verdict
        d = accuracies(no_difference, v, 1) - accuracies(no_difference, "plain", 1)
        sd, n, level = d.std(ddof=1), int(row.pairs), ALPHA / row.test_acc_tests
        assert row.test_acc_tests == 8 and n == 6
        delta = optimize.brentq(
            lambda x, n=n, sd=sd, level=level: power(n, x, sd, level) - 0.8, 1e-9 * sd, 100 * sd, xtol=1e-14
        )
        assert row.test_acc_detectable == pytest.approx(delta, rel=1e-6)
        assert f"these seeds could detect ≥ {delta:.2f} pts" in row.verdict


def test_effect_gives_the_seeds_it_would_need(no_difference):
    """Old code: "Error: No such option: --effect" (exit code 2)."""
    rows = json_rows(no_difference, "--effect", 1)
    for v in ("bn", "ln"):
        row = rows[v]
        d = accuracies(no_difference, v, 1) - accuracies(no_difference, "plain", 1)
        sd, level = d.std(ddof=1), ALPHA / row["test_acc_tests"]
        needed = next(n for n in range(2, 10_000) if power(n, 1.0, sd, level) >= 0.8)
        assert power(needed - 1, 1.0, sd, level) < 0.8 if needed > 2 else True
        assert row["test_acc_needed"] == needed
        assert f"the --effect difference would need ~{needed} seeds" in row["verdict"]
    assert rows["plain"]["test_acc_needed"] is None


def test_the_verdict_family_is_four_tests_per_row_even_when_a_test_cannot_be_made(no_difference):
    """Old code: a family per metric: test_acc_tests 2, steps_tests 2, steps_acc_tests 0 (the untestable speedup
    dropped), no diverged_p."""
    t = table(no_difference)
    compared = ["bn", "ln"]
    measures = ["test_acc", "steps", "steps_acc", "diverged"]
    assert t.loc[compared, "steps_acc_p"].isna().all()  # no target: the test cannot be made
    family = [t.loc[v, f"{m}_p"] for m in measures for v in compared]
    expected = plain_holm(family)
    for i, (m, v) in enumerate((m, v) for m in measures for v in compared):
        assert t.loc[v, f"{m}_tests"] == FOUR * len(compared)
        assert t.loc[v, f"{m}_p_holm"] == pytest.approx(expected[i], rel=1e-12, nan_ok=True)
    for m in ("train_loss", "test_loss", "best_acc"):  # every other tested metric: its own family
        expected = plain_holm([t.loc[v, f"{m}_p"] for v in compared])
        assert t.loc[compared, f"{m}_tests"].tolist() == [2, 2]
        assert t.loc[compared, f"{m}_p_holm"].tolist() == pytest.approx(expected, rel=1e-12)
    assert "speed to plain's half-run test acc: n/a" in t.loc["bn", "verdict"]


# ---- 7. the speed measure on a real digits run -------------------------------------------------------------------

SEEDS = 6


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A real run: batchnorm and plain, 6 seeds, 2 epochs of digits (90 steps each), the loss logged every step
    and smoothed over 5."""
    folder = tmp_path_factory.mktemp("digits")
    config = tiny_config("t-digits", list(range(SEEDS)), training={"epochs": 2, "batch_size": 16, "log_every": 5})
    (folder / "exp.yaml").write_text(yaml.safe_dump(config))
    result = invoke("run", folder / "exp.yaml", "--out", folder / "results", "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (folder / "results" / "t-digits").iterdir()
    return run_dir


def derived_run(source: Path, folder: Path, variants: dict) -> Path:
    """A copy of `source` whose variants are made from its plain trials: variants {name: (norm, rows)}, rows(frame,
    file name) -> that file's rows of the variant (labelled with its name)."""
    run_dir = folder / source.parent.name / source.name
    run_dir.mkdir(parents=True)
    meta = json.loads((source / "meta.json").read_text())
    for made_up in ("config", "digests"):  # the config it began with and its rows' digests are the source's
        del meta[made_up]
    (run_dir / "meta.json").write_text(json.dumps(meta))
    config = yaml.safe_load((source / "config.yaml").read_text())
    config["variants"] = [{"name": name, "norm": norm} for name, (norm, _) in variants.items()]
    config["baseline"] = "plain"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    for name in ("batches.csv", "epochs.csv", "evals.csv"):
        frame = pd.read_csv(source / name)
        plain = frame[frame.variant == "plain"]
        parts = [make(plain.copy(), name).assign(variant=v) for v, (_, make) in variants.items()]
        out = pd.concat(parts).sort_values("seed", kind="stable")  # seed by seed, variants within
        out.to_csv(run_dir / name, index=False, float_format="%.9g")
    return run_dir


def shifted(shift: int):
    """Plain's rows of seed s + shift (cyclic) labelled seed s."""

    def make(frame: pd.DataFrame, _name: str) -> pd.DataFrame:
        return frame.assign(seed=(frame.seed - shift) % SEEDS)

    return make


def slowed(factor: float):
    """Plain's loss at step t replaced by its loss at step round(t / factor): the same curve, `factor` times
    slower, the same length (the test numbers unchanged)."""

    def make(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        if name != "batches.csv":
            return frame
        out = []
        for _, trial in frame.groupby("seed", sort=False):
            loss = trial.loss.to_numpy()
            source = np.maximum(np.floor(trial.step.to_numpy() / factor + 0.5).astype(int), 1)
            out.append(trial.assign(loss=loss[source - 1]))
        return pd.concat(out)

    return make


def same(frame: pd.DataFrame, _name: str) -> pd.DataFrame:
    return frame


def plain_losses(run: Path) -> dict:
    """{seed: plain's losses, step by step} as the run's batches.csv holds them."""
    b = read_csv(run, "batches.csv")
    b = b[b.variant == "plain"]
    return {s: b[b.seed == s].sort_values("step").loss.to_numpy() for s in range(SEEDS)}


def test_equal_variants_paired_across_seeds_give_a_speedup_whose_interval_holds_1(digits_run, tmp_path):
    """plain2 = plain of another seed: the same training, so the loss speedup is a number whose 95% interval
    holds 1 (for most of the 5 pairings; each is one draw of a 95% interval), and the speedups have no bias: over
    all 5 shifts, i.e. every ordered pair of distinct seeds once (30), the mean log speedup is within its
    Monte-Carlo error of 0. (A per-seed target read off each baseline trial's own curve let the baseline cross
    it early, and made such an equal variant look a few percent slower on average.)
    Old code: the same numbers' kind, e.g. shift 1 "speedup 0.99× [0.91, 1.07] to plain's final train loss (6/6
    seeds reached it)" (all 5 intervals hold 1); it fails here only for want of steps_estimator."""
    window = 5
    losses = plain_losses(digits_run)
    level = brute_half_run_level(list(losses.values()), window)  # one target, the same in every derived run
    crossing = {}
    for s, own in losses.items():
        after, at = brute_crossing(brute_smoothed(own, window), level)
        assert at is not None and after + 1 == at  # every seed reaches it, at an exact step
        crossing[s] = at
    held, shown, brute = [], [], []
    for shift in range(1, SEEDS):
        run = derived_run(
            digits_run, tmp_path / f"shift{shift}", {"plain": ("none", same), "plain2": ("none", shifted(shift))}
        )
        row = table(run).loc["plain2"]
        assert row.steps_estimator == "geometric mean" and row.steps_pairs == SEEDS
        assert row.steps_reached == SEEDS and row.steps_censored == 0
        assert row.steps_target == pytest.approx(level, rel=1e-12)
        assert np.isfinite([row.steps_speedup, row.steps_ci_low, row.steps_ci_high]).all()
        assert 0.8 < row.steps_speedup < 1.25
        held.append(row.steps_ci_low <= 1 <= row.steps_ci_high)
        logs = [math.log(crossing[s] / crossing[(s + shift) % SEEDS]) for s in range(SEEDS)]
        assert row.steps_speedup == pytest.approx(math.exp(np.mean(logs)), rel=1e-12)
        shown.append(math.log(row.steps_speedup))
        brute += logs
    assert sum(held) >= 4, held
    assert len(brute) == SEEDS * (SEEDS - 1)
    error = np.std(brute, ddof=1) / math.sqrt(len(brute))  # the Monte-Carlo error of the mean log speedup
    assert error > 0 and abs(np.mean(shown)) <= 2 * error, (np.mean(shown), error)
    assert np.mean(shown) == pytest.approx(np.mean(brute), abs=1e-12)


def test_a_variant_slowed_by_a_quarter_is_about_0_8_times_as_fast(digits_run, tmp_path):
    """Its crossing of the target moves from step T to about 1.25 T (T is at most 90 here, near 40-90): the
    smoothing windows of the two curves cover 5 and 4 of plain's steps, and t / 1.25 is rounded, which moves a
    crossing by a step or two, i.e. a few percent of T; so the geometric mean is 0.8 within 0.05.
    Old code: "speedup 0.81× [0.80, 0.83] to plain's final train loss (6/6 seeds reached it); slower to the target
    loss (Holm p < 0.05)" — the same answer; it fails here only for want of steps_estimator and the new wording."""
    run = derived_run(digits_run, tmp_path, {"plain": ("none", same), "slow": ("none", slowed(1.25))})
    b = read_csv(run, "batches.csv")
    own = {(v, s): b[(b.variant == v) & (b.seed == s)].loss.to_numpy() for v in ("plain", "slow") for s in range(SEEDS)}
    level = brute_half_run_level([own[("plain", s)] for s in range(SEEDS)], 5)
    logs = []
    for s in range(SEEDS):
        (after_b, at_b), (after_v, at_v) = brute_loss_speed(own[("plain", s)], own[("slow", s)], 5, level)
        assert at_b is not None and at_v is not None
        assert after_b + 1 == at_b and after_v + 1 == at_v  # every crossing exact: the geometric mean applies
        logs.append(math.log(at_b / at_v))
    row = table(run).loc["slow"]
    assert row.steps_estimator == "geometric mean" and row.steps_reached == SEEDS
    assert row.steps_target == pytest.approx(level, rel=1e-12)
    speedup = math.exp(np.mean(logs))
    assert row.steps_speedup == pytest.approx(speedup, rel=1e-12)
    assert row.steps_speedup == pytest.approx(0.8, abs=0.05)
    t_low, t_high = np.exp(stats.t.interval(0.95, SEEDS - 1, loc=np.mean(logs), scale=stats.sem(logs)))
    both = inference.mean_tests(np.array([logs]))  # the decision's: the hull with the skew-corrected interval
    low, high = math.exp(both["ci_low"][0]), math.exp(both["ci_high"][0])
    assert low <= t_low * (1 + 1e-12) and high >= t_high * (1 - 1e-12)
    assert row.steps_ci_low == pytest.approx(low, rel=1e-9) and row.steps_ci_high == pytest.approx(high, rel=1e-9)
    assert row.steps_p_t == pytest.approx(stats.ttest_1samp(logs, 0).pvalue, rel=1e-9)
    p = max(row.steps_p_t, both["p_skew"][0])
    assert row.steps_p == pytest.approx(p, rel=1e-9)
    family = [row.test_acc_p, p, row.steps_acc_p, row.diverged_p]
    assert row.steps_p_holm == pytest.approx(plain_holm(family)[1], rel=1e-9) and row.steps_p_holm < ALPHA
    assert row.steps_ci_high < 1
    holm = plain_holm(family)[1]
    holm_text = "<0.0001" if holm < 1e-4 else f"={holm:.2g}"
    assert (
        f"reaches plain's half-run loss {speedup:.2f}× later, unadjusted 95% CI [{low:.2f}, {high:.2f}] "
        f"(Holm p{holm_text})" in row.verdict
    )


# ---- compare never imports torch ---------------------------------------------------------------------------------


def test_compare_never_imports_torch(five_seeds_clear):
    """Through the CLI, with the rebuild's options. Old code: "No such option: --test" (exit code 2)."""
    code = (
        f"import sys\nfrom typer.testing import CliRunner\nfrom bnbench.cli import app\n"
        f"r = CliRunner().invoke(app, ['compare', {str(five_seeds_clear)!r}, '--test', 'exact', '--effect', '1', "
        f"'--format', 'json'])\nassert r.exit_code == 0, r.output\nassert r.stdout.lstrip().startswith('[')\n"
        f"assert 'torch' not in sys.modules, 'compare imported torch'\nprint('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
