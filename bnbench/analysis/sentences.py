"""The verdict: one line a person can quote per variant (x sweep point), the conclusion first, each claim with
its interval, its Holm-adjusted p and the assumption it rests on; what the seeds could have detected when no
difference is shown; divergence named for the baseline too.

A claim says "better", "worse", "faster", "slower" or "diverges more/less often" only where the Holm-adjusted p
of the verdict family is below ALPHA; p-values are printed so that the digits shown agree with that decision.
"""
import numpy as np

from .columns import METRICS, PRIMARY, SPEEDS, col
from .inference import ADVISED_SEEDS, ALPHA, format_p, p_is


def verdict(row: dict, base: dict, baseline: str, points: list[str]) -> str:
    """The line for `row` against the baseline's row `base` of the same sweep point."""
    where = "".join(f" @ {path}={row[path]}" for path in points)
    head = f"{row['variant']}{where} vs {baseline}:"
    diverged = _divergence(row, base, baseline)
    if not row["pairs"]:
        return f"{head} nothing to compare: no seed where neither diverged" + (f" ({diverged})" if diverged else "")
    claims = [_metric_claim(row, PRIMARY)] + [_speed_claim(row, m, baseline) for m in SPEEDS] + [diverged]
    if row["pairs"] < ADVISED_SEEDS:
        claims.append(f"only {row['pairs']} pair{'s' * (row['pairs'] != 1)}: run ≥ {ADVISED_SEEDS} seeds")
    return f"{head} " + "; ".join(c for c in claims if c)


def _decided(row: dict, measure: str) -> bool:
    return bool(row[col(measure, "p_holm")] < ALPHA)


def _p_text(row: dict, measure: str) -> str:
    """'t-test p=0.0012 (Holm 0.0048, 8 tests)', or the exact test's; with the other test's p when it would
    decide otherwise."""
    p, holm, tests = row[col(measure, "p")], row[col(measure, "p_holm")], row[col(measure, "tests")]
    if np.isnan(p):
        return ""
    t, exact = row[col(measure, "p_t")], row[col(measure, "p_exact")]
    used = "t-test" if row["test"] == "t" and not np.isnan(t) else "exact"
    text = f"{used} p{p_is(p)} (Holm {format_p(holm)}, {tests} tests)"
    other = row.get(f"_other_{measure}", np.nan)
    if not np.isnan(other) and (other < ALPHA) != (holm < ALPHA):
        if used == "t-test":
            text += f", exact p{p_is(exact)} (Holm {format_p(other)}): the decision rests on normality"
        else:
            text += f", t-test p{p_is(t)} (Holm {format_p(other)}) would decide otherwise, assuming normality"
    return text


def _metric_claim(row: dict, measure: str) -> str:
    metric = METRICS[measure]
    delta, low, high = row[col(measure, "delta")], row[col(measure, "ci_low")], row[col(measure, "ci_high")]
    unit = f" {metric.unit}" if metric.unit else ""
    name = metric.label.removesuffix(" %")
    if _decided(row, measure):
        word = "better" if (delta > 0) == metric.higher else "worse"
    else:
        word = "no difference shown in"
    text = f"{word} {name} {delta:+.2f}{unit}"
    if not np.isnan(low):
        text += f" [{low:+.2f}, {high:+.2f}]"
    pairs = row["pairs"]
    text += f", {row[col(measure, 'wins')]}/{pairs} seeds better"
    text += ", ".join(["", *filter(None, [_p_text(row, measure), row[col(measure, "note")]])])
    detectable = row[col(measure, "detectable")]
    if not _decided(row, measure) and np.isinf(detectable):
        text += f"; the exact test cannot decide with {pairs} pairs (its smallest p is {format_p(2 / 2 ** pairs)})"
    elif not _decided(row, measure) and not np.isnan(detectable):
        text += f"; these seeds could detect ≥ {detectable:.2f}{unit}"
    needed = row.get(col(measure, "needed"))
    if needed is not None and needed == needed:
        text += f"; the --effect difference would need ~{int(needed)} seeds"
    return text


def _speed_claim(row: dict, measure: str, baseline: str) -> str:
    target = f"{baseline}'s {SPEEDS[measure].label}"
    pairs, speedup, high = row[col(measure, "pairs")], row[col(measure, "speedup")], row[col(measure, "speedup_high")]
    if not pairs or np.isnan(speedup):
        return f"steps to {target}: n/a ({row[col(measure, 'note')] or 'no pairs'})"
    if row[col(measure, "estimator")] == "geometric mean":
        value = f"{speedup:.2f}×" if np.isclose(speedup, high) else f"{speedup:.2f}–{high:.2f}×"
    elif np.isinf(high):
        value = f"median ≥ {speedup:.2f}×"
    elif speedup == 0:
        value = f"median ≤ {high:.2f}×"
    else:
        value = f"median {speedup:.2f}×" if np.isclose(speedup, high) else f"median {speedup:.2f}–{high:.2f}×"
    low_ci, high_ci = row[col(measure, "ci_low")], row[col(measure, "ci_high")]
    if not np.isnan(low_ci):
        value += f" [{low_ci:.2f}, {high_ci:.2f}]"
    if _decided(row, measure):
        word = "faster" if speedup > 1 else "slower"
    else:
        word = "no difference shown"
    text = f"{word} to {target}: {value}"
    details = [_p_text(row, measure)]
    censored = row[col(measure, "censored")]
    if censored:
        details.append(f"{censored}/{pairs} seeds not reached within their own run")
    if row[col(measure, "unit")] == "examples":
        details.append("counted in examples seen: the batch sizes differ")
    return text + "".join(f", {d}" for d in details if d)


def _divergence(row: dict, base: dict, baseline: str) -> str:
    if not (row["diverged_seeds"] or base["diverged_seeds"]):
        return ""
    counts = (f"{row['variant']} diverged on {row['diverged_seeds']}/{row['trials']} seeds, {baseline} on "
              f"{base['diverged_seeds']}/{base['trials']}")
    p = row[col("diverged", "p")]
    if np.isnan(p):
        return counts
    if _decided(row, "diverged"):
        more = row["diverged_seeds"] / max(row["trials"], 1) > base["diverged_seeds"] / max(base["trials"], 1)
        counts = f"diverges {'more' if more else 'less'} often: {counts}"
    return f"{counts} (exact p{p_is(p)}, Holm {format_p(row[col('diverged', 'p_holm')])})"
