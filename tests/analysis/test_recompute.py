"""`bnbench compare --format json` of a real digits run (batchnorm, plain, layernorm x 5 seeds x 2 epochs), every
number recomputed here from the run's CSVs alone with pandas and scipy.stats: per-trial measures, means and
stds, paired deltas, scipy's paired t-test and t-interval with Hall's skew-corrected t-test (its statistic written
out from the paper, its interval found by root search; the decision's p the larger, its interval the hull), the
exact sign-flip p by enumerating all 2^n sign
vectors, the steps-to-target speedups from a directly summed trailing mean and the evaluations (the geometric mean of
log speedups known exactly or between two measured steps), a plain Holm over the verdict family
and over each other metric's family, wins. All must equal the JSON to 1e-9 relative.

Fails on the code before the rebuild (commit e9ece1d): its JSON has no test_acc_p_t, test_acc_p_exact,
steps_estimator, diverged_p columns (test_acc_p 0.0038 with "test_acc_tests": 2, a family per metric)."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import optimize, stats
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.cli import app

VARIANTS = ["batchnorm", "plain", "layernorm"]
BASE = "plain"
COMPARED = ["batchnorm", "layernorm"]
SEEDS = [0, 1, 2, 3, 4]
EPOCHS, BATCH, WINDOW = 2, 16, 5
REL = 1e-9
ALPHA = 0.05
TIE = 1e-9  # relative: sign-flip sums this close to the observed one are ties (CSV rounding; the code's own rule)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recompute")
    config = tiny_config(
        "t-recompute",
        SEEDS,
        training={"epochs": EPOCHS, "batch_size": BATCH, "log_every": WINDOW},
        variants=[{"name": v, "norm": {"plain": "none"}.get(v, v)} for v in VARIANTS],
    )
    (folder / "exp.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", str(folder / "exp.yaml"), "--out", str(folder / "results"), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (folder / "results" / "t-recompute").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def shown(run) -> dict:
    result = CliRunner().invoke(app, ["compare", str(run), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["variant"] for r in rows] == VARIANTS
    return {r["variant"]: {k: (np.nan if v is None else v) for k, v in r.items()} for r in rows}


@pytest.fixture(scope="module")
def trials(run) -> dict:
    """Per-trial measures from the CSVs: {measure: DataFrame [seed x variant]}."""
    b, e, v = (pd.read_csv(run / f) for f in ("batches.csv", "epochs.csv", "evals.csv"))
    assert np.isfinite(b.loss).all()  # nothing diverged: every trial counts
    out = {"train_loss": b[b.epoch == EPOCHS].groupby(["seed", "variant"]).loss.mean().unstack()}
    last = e[e.epoch == EPOCHS].set_index(["seed", "variant"])
    out["test_loss"] = last.test_loss.unstack()
    out["test_acc"] = 100 * last.test_acc.unstack()
    out["best_acc"] = 100 * e.groupby(["seed", "variant"]).test_acc.max().unstack()
    out["seconds"] = e.groupby(["seed", "variant"]).seconds.sum().unstack()
    out["losses"] = {
        (s, name): g.sort_values("step").loss.to_numpy() for (s, name), g in b.groupby(["seed", "variant"])
    }
    out["evals"] = {
        (s, name): (g.step.to_numpy(), 100 * g.test_acc.to_numpy()) for (s, name), g in v.groupby(["seed", "variant"])
    }
    return {k: (x.loc[SEEDS, VARIANTS] if isinstance(x, pd.DataFrame) else x) for k, x in out.items()}


# ---- independent statistics --------------------------------------------------------------------------------------


def sign_flip_p(d: np.ndarray) -> float:
    """Every one of the 2^n sign vectors: the fraction whose |sum| reaches the observed |sum|."""
    observed = abs(math.fsum(d)) - TIE * math.fsum(abs(x) for x in d)
    hits = sum(
        abs(math.fsum(s * x for s, x in zip(signs, d))) >= observed
        for signs in itertools.product([1.0, -1.0], repeat=len(d))
    )
    return hits / 2 ** len(d)


def holm(p: list) -> list:
    """Holm's step-down adjustment; a NaN (a test that could not be made) counts as p = 1 and stays NaN."""
    q = [1.0 if math.isnan(x) else x for x in p]
    order = sorted(range(len(q)), key=lambda i: q[i])
    out, running = [math.nan] * len(q), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(q) - rank) * q[i]))
        out[i] = math.nan if math.isnan(p[i]) else running
    return out


def sign_test(wins: int, losses: int) -> float:
    return 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue


