"""The verdict: one line a person can quote per variant (x sweep point), the conclusion first ("better test acc
+5.75 pts [+4.79, +6.70], 5/5 seeds"), each claim with its interval and Holm-adjusted p, then the qualifiers:
which test decided and the family it was adjusted in, the assumption a decision rests on where the other test
would decide otherwise, what the seeds could have detected where no difference is shown, divergence (named for
the baseline too), and too few seeds.

A claim says "better", "worse", "sooner", "later" or "diverges more/less often" only where the Holm-adjusted p
of the verdict family is below ALPHA; p-values are printed so that the digits shown agree with that decision.
"""

from collections import Counter

import numpy as np

from bnbench.analysis import outcomes
from bnbench.analysis.columns import METRICS, PRIMARY, SPEEDS, col
from bnbench.analysis.inference import ALPHA, FEWEST, format_p, format_size, p_is


def verdict(row: dict, base: dict, baseline: str, points: list[str]) -> str:
    """The line for `row` against the baseline's row `base` of the same sweep point."""
    where = "".join(f" @ {path}={row[path]}" for path in points)
    head = f"{row['variant']}{where} vs {baseline}:"
    diverged = _divergence(row, base, baseline)
    n = _compared(row)
    if not n:
        return f"{head} nothing to compare: no seed where neither diverged" + (f" ({diverged})" if diverged else "")
    if outcomes.by_rank(row, PRIMARY):
        metric = METRICS[PRIMARY]
        primary = [outcomes.ranked_claim(row, PRIMARY, _name(PRIMARY)), outcomes.survivors(row, PRIMARY, metric.unit)]
    else:
        primary = [_metric_claim(row, PRIMARY)]
    flat = row.get("learned_nothing") and base.get("learned_nothing")  # speeds on flat curves compare noise
    speeds = [] if flat else list(SPEEDS)
    said = [_speed_claim(row, m, baseline) for m in speeds] or ["no variant learned (both at chance accuracy)"]
    claims = [*primary, *said, diverged, _tests(row, speeds)]
    if n < FEWEST:
        claims.append(
            f"only {n} pair{'s' * (n != 1)}: too few to check that the differences are near-symmetric, as the "
            f"tests assume; run ≥ {FEWEST} seeds"
        )
    return f"{head} " + "; ".join(c for c in claims if c)


def _compared(row: dict) -> int:
    """The pairs the primary decision counts: every pair where both ended under the rank rule, else the pairs
    where neither diverged."""
    return row[col(PRIMARY, "ranked")] if outcomes.by_rank(row, PRIMARY) else row["pairs"]


def outcome(row: dict) -> str:
    """A compared row's conclusion on the primary measure, as its verdict line draws it: better, worse, no
    difference shown, or nothing to compare (no pair of seeds where neither diverged)."""
    if not _compared(row):
        return "nothing to compare"
    if not _decided(row, PRIMARY):
        return "no difference shown"
    if outcomes.by_rank(row, PRIMARY):
        return "better" if outcomes.decided_better(row, PRIMARY) else "worse"
    return "better" if (row[col(PRIMARY, "delta")] > 0) == METRICS[PRIMARY].higher else "worse"


def headline(outcomes: list[tuple[str, str]]) -> str:
    """A run's answer in a few words, from each comparison's (variant, outcome): 'batchnorm better', 'no
    difference shown', 'undecided'; with several comparisons (variants, sweep points) counted, in the order met:
    '2 better, 1 no difference shown'. `list` and `compare`'s line per older run both say this."""
    if len(outcomes) == 1:
        variant, word = outcomes[0]
        return f"{variant} {word}" if word in ("better", "worse", "equivalent") else word
    return ", ".join(f"{n} {word}" for word, n in Counter(word for _, word in outcomes).items())


def _decided(row: dict, measure: str) -> bool:
    return bool(row[col(measure, "p_holm")] < ALPHA)


def _holm(row: dict, measure: str) -> str:
    return f"(Holm p{p_is(row[col(measure, 'p_holm')])})" if not np.isnan(row[col(measure, "p_holm")]) else ""


def _interval(low: float, high: float, signed: bool) -> str:
    if np.isnan(low):
        return ""
    return f" [{low:+.2f}, {high:+.2f}]" if signed else f" [{low:.2f}, {high:.2f}]"


def _ci(row: dict, measure: str, interval: str) -> str:
    """A claim's interval: ' [+2.12, +7.26]', or ', unadjusted 95% CI [+2.12, +7.26]' beside a decision Holm-adjusted
    over several tests (the interval is its measure's alone, so it can exclude 0 beside "no difference shown");
    '' for none."""
    if not interval.strip():
        return ""
    if row.get(col(measure, "ci_unadjusted")) is True:
        return f", unadjusted {row[col(measure, 'ci_level')]:.0%} CI {interval.strip()}"
    return f" {interval.strip()}"


