"""Statistics on plain arrays: paired differences over seeds, a sign-flip test that assumes only symmetric
differences, Holm's adjustment, power, and speed ratios known only as intervals.

No figures and no tables here: `bnbench compare` turns runs into arrays, these functions turn arrays into
numbers, and the caller words them. Everything is written with numpy, math and scipy.special (Student's and the
noncentral t distribution), never scipy.stats: its import alone costs about a second, and `bnbench compare` must
stay fast and torch-free. Every number says what it can claim: an interval needs pairs and spread, a test that
could not be made is NaN (and still counts in the family Holm adjusts for), and a p-value is printed so that it
never contradicts the decision taken on it.
"""

import math
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy.special import nctdtr, nctdtrinc, stdtr, stdtrit

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
ENOUGH_PAIRS = 3  # below this the interval is flagged as unreliable
FEWEST = 8  # fewer pairs cannot show the skew or clusters that break the tests (docs/statistics.md)
SPREAD_TOLERANCE = 1e-6  # relative: a spread below this fraction of the differences is rounding, not spread

EXACT_FLIPS = 16  # sign_flip_p enumerates all 2^n sign vectors up to this n, then samples 2^16 of them
TIE_TOLERANCE = 1e-9  # relative: sums this close count as ties


# ---- paired differences ------------------------------------------------------------------------------------------


def zero_spread(d: np.ndarray) -> bool:
    """Whether the paired differences d [n], n >= 2, are constant up to rounding (False for n < 2).

    True when std(d, ddof=1) <= SPREAD_TOLERANCE * max|d|. Values read back from 9-significant-digit CSV text are
    off by up to 5e-10 of their size, so a constant difference comes back with a relative spread near 1e-9 and
    counts as constant; a real spread, down to one test image in 10,000 (0.01 points on a difference of up to 100
    points) or a loss differing in its 4th digit, is about 1e-4 of the differences and does not.
    """
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return False
    return bool(np.std(d, ddof=1) <= SPREAD_TOLERANCE * max(float(np.abs(d).max()), 1e-12))


def note(pairs: int, constant: bool) -> str:
    """Why an interval is missing or not to be trusted ('' when it is fine); `constant`: zero_spread of the pairs."""
    if pairs == 0:
        return "no pairs"
    if pairs == 1:
        return "1 pair: no interval"
    if constant:
        return "constant difference: no t-interval"
    if pairs < ENOUGH_PAIRS:
        return f"{pairs} pairs: interval unreliable"
    return ""


