"""One variant against the baseline on the seeds where neither diverged: a metric's paired difference (its
t-interval, the t-test's and the exact sign-flip p, wins), and the speedup to a steps-to-target measure's target
(the geometric mean, or the median where some trial never reached it, with bounds). The methods, and why: the
docstring of `summary`, which makes a row of these per variant."""

from collections import Counter

import numpy as np

from bnbench.analysis import inference
from bnbench.analysis.columns import col


def mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else np.nan


def paired(name: str, variant: np.ndarray, baseline: np.ndarray, higher: bool, tested: bool, test: str) -> dict:
    """Mean paired difference and, for a tested metric, its interval, both p-values, the decision's p, wins and
    losses (differences within rounding are ties), the observed spread (for the detectable effect) and the note."""
    d = variant - baseline
    if not tested:
        return {col(name, "delta"): mean(d)}
    t = inference.paired_t(d)
    exact = inference.sign_flip_p(d)
    tie = np.isclose(variant, baseline, rtol=1e-7, atol=1e-12)
    better = (d > 0) if higher else (d < 0)
    p = _decision(t["p"], exact, test)
    return {
        col(name, "delta"): t["mean"],
        col(name, "ci_low"): t["ci_low"],
        col(name, "ci_high"): t["ci_high"],
        col(name, "p_t"): t["p_t"],
        col(name, "p_skew"): t["p_skew"],
        col(name, "p_exact"): exact,
        col(name, "p"): p,
        col(name, "wins"): int((better & ~tie).sum()),
        col(name, "losses"): int((~better & ~tie).sum()),
        col(name, "note"): t["note"],
        f"_{name}_sd": t["sd"],
    }


def _decision(p_t: float, exact: float, test: str) -> float:
    """The p a decision uses: the t-tests' (the larger of Student's and the skewness-corrected one), or the exact
    one's under --test exact or where the t-tests are undefined (a constant difference)."""
    return exact if test == "exact" or np.isnan(p_t) else p_t


def speed(measure: str, m: dict, v: int, b: int, pairs: np.ndarray, test: str) -> dict:
    """Steps to `measure`'s target of variant v against baseline b over the pairs with a target: the summary,
    in steps, or in examples when the two trials' batch sizes differ (see the module docstring)."""
    has = pairs & ~np.isnan(m[f"{measure}_target"][:, v])
    at_v, at_b = m[f"{measure}_at"][has, v], m[f"{measure}_at"][has, b]
    reached = ~np.isnan(at_v)
    sizes_v, sizes_b = m["batch_size"][has, v], m["batch_size"][has, b]
    out = {
        col(measure, "target"): mean(m[f"{measure}_target"][has, v]),
        col(measure, "unit"): "steps" if np.array_equal(sizes_v, sizes_b) else "examples",
        col(measure, "at"): mean(at_v[reached]),
        col(measure, "pairs"): int(has.sum()),
        col(measure, "reached"): int(reached.sum()),
        col(measure, "censored"): int((~reached).sum()),
        col(measure, "estimator"): "",
        col(measure, "note"): _why(m[f"{measure}_why"][pairs | (v == b), v]),
    }
    if v == b:
        return out | ({col(measure, "speedup"): 1.0, col(measure, "speedup_high"): 1.0} if has.any() else {})
    if not has.any():
        return out
    lo, hi = _log_ratios(m, measure, has, v, b)
    out[col(measure, "baseline_censored")] = int(np.isnan(at_b).sum())
    if np.isfinite(lo).all() and np.isfinite(hi).all():  # every trial of every pair reached the target
        return out | _geometric(measure, lo, hi, test, out[col(measure, "note")])
    s = inference.censored_summary(lo, hi)
    return out | {
        col(measure, "speedup"): np.exp(s["estimate_low"]),
        col(measure, "speedup_high"): np.exp(s["estimate_high"]),
        col(measure, "estimator"): "median",
        col(measure, "ci_low"): np.exp(s["ci_low"]),
        col(measure, "ci_high"): np.exp(s["ci_high"]),
        col(measure, "p_t"): np.nan,
        col(measure, "p_skew"): np.nan,
        col(measure, "p_exact"): s["p"],
        col(measure, "p"): s["p"],
        col(measure, "note"): _joined_notes(s["note"], out[col(measure, "note")]),
        f"_{measure}_counts": (s["wins"], s["losses"], s["undetermined"]),  # the sign test's, for the verdict's word
    }


def _log_ratios(m: dict, measure: str, has: np.ndarray, v: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the bounds of log(T_baseline / T_variant), T in examples: a crossing in (after, at] is a step
    in [after + 1, at]; a trial that never reached the target, a step past its own last one (> its steps)."""

    def steps(k: int) -> tuple[np.ndarray, np.ndarray]:
        at, after, total = (m[name][has, k] for name in (f"{measure}_at", f"{measure}_after", "steps"))
        reached = ~np.isnan(at)
        return np.where(reached, after + 1, total + 1), np.where(reached, at, np.inf)

    (base_low, base_high), (own_low, own_high) = steps(b), steps(v)
    scale = np.log(m["batch_size"][has, b]) - np.log(m["batch_size"][has, v])
    return np.log(base_low) - np.log(own_high) + scale, np.log(base_high) - np.log(own_low) + scale


def _geometric(measure: str, lo: np.ndarray, hi: np.ndarray, test: str, note: str) -> dict:
    """Every pair reached the target: the geometric mean speedup, with a t-interval on the log speedups. Where
    crossings are known only between two measured steps (an evaluation grid), the mean is known between its
    value on the low ends and on the high ends; the interval spans both ends' intervals, and the test is made on
    the end least favourable to the direction claimed (a difference in neither direction for certain: p = 1)."""
    low, high = inference.paired_t(lo), inference.paired_t(hi)
    if low["mean"] > 0:
        worst, end = low, lo
    elif high["mean"] < 0:
        worst, end = high, hi
    else:
        worst, end = None, None
    exact = inference.sign_flip_p(end) if end is not None else 1.0
    if worst is not None:
        p_t, p_skew, p = worst["p_t"], worst["p_skew"], worst["p"]
    else:  # a difference in neither direction for certain
        p_t = p_skew = p = 1.0 if not np.isnan(low["p_t"]) else np.nan
    grid = "" if np.array_equal(lo, hi) else "crossings known only between two measured points: a range"
    return {
        col(measure, "speedup"): np.exp(low["mean"]),
        col(measure, "speedup_high"): np.exp(high["mean"]),
        col(measure, "estimator"): "geometric mean",
        col(measure, "ci_low"): np.exp(low["ci_low"]),
        col(measure, "ci_high"): np.exp(high["ci_high"]),
        col(measure, "p_t"): p_t,
        col(measure, "p_skew"): p_skew,
        col(measure, "p_exact"): exact,
        col(measure, "p"): _decision(p, exact, test),
        col(measure, "note"): _joined_notes((worst or low)["note"], grid, note),
    }


def _why(reasons: np.ndarray) -> str:
    """Why some seeds have no target, counted: 'no target on 2 seeds: the baseline diverged'."""
    counted = Counter(r for r in reasons if r).most_common()
    return "; ".join(f"no target on {n} seed{'s' * (n != 1)}: {why}" for why, n in counted)


def _joined_notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