def smoothed(losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    steps = np.arange(WINDOW, len(losses) + 1)
    return steps, np.array([math.fsum(losses[t - WINDOW : t]) / WINDOW for t in steps])


def crossing(steps: np.ndarray, values: np.ndarray, level: float, higher: bool):
    """(the defined step before the first that meets `level`, or 0; that step), or (last step, None)."""
    met = values >= level if higher else values <= level
    if not met.any():
        return int(steps[-1]), None
    i = int(np.argmax(met))
    return (int(steps[i - 1]) if i else 0), int(steps[i])


def curve(trials: dict, seed: int, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    return smoothed(trials["losses"][(seed, name)]) if kind == "loss" else trials["evals"][(seed, name)]


def target(trials: dict, kind: str) -> float:
    """The point's one target of `kind`: the mean over the baseline's seeds of the level each one's curve has at
    its last measured point at or before ceil(half its steps)."""
    levels = []
    for s in SEEDS:
        steps, values = curve(trials, s, BASE, kind)
        levels.append(values[steps <= math.ceil(len(trials["losses"][(s, BASE)]) / 2)][-1])
    return math.fsum(levels) / len(levels)


def speed(trials: dict, variant: str, kind: str) -> dict:
    """Steps to the target of `kind` (loss: the smoothed training loss; acc: test accuracy per evaluation) for each
    seed, and their summary: the geometric mean when every crossing of every pair is within its run (exact or
    between two measured steps), else the median of the bounds. A crossing in (after, at] is a step in
    [after + 1, at]; a trial that never meets the target, a step in [its steps + 1, inf)."""
    level = target(trials, kind)

    def bounds(s: int, name: str) -> tuple[float, float, int | None]:
        after, at = crossing(*curve(trials, s, name, kind), level, kind == "acc")
        return (after + 1, at, at) if at else (len(trials["losses"][(s, name)]) + 1, math.inf, None)

    lo, hi, ats = [], [], []
    for s in SEEDS:
        (base_low, base_high, _), (own_low, own_high, at_v) = bounds(s, BASE), bounds(s, variant)
        lo.append(math.log(base_low) - math.log(own_high))
        hi.append(math.log(base_high) - math.log(own_low))
        ats.append(at_v)
    reached = [a for a in ats if a is not None]
    out = {
        "target": level,
        "at": np.mean(reached) if reached else np.nan,
        "reached": len(reached),
        "censored": len(SEEDS) - len(reached),
    }
    lo, hi = np.array(lo), np.array(hi)
    if np.isfinite(lo).all() and np.isfinite(hi).all():  # the geometric mean, known between its value on the low
        low, high = t_test(lo), t_test(hi)  # and the high ends
        if lo.mean() > 0 or hi.mean() < 0:  # tested on the end least favourable to the direction claimed
            end, worst = (lo, low) if lo.mean() > 0 else (hi, high)
            p_t, p, p_exact = worst["p_t"], worst["p"], sign_flip_p(end)
        else:  # neither direction for certain
            p_t = p = np.nan if math.isnan(low["p"]) else 1.0
            p_exact = 1.0
        return out | {
            "estimator": "geometric mean",
            "speedup": math.exp(lo.mean()),
            "speedup_high": math.exp(hi.mean()),
            "ci_low": math.exp(low["ci_low"]),
            "ci_high": math.exp(high["ci_high"]),
            "p_t": p_t,
            "p_exact": p_exact,
            "p": p_exact if math.isnan(p_t) else p,
        }
    p = sign_test(int((lo > 0).sum()), int((hi < 0).sum()))
    return out | {
        "estimator": "median",
        "speedup": math.exp(np.median(lo)),
        "speedup_high": math.exp(np.median(hi)),
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_t": np.nan,
        "p_exact": p,
        "p": p,
    }  # < 6 pairs: no interval


def t_test(x: np.ndarray) -> dict:
    """The decision's test of x: scipy's one-sample t-test (p_t) and Hall's skew-corrected one (p_skew) must both
    reject, so p is the larger and the 95% interval the hull of theirs; NaN for values constant up to CSV
    rounding."""
    if np.std(x, ddof=1) <= 1e-6 * np.abs(x).max():
        return {"p": np.nan, "p_t": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    test = stats.ttest_1samp(x, 0)
    ci = test.confidence_interval(0.95)
    n, s, mean = len(x), x.std(ddof=1), x.mean()
    g = np.mean((x - mean) ** 3) / s**3

    def hall(mu: float) -> float:  # Hall (1992): decreasing in mu
        w = (mean - mu) / s
        return math.sqrt(n) * (w + g * w**2 / 3 + g**2 * w**3 / 27 + g / (6 * n))

    crit, span = stats.t.ppf(0.975, n - 1), 1e3 * s
    low = optimize.brentq(lambda mu: hall(mu) - crit, mean - span, mean + span, xtol=1e-14)
    high = optimize.brentq(lambda mu: hall(mu) + crit, mean - span, mean + span, xtol=1e-14)
    p_skew = 2 * stats.t.sf(abs(hall(0.0)), n - 1)
    return {
        "p": max(test.pvalue, p_skew),
        "p_t": test.pvalue,
        "ci_low": min(ci.low, low),
        "ci_high": max(ci.high, high),
    }


def close(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=REL, abs=0)


# ---- the recomputation -------------------------------------------------------------------------------------------

HIGHER = {"train_loss": False, "test_loss": False, "test_acc": True, "best_acc": True}


def test_means_stds_paired_deltas_t_tests_intervals_exact_p_and_wins(trials, shown):
    """Old code: the same means, stds, deltas and t-intervals, "test_acc_p": 0.0038 (batchnorm), but no
    test_acc_p_t, test_acc_p_exact or test_acc_losses."""
    for measure in [*HIGHER, "seconds"]:
        for v in VARIANTS:
            x = trials[measure][v]
            assert close(shown[v][f"{measure}_mean"], x.mean()), (measure, v)
            assert close(shown[v][f"{measure}_std"], x.std(ddof=1)), (measure, v)
    for v in COMPARED:
        assert close(shown[v]["seconds_delta"], (trials["seconds"][v] - trials["seconds"][BASE]).mean())
        assert shown[v]["pairs"] == len(SEEDS) and shown[v]["seeds"] == len(SEEDS) and shown[v]["test"] == "t"
    for measure, higher in HIGHER.items():
        for v in COMPARED:
            a, b = trials[measure][v].to_numpy(), trials[measure][BASE].to_numpy()
            d = a - b
            test = t_test(d)
            row = shown[v]
            assert close(row[f"{measure}_delta"], d.mean())
            assert close(row[f"{measure}_p_t"], stats.ttest_rel(a, b).pvalue)
            assert close(row[f"{measure}_ci_low"], test["ci_low"]) and close(row[f"{measure}_ci_high"], test["ci_high"])
            assert close(row[f"{measure}_p_exact"], sign_flip_p(d))
            assert close(row[f"{measure}_p"], test["p"])  # the default test: t
            tie = np.abs(d) <= 1e-7 * np.maximum(np.abs(a), np.abs(b))
            better = (d > 0) if higher else (d < 0)
            assert row[f"{measure}_wins"] == int((better & ~tie).sum())
            assert row[f"{measure}_losses"] == int((~better & ~tie).sum())


def test_speeds_to_target(trials, shown):
    """Old code: "speedup 1.50× [1.32, 1.69] to plain's final train loss", "speedup ≥2.00× to plain's best test
    acc" (batchnorm): other targets, no steps_estimator, steps_unit, steps_speedup_high or steps_p_exact."""
    for v in COMPARED:
        for measure, kind in (("steps", "loss"), ("steps_acc", "acc")):
            expected, row = speed(trials, v, kind), shown[v]
            assert row[f"{measure}_estimator"] == expected["estimator"]
            assert row[f"{measure}_unit"] == "steps"
            assert (row[f"{measure}_pairs"], row[f"{measure}_reached"], row[f"{measure}_censored"]) == (
                len(SEEDS),
                expected["reached"],
                expected["censored"],
            )
            for stat in ("target", "at", "speedup", "ci_low", "ci_high", "p_t", "p_exact", "p"):
                assert close(row[f"{measure}_{stat}"], expected[stat]), (v, measure, stat)
            assert close(row[f"{measure}_speedup_high"], expected["speedup_high"]), (v, measure)


def test_holm_over_the_verdict_family_and_each_other_metric(trials, shown):
    """Old code: a family per metric: "test_acc_p_holm": 0.0051, "test_acc_tests": 2, "steps_acc_tests": 0, no
    diverged_p."""
    p = {}
    for v in COMPARED:
        p[("test_acc", v)] = t_test((trials["test_acc"][v] - trials["test_acc"][BASE]).to_numpy())["p"]
        p[("steps", v)] = speed(trials, v, "loss")["p"]
        p[("steps_acc", v)] = speed(trials, v, "acc")["p"]
        p[("diverged", v)] = sign_test(0, 0)  # McNemar: no seed diverged on either side
    keys = list(p)
    for key, adjusted in zip(keys, holm([p[k] for k in keys])):
        measure, v = key
        assert close(shown[v][f"{measure}_p"], p[key]), key
        assert close(shown[v][f"{measure}_p_holm"], adjusted), key
        assert shown[v][f"{measure}_tests"] == 4 * len(COMPARED)
    for measure in ("train_loss", "test_loss", "best_acc"):
        raw = [t_test((trials[measure][v] - trials[measure][BASE]).to_numpy())["p"] for v in COMPARED]
        for v, adjusted in zip(COMPARED, holm(raw)):
            assert close(shown[v][f"{measure}_p_holm"], adjusted), (measure, v)
            assert shown[v][f"{measure}_tests"] == len(COMPARED)


def test_detectable_effects(trials, shown):
    """The difference each metric's pairs detect with 80% power at its family's level (noncentral t).
    Old code: no *_detectable columns."""
    for measure in HIGHER:
        for v in COMPARED:
            sd = (trials[measure][v] - trials[measure][BASE]).std(ddof=1)
            n, level = len(SEEDS), ALPHA / shown[v][f"{measure}_tests"]
            crit = stats.t.ppf(1 - level / 2, n - 1)

            def power(delta, n=n, sd=sd, crit=crit):
                nc = delta * math.sqrt(n) / sd
                return stats.nct.sf(crit, n - 1, nc) + stats.nct.sf(crit, n - 1, -nc)

            delta = optimize.brentq(lambda x: power(x) - 0.8, 1e-6 * sd, 50 * sd, xtol=1e-15 * sd)
            assert shown[v][f"{measure}_detectable"] == pytest.approx(delta, rel=1e-7), (measure, v)