def paired_t(d: np.ndarray) -> dict:
    """Mean of the paired differences d [n], its CONFIDENCE interval and the two-sided p-values against 0 of the
    t-test (scipy.stats.ttest_1samp's, written with scipy.special) and of the skewness-corrected t-test.

    The decision's p is the larger of the two, and its interval the hull of the two intervals (`mean_tests`): a
    difference is claimed only where both agree, which holds the error rate on the skewed differences real seeds
    give. Keys: mean, ci_low, ci_high, p (the decision's), p_t, p_skew, t_low, t_high (the t-interval alone),
    skew, sd (sample std), note. The intervals and p-values are NaN when n < 2 or the differences are constant
    (zero_spread; sd is then 0.0); sd is NaN when n < 2, and the mean when n == 0.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    constant = zero_spread(d)
    out = dict.fromkeys(("ci_low", "ci_high", "p", "p_t", "p_skew", "t_low", "t_high", "skew", "sd"), np.nan)
    out.update(mean=float(d.mean()) if n else np.nan, note=note(n, constant))
    if n < 2:
        return out
    if constant:
        out["sd"] = 0.0
        return out
    return out | {k: float(v[0]) for k, v in mean_tests(d[None, :]).items()}


def mean_tests(d: np.ndarray, crit: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """The t-test and the skewness-corrected t-test of mean 0 on each row of d [k, n] (n >= 2, no NaN; a row
    without spread gets NaN p-values), at the two-sided CONFIDENCE level, or at the t-scale boundaries `crit` [k]
    when given.

    Returns arrays [k]: mean, sd, skew; t_low, t_high, p_t: Student's; s_low, s_high, p_skew: Hall's (1992)
    transformation of the studentized mean, whose t reference is right to second order when the differences are
    skewed (`skew_corrected`); ci_low, ci_high: the hull of the two intervals, and p: the larger p, the decision's.
    The hull excludes 0 exactly when both intervals do, i.e. when p < 1 - CONFIDENCE.
    """
    n = d.shape[1]
    mean, sd = d.mean(axis=1), d.std(axis=1, ddof=1)
    skew = skewness(d, mean, sd)
    if crit is None:
        crit = np.full(len(d), stdtrit(n - 1, 1 - (1 - CONFIDENCE) / 2))
    se = sd / math.sqrt(n)
    t_low, t_high = mean - crit * se, mean + crit * se
    s_low, s_high = skew_corrected(mean, sd, skew, n, crit)
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant row: NaN, its caller's to route
        p_t = 2 * stdtr(n - 1, -np.abs(mean / se))
        p_skew = 2 * stdtr(n - 1, -np.abs(hall_statistic(mean / sd, skew, n)))
    return {
        "mean": mean,
        "sd": sd,
        "skew": skew,
        "t_low": t_low,
        "t_high": t_high,
        "p_t": p_t,
        "p_skew": p_skew,
        "ci_low": np.minimum(t_low, s_low),
        "ci_high": np.maximum(t_high, s_high),
        "p": np.maximum(p_t, p_skew),
    }


# ---- skewed differences ------------------------------------------------------------------------------------------


def skewness(d: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """The sample skewness of each row of d [k, n] (NaN entries left out): mean((d - mean)^3) / sd^3, with sd the
    ddof=1 std of the row (Hall 1992's gamma-hat); 0 where sd is 0 or not finite."""
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.nansum((d - mean[:, None]) ** 3, axis=1) / (~np.isnan(d)).sum(axis=1) / sd**3
    return np.where(np.isfinite(g), g, 0.0)


def hall_statistic(w: np.ndarray, skew: np.ndarray, n) -> np.ndarray:
    """Hall's transformed studentized mean sqrt(n) g(w), w = (mean - mu) / sd:
    g(w) = w + skew w^2 / 3 + skew^2 w^3 / 27 + skew / (6 n), increasing in w, which removes the skewness term of
    the studentized mean's Edgeworth expansion (P. Hall, "On the removal of skewness by transformation", JRSS B
    54, 1992; the one-sample form of Zhou & Dinh, Biostatistics 6, 2005)."""
    return np.sqrt(n) * (w + skew * w**2 / 3 + skew**2 * w**3 / 27 + skew / (6 * n))


def skew_corrected(mean, sd, skew, n, crit) -> tuple[np.ndarray, np.ndarray]:
    """The interval {mu : |hall_statistic((mean - mu) / sd)| < crit}: g inverted in closed form, since
    g(w) = ((1 + skew w / 3)^3 - 1) / skew + skew / (6 n). Arrays broadcast; n may be an array."""
    n = np.asarray(n, dtype=float)

    def w_at(y):  # g^-1(y / sqrt(n))
        z = y / np.sqrt(n) - skew / (6 * n)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = 3 / skew * (np.cbrt(1 + skew * z) - 1)
        return np.where(np.abs(skew) > 1e-9, w, z)

    return mean - sd * w_at(crit), mean - sd * w_at(-crit)


# ---- tests without distributional assumptions --------------------------------------------------------------------


@lru_cache(maxsize=EXACT_FLIPS + 1)
def _all_signs(n: int) -> np.ndarray:
    """All 2^n sign vectors: shape [2^n, n] of +-1.0 (read-only; cached per n)."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    signs = 1.0 - 2.0 * bits
    signs.flags.writeable = False
    return signs


def sign_flip_p(d: np.ndarray) -> float:
    """Two-sided permutation p-value of the mean of paired differences d [n] under "no difference" (each pair's
    sign is a fair coin): the fraction of sign assignments whose |sum| is at least the observed |sum|.

    Exact for n <= 16 (all 2^n assignments; the smallest possible p is 2 / 2^n, e.g. 0.0625 for n = 5). For
    n > 16 it is Monte Carlo: 2^16 random sign vectors from np.random.default_rng(0) plus the observed one,
    p = (1 + count) / (1 + 2^16). Sums within TIE_TOLERANCE * sum|d| of the observed one count as ties, so that
    rounding does not break them. NaN for n == 0; 1.0 when every difference is 0.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return np.nan
    observed = abs(float(d.sum()))
    threshold = observed - TIE_TOLERANCE * float(np.abs(d).sum())
    if n <= EXACT_FLIPS:
        sums = np.abs(_all_signs(n) @ d)
        return float(np.count_nonzero(sums >= threshold) / len(sums))
    rng = np.random.default_rng(0)
    draws, count = 2**16, 0
    for start in range(0, draws, 4096):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(4096, draws - start), n))
        count += int(np.count_nonzero(np.abs(signs @ d) >= threshold))
    return (1 + count) / (1 + draws)


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test (binomial, p = 0.5) of `wins` against `losses`, ties dropped by the caller:
    min(1, 2 P(X <= min(wins, losses))), X ~ Bin(wins + losses, 0.5); 1.0 when there is neither. On counts of
    discordant pairs (e.g. seeds where only one variant diverged) it is McNemar's exact test."""
    total = wins + losses
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, i) for i in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2**total)