def difference(row: dict, measure: str) -> str:
    """'+3.11 pts, unadjusted 95% CI [-0.30, +6.34]': a measure's mean paired difference and its interval, as the
    verdict words them (`bnbench tune`'s answer lines too)."""
    unit = f" {METRICS[measure].unit}" if METRICS[measure].unit else ""
    interval = _ci(row, measure, _interval(row[col(measure, "ci_low")], row[col(measure, "ci_high")], True))
    return f"{row[col(measure, 'delta')]:+.2f}{unit}{interval}"


def _metric_claim(row: dict, measure: str) -> str:
    metric = METRICS[measure]
    delta = row[col(measure, "delta")]
    unit = f" {metric.unit}" if metric.unit else ""
    name = _name(measure)
    number = f"{difference(row, measure)}, {row[col(measure, 'wins')]}/{row['pairs']} seeds"
    if _decided(row, measure):
        word = "better" if (delta > 0) == metric.higher else "worse"
        return f"{word} {name} {number} {_holm(row, measure)}"
    text = f"no difference shown in {name}: {number} better {_holm(row, measure)}".rstrip()
    detectable = row[col(measure, "detectable")]
    if np.isinf(detectable):
        tests = row[col(measure, "tests")]
        level = f"{ALPHA / tests:.3g} = {ALPHA:g} / {tests} Holm tests" if tests > 1 else f"{ALPHA:g}"
        text += (
            f"; the exact test cannot decide with {row['pairs']} pairs (its smallest p, "
            f"{format_p(2 / 2 ** row['pairs'], ALPHA / tests)}, is above the level it is held to, {level})"
        )
    elif detectable > metric.scale:
        text += f"; these seeds cannot detect any difference within the 0–{metric.scale:g}{unit} scale"
    elif not np.isnan(detectable):
        text += f"; these seeds could detect ≥ {format_size(detectable, 2)}{unit}"
    needed = row.get(col(measure, "needed"))
    if needed is not None and needed == needed:
        text += f"; the --effect difference would need ~{int(needed)} seeds"
    return text


def _name(measure: str) -> str:
    """'test acc': a metric's label as a claim names it."""
    return METRICS[measure].label.removeprefix("final ").removesuffix(" %")


def _speed_claim(row: dict, measure: str, baseline: str) -> str:
    target = f"{baseline}'s {SPEEDS[measure].label}"
    pairs, speedup, high = row[col(measure, "pairs")], row[col(measure, "speedup")], row[col(measure, "speedup_high")]
    if not pairs or np.isnan(speedup):
        return f"speed to {target}: n/a ({row[col(measure, 'note')] or 'no pairs'})"
    value = speed_value(speedup, high, row[col(measure, "estimator")])
    if value == UNMEASURABLE and not _decided(row, measure):
        return f"speed to {target}: {UNMEASURABLE} (its measured points are too far apart to bound it)"
    interval = _ci(row, measure, speed_interval(row, measure))
    if _decided(row, measure) and row[col(measure, "estimator")] == "median":
        text = f"reaches {target} {_by_sign_test(row, measure)}: {value}{interval}"
    elif _decided(row, measure):
        text = f"reaches {target} {value} {'sooner' if speedup > 1 else 'later'}{interval}"
    else:
        text = f"no difference shown in speed to {target}: {value}{interval}"
    text += f" {_holm(row, measure)}".rstrip()
    censored, missed = row[col(measure, "censored")], row[col(measure, "baseline_censored")]
    if censored:
        text += f", {censored}/{pairs} seeds did not reach it within their run"
    if missed:
        text += f", {missed}/{pairs} of {baseline}'s seeds did not reach it within their run"
    if row[col(measure, "unit")] == "examples":
        text += ", counted in examples seen (the batch sizes differ)"
    return text


def _by_sign_test(row: dict, measure: str) -> str:
    """What the sign test decided where some trial never reached the target: the seeds sooner against those later,
    'sooner on 8 seeds, later on 0, 9 undetermined'. Its direction is the claim's: the median can stay known only
    between two values on either side of 1 (0.50–2.01×) while the seeds that are determined all agree."""
    sooner, later, undetermined = row[f"_{measure}_counts"]
    more, fewer = ((sooner, "sooner"), (later, "later"))[:: 1 if sooner > later else -1]
    return f"{more[1]} on {more[0]} seeds, {fewer[1]} on {fewer[0]}, {undetermined} undetermined (sign test)"


MEASURABLE = 10.0  # a speedup known only within a wider factor than this says nothing about its size
UNMEASURABLE = "not measurable"


