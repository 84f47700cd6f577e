"""The comparison table's columns, declared once: every other module (the summary that fills them, the text
views, plots, show, the csv/json exports) looks a name up here, so a column is never spelled two ways.

A table has one row per sweep point x variant. Measures are per trial and summarised per variant; a tested
measure is compared with the baseline on the pairs of seeds where neither trial diverged (the primary one, where
some pair has a diverged trial, by rank over every pair: see `outcomes`).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A per-trial number summarised as mean ± std over seeds and, if `tested`, a paired difference."""

    label: str
    unit: str  # how a difference is written: "pts" for accuracies (percentage points), "" otherwise
    digits: int
    higher: bool  # higher is better
    tested: bool  # paired tests; wall seconds are not (trials that share cores slow each other)
    scale: float = float("inf")  # the largest difference there can be (accuracies: 100 pts)


@dataclass(frozen=True)
class Speed:
    """Steps (or examples) to a target level, the BN paper's "fewer steps to the same result"."""

    label: str  # what the target is, after "<baseline>'s"
    curve: str  # the curve judged against it


METRICS = {
    "train_loss": Metric("final train loss", "", 4, False, True),
    "test_loss": Metric("final test loss", "", 4, False, True),
    "test_acc": Metric("final test acc %", "pts", 2, True, True, 100.0),
    "val_loss": Metric("final val loss", "", 4, False, True),
    "val_acc": Metric("final val acc %", "pts", 2, True, True, 100.0),
    "best_acc": Metric("best test acc % (optimistic)", "pts", 2, True, True, 100.0),
    "seconds": Metric("seconds per trial", "", 2, False, False),
}
VALIDATION = ("val_loss", "val_acc")  # metrics of runs with a validation split (dataset.validation) alone
SPEEDS = {
    "steps": Speed("half-run loss", "training loss, smoothed"),  # the level its curve has at half its run
    "steps_acc": Speed("half-run test acc", "test accuracy at each evaluation"),
}
PRIMARY = "test_acc"
VERDICT = ["test_acc", "steps", "steps_acc", "diverged"]  # the tests a verdict line uses: one Holm family