def holm(p: np.ndarray, family: int | None = None) -> np.ndarray:
    """Holm's step-down adjustment of the p-values p [k]; returns [k].

    NaN entries are tests of the design that could not be made: they count in the family as p = 1 and stay NaN.
    `family` (default k, at least k) is the number of tests the design makes; members beyond k count as p = 1.
    With m = family and p ascending, the i-th smallest becomes max over j <= i of min(1, (m - j + 1) p_(j)): the
    chance of any false "difference" among the m stays below the level, whatever their dependence.
    """
    p = np.asarray(p, dtype=float)
    m = len(p) if family is None else family
    if m < len(p):
        raise ValueError(f"family {m} is smaller than the {len(p)} p-values given")
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(len(order))) * p[order])
    adjusted = np.full(len(p), np.nan)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


# ---- power -------------------------------------------------------------------------------------------------------


def _power(n, nc, alpha: float):
    """Power of the two-sided one-sample t-test on n pairs at level alpha when the noncentrality is nc
    (= true mean * sqrt(n) / sd); n and nc broadcast."""
    df = np.asarray(n, dtype=float) - 1
    t_crit = stdtrit(df, 1 - alpha / 2)
    tails = np.nan_to_num([nctdtr(df, nc, t_crit), nctdtr(df, nc, -t_crit)])  # NaN: far tails, below 1e-15
    return 1 - tails[0] + tails[1]


def detectable(n: int, sd: float, alpha: float, power: float = POWER) -> float:
    """The smallest true mean difference |delta| that a two-sided paired t-test on n pairs with standard deviation
    sd at level alpha detects with probability `power` (noncentral t, nc = delta sqrt(n) / sd, found with scipy's
    inverse of its distribution function). NaN when n < 2 or sd is NaN; 0.0 when sd == 0 or power <= alpha."""
    if n < 2 or np.isnan(sd):
        return np.nan
    if sd == 0 or power <= alpha:
        return 0.0
    df, t_crit = n - 1.0, float(stdtrit(n - 1.0, 1 - alpha / 2))
    nc = 0.0
    for _ in range(20):  # power = 1 - F(t_crit; nc) + F(-t_crit; nc): solve for nc, the small lower tail held fixed
        lower = float(np.nan_to_num(nctdtr(df, nc, -t_crit)))
        nc, previous = float(nctdtrinc(df, 1 - power + lower, t_crit)), nc
        if not math.isfinite(nc):
            return _searched(n, alpha, power) * sd / math.sqrt(n)
        if abs(nc - previous) <= 1e-12 * max(nc, 1.0):
            break
    return nc * sd / math.sqrt(n)


def _searched(n: int, alpha: float, power: float) -> float:
    """The noncentrality reaching `power` by a bracketing search (where scipy's inverse gives no number)."""
    low, high = 0.0, 1.0
    while _power(n, high, alpha) < power:
        low, high = high, 2 * high
    for _ in range(7):  # a 64-way search, each round one vectorised call: the bracket shrinks 64^7-fold
        grid = np.linspace(low, high, 65)
        first = int(np.argmax(_power(n, grid, alpha) >= power))  # grid[-1] == high always reaches it
        low, high = grid[max(first - 1, 0)], grid[first]
    return float(high)


def exact_pairs(alpha: float) -> int:
    """The fewest pairs with which the exact sign-flip test can decide at level alpha: its smallest p, 2 / 2^n
    (every sign agreeing), must be below alpha; 10 at 0.05 / 24."""
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def seeds_needed(
    effect: float, sd: float, alpha: float, power: float = POWER, cap: int = 10_000, exact: bool = False
) -> int | None:
    """The smallest number of pairs n >= 2 with which a two-sided paired t-test at level alpha detects a true mean
    difference |effect| with probability `power`, when the differences have standard deviation sd. None when it
    exceeds `cap`, sd or effect is NaN, or effect is 0. Where the `exact` sign-flip test decides, and always when
    sd == 0 (a constant difference has no t-test: compare decides it exactly), never fewer than exact_pairs(alpha):
    below that the exact test cannot decide at all, whatever the power (a t-test's 2 would read as a promise)."""
    if np.isnan(sd) or np.isnan(effect) or effect == 0:
        return None
    if sd == 0:
        return exact_pairs(alpha)
    if exact:
        found = seeds_needed(effect, sd, alpha, power, cap)
        return None if found is None else max(found, exact_pairs(alpha))
    ratio = abs(effect) / sd
    high = 2
    while _power(high, ratio * math.sqrt(high), alpha) < power:  # power grows with n: find an upper bound ...
        if high >= cap:
            return None
        high = min(2 * high, cap)
    n = np.arange(2, high + 1)  # ... then the first n that reaches it
    return int(n[np.argmax(_power(n, ratio * np.sqrt(n), alpha) >= power)])


