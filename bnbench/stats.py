"""The statistics behind `bnbench compare`, on plain arrays: paired differences, Holm's adjustment, and steps to
a target as a censored ratio.

Every number comes with what it can claim. Differences are paired by seed (same initial weights, same batches):
a t-interval and p-value need at least 2 pairs and some spread, and below 3 pairs the interval is too wide to
trust (t(0.975, 1) = 12.7), so such results carry a note. Steps to a target are measured on a curve observed at
discrete steps, from its first defined point on: a crossing at that first point is a bound ("at or before"),
a curve that never crosses is a bound ("after the last step"), and a ratio of two bounds may be no number at all.
"""
from typing import Optional

import numpy as np
from scipy.special import stdtr, stdtrit

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
ENOUGH_PAIRS = 3  # below this the interval is flagged as unreliable
ADVISED_SEEDS = 5  # the verdict asks for at least this many before trusting "not shown"


def note(pairs: int, spread: Optional[float]) -> str:
    """Why an interval is missing or not to be trusted ('' when it is fine)."""
    if pairs == 0:
        return "no pairs"
    if pairs == 1:
        return "1 pair: no interval"
    if spread == 0:
        return "no spread: interval undefined"
    if pairs < ENOUGH_PAIRS:
        return f"{pairs} pairs: interval unreliable"
    return ""


def mean_interval(d: np.ndarray) -> dict:
    """Mean of `d`, its 95% t-interval and the two-sided one-sample t-test p-value against 0 (NaN where the note
    says there is none): for paired differences, scipy.stats.ttest_rel's numbers; for log ratios, ttest_1samp's.
    Written out with Student's t distribution from scipy.special: the same formulas, without scipy.stats' import
    (0.9 s) and its per-call overhead (1 ms; a comparison of 300 runs makes thousands of these)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    spread = float(np.std(d, ddof=1)) if n >= 2 else None
    mean = float(d.mean()) if n else np.nan
    out = {"mean": mean, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "note": note(n, spread)}
    if n >= 2 and spread:
        se = spread / np.sqrt(n)
        half = float(stdtrit(n - 1, 1 - ALPHA / 2)) * se
        out.update(ci_low=mean - half, ci_high=mean + half, p=float(2 * stdtr(n - 1, -abs(mean / se))))
    return out


def holm(p: np.ndarray) -> tuple[np.ndarray, int]:
    """Holm's step-down adjustment of the finite p-values in `p` (NaN stays NaN); returns them and their count.

    Sorted ascending, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)), m = number of finite p-values:
    it controls the chance of any false "difference" among the m at ALPHA, with no assumption on dependence.
    """
    p = np.asarray(p, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    adjusted = np.full(len(p), np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted, m


# ---- steps to a target -------------------------------------------------------------------------------------------

def first_reach(steps: np.ndarray, values: np.ndarray, target: float, higher: bool) -> tuple[str, int]:
    """When a curve first meets `target`: ("at", step); ("within", s) if it already does at its first defined
    point s, so all we know is "at or before s"; ("never", last step) if it never does. NaN values are
    undefined points (e.g. before a smoothing window is full); with none defined, or no target: ("undefined", 0)."""
    values = np.asarray(values, dtype=float)
    defined = np.flatnonzero(~np.isnan(values))
    if not len(defined) or np.isnan(target):
        return "undefined", 0  # no point to judge (e.g. fewer steps than the smoothing window), or no target
    met = (values >= target) if higher else (values <= target)
    hits = defined[met[defined]]
    if not len(hits):
        return "never", int(steps[defined[-1]])
    if hits[0] == defined[0]:
        return "within", int(steps[hits[0]])
    return "at", int(steps[hits[0]])


def speed_ratio(base: tuple[str, int], variant: tuple[str, int], budget: int) -> tuple[str, float]:
    """Speedup T_base / T_variant of one seed, as (relation, value): "=" exact, "≥" or "≤" a bound, "<" a bound
    from a variant that never reached the target within `budget` steps, "n/a" when nothing can be said (the
    baseline never met its own target, or both met it at their first defined point)."""
    (bk, bt), (vk, vt) = base, variant
    if "undefined" in (bk, vk) or bk == "never" or (bk == "within" and vk == "within"):
        return "n/a", np.nan
    if vk == "never":
        return "<", bt / budget
    if vk == "within":
        return "≥", bt / vt
    return ("=" if bk == "at" else "≤"), bt / vt


def geometric_speedup(ratios: list[tuple[str, float]]) -> dict:
    """Across seeds: the geometric mean of the per-seed ratios, with a t-interval and p-value on their logs when
    every ratio is a number. With bounds among them the mean is a bound in their direction ("≥" or "≤"); with
    bounds both ways, none. Ratios that are "n/a" are left out and counted (pairs: those with a ratio; na)."""
    usable = [(kind, r) for kind, r in ratios if kind != "n/a"]
    kinds = {kind for kind, _ in usable}
    out = {"speedup": np.nan, "bound": "", "ci_low": np.nan, "ci_high": np.nan, "p": np.nan,
           "pairs": len(usable), "na": len(ratios) - len(usable), "note": note(len(usable), None)}
    if not usable:
        return out
    logs = np.log([r for _, r in usable])
    if kinds == {"="}:
        summary = mean_interval(logs)
        out.update(speedup=float(np.exp(summary["mean"])), ci_low=float(np.exp(summary["ci_low"])),
                   ci_high=float(np.exp(summary["ci_high"])), p=summary["p"], note=summary["note"])
    elif kinds <= {"=", "≥"}:
        out.update(speedup=float(np.exp(logs.mean())), bound="≥", note="bound: met at the first measured point")
    elif kinds <= {"=", "≤", "<"}:
        out.update(speedup=float(np.exp(logs.mean())), bound="≤",
                   note="bound: " + ("not reached on every seed" if "<" in kinds else
                                     "the baseline met it at its first measured point"))
    else:
        out.update(bound="n/a", note="bounds both ways: no mean")
    return out