LABELS = {  # one row's identity and counts
    "experiment": "the config's name",
    "run": "the run folder(s) compared",
    "status": "complete, running or partial",
    "partial": "status is not complete",
    "notes": "what combining runs did",
    "variant": "the variant",
    "baseline": "True on the baseline's row",
    "seeds": "seeds of this variant that finished without diverging",
    "pairs": "seeds where neither this variant nor the baseline diverged (the paired measures' n)",
    "trials": "seeds with results",
    "epoch": "the compared epoch",
    "epochs": "epochs configured",
    "smoothing": "batches in the trailing mean of the loss curve",
    "steps_total": "mean steps through the epoch",
    "best_epoch": "mean epoch of the best test accuracy",
    "missing": "seeds without results yet",
    "test": "the test a decision uses: t (paired t-test) or exact (sign-flip)",
}
DIVERGED = {
    "diverged_seeds": "seeds whose loss became NaN/inf (k of `trials`)",
    "diverged": "which seed diverged at which step",
    "diverged_p": "exact McNemar test on the pairs: diverging more or less often than the baseline",
    "diverged_p_holm": "diverged_p adjusted by Holm over the verdict family",
    "diverged_tests": "the Holm family's size",
    "learned_nothing": "no seed ended above chance accuracy (see docs/statistics.md; empty: classes unknown)",
    "test_acc_rule": "empty: test acc decided on the pairs where neither diverged; else the rank rule that decided",
    "test_acc_ranked": "pairs where both trials ended, finished or diverged (the rank rule's n)",
    "test_acc_ranked_wins": "of them, pairs the variant won: it finished where the baseline diverged, or beat it",
    "test_acc_ranked_losses": "pairs it lost (ties, two diverged trials included, are dropped)",
}
METRIC_STATS = {  # tested metrics; an untested metric has the first three
    "mean": "mean over the seeds that did not diverge",
    "std": "sample std over them",
    "delta": "mean paired difference, variant − baseline on the same seed",
    "ci_low": (
        "95% interval of delta (unadjusted for the Holm family), low end: the lower of the t-interval's and the "
        "skew-corrected one's"
    ),
    "ci_high": "95% interval of delta, high end: the higher of the two",
    "ci_level": "the confidence level of ci_low..ci_high: 0.95, for the interval alone",
    "ci_unadjusted": (
        "True where p_holm adjusts over several tests and the interval does not: it can exclude 0 beside no "
        "difference shown"
    ),
    "p_t": "paired t-test p (assumes normal differences)",
    "p_skew": "skewness-corrected t-test p (Hall 1992: holds its level on skewed differences)",
    "p_exact": "exact sign-flip (permutation) p on the same differences (assumes symmetric differences)",
    "p": "the p the decision uses (see --test): under t the larger of p_t and p_skew",
    "p_holm": "p adjusted by Holm (see tests)",
    "tests": "the size of its Holm family",
    "wins": "pairs where the variant is better",
    "losses": "pairs where it is worse",
    "detectable": (
        "the difference these pairs detect with 80% power (t-test; inf: the exact test cannot decide; above the "
        "metric's scale, 100 pts for accuracies: none within it; empty where the rank rule decided)"
    ),
    "needed": "seeds a difference of --effect would need (80% power)",
    "note": "why an interval is missing or weak",
}
SPEED_STATS = {
    "target": "the target level: the mean over the baseline's seeds of its curve's level at half its run",
    "unit": "steps, or examples seen when batch sizes differ",
    "at": "mean step the seeds that reached it did",
    "speedup": "baseline's steps ÷ the variant's: the geometric mean (its low end), or the median's low end",
    "speedup_high": "its high end (equal to speedup unless crossings are only bounded)",
    "estimator": "geometric mean (every pair reached the target) or median (some did not: censored)",
    "ci_low": "95% interval (unadjusted for the Holm family), low end",
    "ci_high": "95% interval, high end",
    "ci_level": "the confidence level of ci_low..ci_high: 0.95 (at least, for the median's), for the interval alone",
    "ci_unadjusted": (
        "True where p_holm adjusts over several tests and the interval does not: it can exclude 1 beside no "
        "difference shown"
    ),
    "p_t": "t-test p on log speedups (geometric mean only)",
    "p_skew": "skewness-corrected t-test p on them",
    "p_exact": "exact sign-flip or sign-test p",
    "p": "the p the decision uses",
    "p_holm": "p adjusted by Holm over the verdict family",
    "tests": "the Holm family's size",
    "pairs": "pairs with a target",
    "reached": "pairs where the variant reached it",
    "censored": "pairs where it did not, within its own steps",
    "baseline_censored": "pairs where the baseline did not, within its own steps",
    "note": "why a number is missing or bounded",
}


def _declared() -> dict[str, str]:
    """Every column a comparison table can have, with its meaning (sweep paths come first in a table, and are
    the config's)."""
    out = dict(LABELS) | DIVERGED
    for name, metric in METRICS.items():
        stats = METRIC_STATS if metric.tested else {s: METRIC_STATS[s] for s in ("mean", "std", "delta")}
        out |= {f"{name}_{s}": f"{metric.label}: {meaning}" for s, meaning in stats.items()}
    for name, speed in SPEEDS.items():
        out |= {
            f"{name}_{s}": f"steps to the baseline's {speed.label}: {meaning}" for s, meaning in SPEED_STATS.items()
        }
    return out | {"verdict": "one quotable line (None on the baseline's row)"}


COLUMNS = _declared()
COUNTS = {
    "seeds",
    "pairs",
    "trials",
    "diverged_seeds",
    "epoch",
    "epochs",
    "smoothing",
    "diverged_tests",
    *(
        c
        for c in COLUMNS
        if c.endswith(("_wins", "_losses", "_tests", "_pairs", "_reached", "_censored", "_needed", "_ranked"))
    ),
}


def col(measure: str, stat: str) -> str:
    """The column of `stat` of `measure` ('test_acc', 'ci_low' -> 'test_acc_ci_low'); only declared ones."""
    name = f"{measure}_{stat}"
    if name not in COLUMNS:
        raise KeyError(f"no column {name!r}")
    return name


def of_validation(column: str) -> bool:
    """Whether a table column is one of the validation metrics', which only a run with the split has."""
    return column.startswith(tuple(f"{name}_" for name in VALIDATION))


def of_measure(measure: str) -> list[str]:
    """The columns of one --metric choice, in table order."""
    if measure in SPEEDS:
        return [col(measure, s) for s in SPEED_STATS]
    stats = METRIC_STATS if METRICS[measure].tested else ["mean", "std", "delta"]
    return [col(measure, s) for s in stats] + ["best_epoch"] * (measure == "best_acc")