def speed_value(low: float, high: float, estimator: str) -> str:
    """'1.69×' (geometric mean), '4.41–5.87×' (known between two values), 'median ≤0.44×'; the baseline's time to
    its target over the variant's, so below 1 is slower. A range the evaluation grid leaves wider than MEASURABLE
    (a crossing at a curve's first evaluation is known only as "by then") is written by its end that means
    something, '≥1.45×' when all of it is sooner, '≤0.30×' when all of it is later, and else 'not measurable':
    '0.00–500.00×' would only be the grid's spacing."""
    prefix = "median " if estimator == "median" else ""
    if low == 0:
        return f"{prefix}≤{high:.2f}×"
    if np.isinf(high):
        return f"{prefix}≥{low:.2f}×"
    if _too_wide(low, high, MEASURABLE):
        return f"{prefix}≥{low:.2f}×" if low >= 1 else f"{prefix}≤{high:.2f}×" if high <= 1 else UNMEASURABLE
    return f"{prefix}{low:.2f}×" if np.isclose(low, high) else f"{prefix}{low:.2f}–{high:.2f}×"


def speed_interval(row: dict, measure: str) -> str:
    """The speedup's 95% interval, '[1.36, 1.98]', or '' where it says nothing: the speedup itself is not known
    within MEASURABLE, or the interval spans more than MEASURABLE² ('[0.66, 14159.78]': an end set by the grid)."""
    low, high = row[col(measure, "ci_low")], row[col(measure, "ci_high")]
    speedup, speedup_high = row[col(measure, "speedup")], row[col(measure, "speedup_high")]
    if np.isnan(low) or _too_wide(speedup, speedup_high, MEASURABLE) or _too_wide(low, high, MEASURABLE**2):
        return ""
    return _interval(low, high, False).strip()


def _too_wide(low: float, high: float, factor: float) -> bool:
    """Both ends bounded, and further apart than `factor` (a one-sided bound, 0 or inf, is the censoring's)."""
    return bool(0 < low and np.isfinite(high) and high / low > factor)


def _tests(row: dict, speeds: list[str]) -> str:
    """Which test decided, its family, and the claims (of the primary measure and the `speeds` said) whose
    decision the other test would not share."""
    ranked = outcomes.by_rank(row, PRIMARY)  # its claim names its test
    measures = [m for m in (PRIMARY, *speeds) if not np.isnan(row[col(m, "p")]) and not (m == PRIMARY and ranked)]
    if not measures:
        return ""
    exact = [m for m in measures if row["test"] == "exact" or np.isnan(row[col(m, "p_t")])]
    used = "exact tests" if len(exact) == len(measures) else "t-tests with skew correction"
    text = f"{used}, Holm over {row[col(PRIMARY, 'tests')]} tests"
    if exact and len(exact) < len(measures):
        text += f" (exact for {', '.join(_short(m) for m in exact)}: no t-test there)"
    other = [
        m
        for m in measures
        if not np.isnan(row.get(f"_other_{m}", np.nan)) and (row[f"_other_{m}"] < ALPHA) != _decided(row, m)
    ]
    if not other:
        return text
    names = ", ".join(_short(m) for m in other)
    if row["test"] == "t":
        exact = sorted({format_p(row[col(m, "p_exact")]) for m in other})
        return f"{text}; the exact test would not decide {names} (p={'/'.join(exact)}): rests on normality"
    return f"{text}; t-tests would decide {names} otherwise, assuming normality"


def _short(measure: str) -> str:
    return "test acc" if measure == PRIMARY else f"speed to {SPEEDS[measure].label}"


def _divergence(row: dict, base: dict, baseline: str) -> str:
    if not (row["diverged_seeds"] or base["diverged_seeds"]):
        return ""
    counts = (
        f"{row['variant']} diverged on {row['diverged_seeds']}/{row['trials']} seeds, {baseline} on "
        f"{base['diverged_seeds']}/{base['trials']}"
    )
    p = row[col("diverged", "p")]
    if np.isnan(p):
        return counts
    if _decided(row, "diverged"):
        more = row["diverged_seeds"] / max(row["trials"], 1) > base["diverged_seeds"] / max(base["trials"], 1)
        counts = f"diverges {'more' if more else 'less'} often: {counts}"
    return f"{counts} (exact p{p_is(p)}, Holm p{p_is(row[col('diverged', 'p_holm')])})"


def added_seeds(grown: tuple[int, ...], pooled: int) -> str:
    """The caveat of a comparison on seeds added after a run was made, maybe after a look at its results ('grown
    from 5 to 7 seeds: ...'): its tests are fixed-n ones, whose p-values do not allow for the looks (optional
    stopping; --until-decided plans them). '' for one run made whole."""
    if pooled > 1:
        how = f"seeds pooled from {pooled} runs"
    elif grown:
        how = f"grown from {' to '.join(map(str, grown))} seeds"
    else:
        return ""
    return f"{how}: if seeds were added after a look, these fixed-n p-values overstate the evidence (optional stopping)"