# ---- reporting ---------------------------------------------------------------------------------------------------


def format_p(p: float, alpha: float = ALPHA) -> str:
    """A p-value as short text: "-" for NaN, "<0.0001" below 1e-4 (when alpha >= 1e-4), else 2 significant digits.

    The text never contradicts the decision p < alpha: if the rounded text, read back, falls on the other side of
    alpha (a p below alpha printed as alpha or more, or the reverse), digits are added until it agrees:
    0.0498 -> "0.0498" at alpha 0.05, while 0.05 -> "0.05" and 0.0501 -> "0.05" (neither is below 0.05).
    """
    if np.isnan(p):
        return "-"
    if p < 1e-4 <= alpha:
        return "<0.0001"
    for digits in range(2, 18):
        text = f"{p:.{digits}g}"
        if (float(text) < alpha) == (p < alpha):
            return text
    return repr(float(p))


def format_size(x: float, digits: int) -> str:
    """A positive size (a detectable effect) at `digits` decimals, or at 2 significant digits where those would
    round it to 0: "could detect ≥ 0.00" would read as "any difference at all"."""
    return f"{x:.{digits}f}" if round(x, digits) > 0 else f"{x:.2g}"


# ---- censored speed ratios ---------------------------------------------------------------------------------------


def p_is(p: float, alpha: float = ALPHA) -> str:
    """'=0.031' or '<0.0001': format_p after "p", so that "p<0.0001" never reads "p=<0.0001"."""
    text = format_p(p, alpha)
    return text if text.startswith("<") else f"={text}"


def _order_statistic_rank(n: int) -> int:
    """The largest k >= 1 such that [k-th smallest, k-th largest] of n draws covers their median with probability
    at least CONFIDENCE, i.e. 2 P(Bin(n, 0.5) <= k - 1) <= 1 - CONFIDENCE; 0 when there is none (n < 6)."""
    k, tail = 0, 0
    while k < n and 2 * (tail + math.comb(n, k)) / 2**n <= 1 - CONFIDENCE + 1e-12:
        tail += math.comb(n, k)
        k += 1
    return k


def censored_summary(lo: np.ndarray, hi: np.ndarray) -> dict:
    """Median of per-seed log speedups that are known only as intervals: seed i's lies in [lo[i], hi[i]].

    lo, hi [n], lo <= hi, +-inf allowed: a seed whose variant never reached the target has lo = -inf (a bound on
    the other side, were there one, would be hi = +inf); lo == hi is an exact value. Keys, all in log space:
    estimate_low, estimate_high: median(lo) and median(hi), between which the sample median lies (equal when
      censoring does not touch the middle);
    ci_low, ci_high: a distribution-free >= CONFIDENCE interval for the median, [k-th smallest lo, k-th largest
      hi] with k from the binomial order-statistic rule; NaN when n < 6;
    p, wins, losses, undetermined: the exact sign test of wins (lo > 0) against losses (hi < 0), seeds whose
      interval contains 0 being undetermined and dropped (p NaN when n == 0);
    note: why an interval is missing ('' when it is there).
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if lo.shape != hi.shape or not np.all(lo <= hi):
        raise ValueError("censored_summary needs lo <= hi, of the same shape, without NaN")
    n = len(lo)
    wins, losses = int(np.count_nonzero(lo > 0)), int(np.count_nonzero(hi < 0))
    out = {
        "estimate_low": np.nan,
        "estimate_high": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p": np.nan,
        "wins": wins,
        "losses": losses,
        "undetermined": n - wins - losses,
        "note": "no pairs",
    }
    if n == 0:
        return out
    out.update(
        estimate_low=float(np.median(lo)), estimate_high=float(np.median(hi)), p=sign_test_p(wins, losses), note=""
    )
    k = _order_statistic_rank(n)
    if k == 0:
        out["note"] = "fewer than 6 pairs: no distribution-free interval"
        return out
    out.update(ci_low=float(np.sort(lo)[k - 1]), ci_high=float(np.sort(hi)[n - k]))
    return out
