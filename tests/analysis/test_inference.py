"""bnbench.analysis.inference against independent computations: scipy.stats, brute-force enumeration, a plain
Holm, the noncentral t from scipy.stats."""

import itertools
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from bnbench.analysis import inference as inf

# ---- zero spread and notes ---------------------------------------------------------------------------------------


def test_zero_spread_csv_rounding_is_constant():
    base = 100 * (0.902777778 - 0.861111111)
    noise = np.array([0, 1, -1, 1, 0, -1]) * 100e-9  # last-digit noise of 9-significant-digit CSV values
    assert inf.zero_spread(np.full(6, base) + noise)
    assert inf.zero_spread(np.zeros(4))
    assert inf.zero_spread(np.full(3, -2.5))


@pytest.mark.parametrize(
    "d",
    [
        [80.0, 80.01, 80.0, 80.0, 80.0, 80.0],  # one test image in 10,000 on one seed
        [0.01, 0.0, 0.0, 0.0],  # the same, on a difference that is otherwise zero
        [0.5, 0.5001, 0.5, 0.5],  # a loss difference in its 4th digit
        [2.3026, 2.3027, 2.3026],
    ],
)
def test_zero_spread_real_spread_is_not(d):
    assert not inf.zero_spread(np.array(d))


def test_zero_spread_needs_two():
    assert not inf.zero_spread(np.array([1.0]))


def test_note():
    assert inf.note(0, False) == "no pairs"
    assert inf.note(1, False) == "1 pair: no interval"
    assert inf.note(4, True) == "constant difference: no t-interval"
    assert inf.note(2, False) == "2 pairs: interval unreliable"
    assert inf.note(inf.ENOUGH_PAIRS, False) == ""


# ---- paired t ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 10, 40])
def test_paired_t_matches_scipy(n):
    d = np.random.default_rng(n).normal(0.3, 1.0, n)
    out = inf.paired_t(d)
    test = stats.ttest_1samp(d, 0.0)
    low, high = stats.t.interval(inf.CONFIDENCE, n - 1, loc=d.mean(), scale=stats.sem(d))
    assert out["mean"] == pytest.approx(d.mean(), rel=1e-12)
    assert out["p_t"] == pytest.approx(test.pvalue, rel=1e-9)
    assert (out["t_low"], out["t_high"]) == pytest.approx((low, high), rel=1e-9)
    assert out["sd"] == pytest.approx(np.std(d, ddof=1), rel=1e-12)
    assert out["note"] == ("2 pairs: interval unreliable" if n == 2 else "")
    # the decision: both tests must reject, so its interval is the hull of the two and its p the larger
    assert out["ci_low"] <= out["t_low"] and out["ci_high"] >= out["t_high"]
    assert out["p"] == max(out["p_t"], out["p_skew"])


def _hall(d: np.ndarray, mu: float) -> float:
    """Hall's (1992) statistic written out from the paper: sqrt(n) (W + g W^2/3 + g^2 W^3/27 + g/(6n)),
    W = (mean - mu) / s, g = mean((d - mean)^3) / s^3, s the ddof=1 std."""
    n, s = len(d), d.std(ddof=1)
    g = np.mean((d - d.mean()) ** 3) / s**3
    w = (d.mean() - mu) / s
    return math.sqrt(n) * (w + g * w**2 / 3 + g**2 * w**3 / 27 + g / (6 * n))


@pytest.mark.parametrize(("n", "seed"), [(5, 1), (10, 2), (20, 3), (40, 4)])
def test_skew_corrected_interval_and_p_invert_halls_statistic(n, seed):
    """The interval's ends are where Hall's statistic, written out independently, reaches the t quantile (found by
    a root search), and its p is the t tail of the statistic at 0."""
    d = np.random.default_rng(seed).gamma(1.5, 1.0, n) - 1.2
    out = inf.mean_tests(d[None, :])
    crit = stats.t.ppf(1 - (1 - inf.CONFIDENCE) / 2, n - 1)
    low, high = inf.skew_corrected(out["mean"], out["sd"], out["skew"], n, np.array([crit]))
    span = 50 * d.std(ddof=1)
    assert low[0] == pytest.approx(optimize.brentq(lambda mu: _hall(d, mu) - crit, d.mean() - span, d.mean()))
    assert high[0] == pytest.approx(optimize.brentq(lambda mu: _hall(d, mu) + crit, d.mean(), d.mean() + span))
    assert out["p_skew"][0] == pytest.approx(2 * stats.t.sf(abs(_hall(d, 0.0)), n - 1), rel=1e-9)
    assert out["skew"][0] == pytest.approx(stats.skew(d) * ((n - 1) / n) ** 1.5, rel=1e-9)


def test_a_skewed_difference_needs_both_tests():
    """Ten differences, mean -0.34, skew +0.47: the t-test alone says p = 0.039, but the negative mean sits in the
    heavy side of a right-skewed spread, which the corrected test discounts (p = 0.064): no decision."""
    d = np.array([-0.4, -1.1, -1.2, -0.7, -0.6, 0.5, -0.7, -0.2, -0.5, 0.5])
    out = inf.paired_t(d)
    assert out["p_t"] == pytest.approx(0.03935, abs=1e-5) and out["p_skew"] == pytest.approx(0.06441, abs=1e-5)
    assert out["p"] == out["p_skew"] and out["ci_high"] > 0 > out["t_high"]


def test_skew_holds_the_level_where_the_t_test_does_not():
    """chi-square(4) differences centred to mean 0 (skew 1.41), 20 pairs, 40,000 samples: Student's t-test alone
    rejects 0.068 of the time (measured), the decision of both at most alpha + 3 SE."""
    sequences = 40_000
    d = np.random.default_rng(11).chisquare(4, (sequences, 20)) - 4.0
    out = inf.mean_tests(d)
    se = math.sqrt(0.05 * 0.95 / sequences)
    assert np.mean(out["p_t"] < 0.05) > 0.05 + 6 * se
    assert np.mean(out["p"] < 0.05) <= 0.05 + 3 * se


def test_paired_t_without_interval():
    one = inf.paired_t(np.array([1.5]))
    assert one["mean"] == 1.5 and np.isnan(one["sd"]) and np.isnan(one["p_t"]) and np.isnan(one["ci_low"])
    assert one["note"] == "1 pair: no interval"
    none = inf.paired_t(np.array([]))
    assert np.isnan(none["mean"]) and none["note"] == "no pairs"
    constant = inf.paired_t(np.full(6, 4.1666667) + np.array([0, 1, -1, 0, 1, -1]) * 1e-7)
    assert constant["sd"] == 0.0 and np.isnan(constant["p_t"]) and np.isnan(constant["ci_high"])
    assert constant["mean"] == pytest.approx(4.1666667)
    assert constant["note"] == "constant difference: no t-interval"


# ---- sign flip ---------------------------------------------------------------------------------------------------


def brute_sign_flip(d):
    observed = abs(sum(d))
    sums = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product([1, -1], repeat=len(d))]
    return sum(s >= observed - 1e-9 * sum(abs(x) for x in d) for s in sums) / len(sums)


@pytest.mark.parametrize("n", range(1, 11))
def test_sign_flip_matches_enumeration(n):
    d = np.random.default_rng(100 + n).normal(0.5, 1.0, n)
    assert inf.sign_flip_p(d) == pytest.approx(brute_sign_flip(list(d)), abs=1e-15)


def test_sign_flip_constant_and_edges():
    assert inf.sign_flip_p(np.full(6, 2.0)) == 2 / 64 == brute_sign_flip([2.0] * 6)
    assert inf.sign_flip_p(np.full(6, 4.1666667) + np.array([0, 1, -1, 0, 1, -1]) * 1e-7) == 2 / 64
    assert inf.sign_flip_p(np.arange(1.0, 6.0)) == 0.0625  # the smallest p with 5 pairs
    assert inf.sign_flip_p(np.zeros(5)) == 1.0
    assert np.isnan(inf.sign_flip_p(np.array([])))
    # ties broken by rounding: in exact decimals 4 of the 16 sign vectors reach |sum| >= 7.2 (the observed signs,
    # -0.3 flipped, and their mirrors); in floats, summed in another order than the observed sum and compared
    # without tolerance, only 2 do (p = 0.125)
    d = [-0.3, 2.9, 1.8, 2.8]
    exact = [Fraction(str(x)) for x in d]
    expected = (
        sum(
            abs(sum(s * x for s, x in zip(signs, exact))) >= abs(sum(exact))
            for signs in itertools.product([1, -1], repeat=4)
        )
        / 16
    )
    assert inf.sign_flip_p(np.array(d)) == expected == 0.25


def test_sign_flip_monte_carlo_beyond_16():
    d = np.random.default_rng(7).normal(0.2, 1.0, 20)
    p = inf.sign_flip_p(d)
    assert p == inf.sign_flip_p(d)  # fixed seed: the same every time
    assert abs(p - stats.ttest_1samp(d, 0).pvalue) < 0.1  # close to the t-test on normal data
    assert inf.sign_flip_p(np.full(20, 1.0)) == 1 / (1 + 2**16)  # no random vector matches all-positive


# ---- sign test ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wins,losses", [(0, 1), (5, 0), (0, 6), (3, 3), (7, 2), (1, 9), (12, 30), (40, 41)])
def test_sign_test_matches_binomtest(wins, losses):
    expected = stats.binomtest(wins, wins + losses, 0.5).pvalue
    assert inf.sign_test_p(wins, losses) == pytest.approx(expected, rel=1e-12)


def test_sign_test_without_pairs_and_large():
    assert inf.sign_test_p(0, 0) == 1.0
    assert inf.sign_test_p(2000, 1000) == pytest.approx(stats.binomtest(2000, 3000).pvalue, rel=1e-9)


# ---- Holm --------------------------------------------------------------------------------------------------------


def plain_holm(p, m):
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_holm_matches_plain(k):
    p = np.random.default_rng(k).random(k) ** 3
    assert inf.holm(p) == pytest.approx(plain_holm(list(p), k), rel=1e-15)
    assert inf.holm(p, family=k + 3) == pytest.approx(plain_holm(list(p) + [1.0] * 3, k + 3)[:k], rel=1e-15)


def test_holm_nan_counts_as_one():
    p = np.array([0.01, np.nan, 0.04, 0.03])
    out = inf.holm(p)
    expected = plain_holm([0.01, 1.0, 0.04, 0.03], 4)
    assert np.isnan(out[1])
    assert out[[0, 2, 3]] == pytest.approx([expected[0], expected[2], expected[3]])
    assert out[0] == pytest.approx(0.04) and out[3] == pytest.approx(0.09)
    assert inf.holm(p, family=5)[0] == pytest.approx(0.05)
    assert len(inf.holm(np.array([]))) == 0
    with pytest.raises(ValueError):
        inf.holm(p, family=3)


# ---- power -------------------------------------------------------------------------------------------------------


def nct_power(n, delta, sd, alpha):
    df, nc = n - 1, delta * np.sqrt(n) / sd
    crit = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(crit, df, nc) + (1 - stats.nct.sf(-crit, df, nc))


@pytest.mark.parametrize("n,sd,alpha", [(2, 1.0, 0.05), (5, 1.07, 0.05), (10, 0.3, 0.01), (30, 2.0, 0.05 / 6)])
def test_detectable_has_the_power(n, sd, alpha):
    delta = inf.detectable(n, sd, alpha)
    assert nct_power(n, delta, sd, alpha) == pytest.approx(inf.POWER, abs=1e-6)
    assert inf.detectable(n, 2 * sd, alpha) == pytest.approx(2 * delta, rel=1e-9)  # scales with sd


def test_detectable_edges():
    assert np.isnan(inf.detectable(1, 1.0, 0.05)) and np.isnan(inf.detectable(5, np.nan, 0.05))
    assert inf.detectable(5, 0.0, 0.05) == 0.0


@pytest.mark.parametrize("effect,expected", [(1.0, 12), (0.5, 38), (-0.5, 38), (3.0, 4), (10.0, 3)])
def test_seeds_needed_is_smallest(effect, expected):
    sd, alpha = 1.07, 0.05
    n = inf.seeds_needed(effect, sd, alpha)
    assert n == expected
    assert nct_power(n, abs(effect), sd, alpha) >= inf.POWER
    assert n == 2 or nct_power(n - 1, abs(effect), sd, alpha) < inf.POWER


def test_seeds_needed_edges():
    assert inf.seeds_needed(1.0, np.nan, 0.05) is None
    assert inf.seeds_needed(0.0, 1.0, 0.05) is None
    assert inf.seeds_needed(0.001, 1.0, 0.05) is None  # about 7.8 million pairs: beyond the cap
    assert inf.seeds_needed(1.0, 0.0, 0.05) == 6  # no spread: the exact test decides, 2/2^6 < 0.05 (issue 31)
    assert inf.seeds_needed(100.0, 1.0, 0.05) == 2


# ---- format_p ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p,alpha,text",
    [
        (np.nan, 0.05, "-"),
        (0.031, 0.05, "0.031"),
        (0.03125, 0.05, "0.031"),
        (6e-41, 0.05, "<0.0001"),
        (0.0498, 0.05, "0.0498"),
        (0.05, 0.05, "0.05"),
        (0.0501, 0.05, "0.05"),
        (0.04999999, 0.05, "0.04999999"),
        (1.0, 0.05, "1"),
        (0.6249, 0.05, "0.62"),
        (0.00012, 0.05, "0.00012"),
        (0.0098, 0.01, "0.0098"),
        (0.00998, 0.01, "0.00998"),
        (0.0104, 0.01, "0.01"),
        (3e-6, 1e-5, "3e-06"),
    ],
)
def test_format_p(p, alpha, text):
    assert inf.format_p(p, alpha) == text


@pytest.mark.parametrize("seed", range(3))
def test_format_p_never_contradicts(seed):
    alpha = 0.05
    for p in alpha * (1 + np.random.default_rng(seed).normal(0, 1e-3, 200)):
        assert (float(inf.format_p(p, alpha)) < alpha) == (p < alpha)


# ---- censored summary --------------------------------------------------------------------------------------------


def direct_ci(lo, hi):
    n = len(lo)
    ks = [k for k in range(1, n + 1) if 2 * stats.binom.cdf(k - 1, n, 0.5) <= 1 - inf.CONFIDENCE + 1e-12]
    if not ks:
        return np.nan, np.nan
    k = max(ks)
    return sorted(lo)[k - 1], sorted(hi)[-k]


@pytest.mark.parametrize("n", [1, 4, 5, 6, 7, 9, 10, 17, 40])
def test_censored_summary_exact_values(n):
    x = np.random.default_rng(n).normal(0.2, 0.3, n)
    out = inf.censored_summary(x, x)
    assert out["estimate_low"] == out["estimate_high"] == pytest.approx(np.median(x))
    low, high = direct_ci(x, x)
    np.testing.assert_equal((out["ci_low"], out["ci_high"]), (low, high))
    wins, losses = int((x > 0).sum()), int((x < 0).sum())
    assert (out["wins"], out["losses"], out["undetermined"]) == (wins, losses, 0)
    assert out["p"] == pytest.approx(stats.binomtest(wins, n).pvalue)
    assert out["note"] == ("" if n >= 6 else "fewer than 6 pairs: no distribution-free interval")


def test_censored_summary_censored():
    lo = np.array([0.1, 0.3, -np.inf, 0.5, 0.2, -0.4, 0.6, 0.05])
    hi = np.array([0.1, np.inf, -0.2, 0.5, np.inf, 0.3, 0.6, 0.05])
    out = inf.censored_summary(lo, hi)
    assert out["estimate_low"] == pytest.approx(np.median(lo)) == pytest.approx(0.15)
    assert out["estimate_high"] == pytest.approx(np.median(hi)) == pytest.approx(0.4)
    assert (out["ci_low"], out["ci_high"]) == direct_ci(lo, hi) == (-np.inf, np.inf)  # k = 1 for 8 pairs
    # wins: lo > 0 (0.1, 0.3, 0.5, 0.2, 0.6, 0.05); losses: hi < 0 (the -inf one); [-0.4, 0.3] undetermined
    assert (out["wins"], out["losses"], out["undetermined"]) == (6, 1, 1)
    assert out["p"] == pytest.approx(stats.binomtest(6, 7).pvalue)

    lo = np.r_[np.linspace(0.1, 1.0, 10), [-np.inf, -np.inf]]  # 12 pairs: k = 3
    hi = np.r_[np.linspace(0.1, 1.0, 10), [-0.5, -0.5]]
    out = inf.censored_summary(lo, hi)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(direct_ci(lo, hi))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((0.1, 0.8))  # 3rd smallest lo, 3rd largest hi
    assert out["estimate_low"] == out["estimate_high"] == pytest.approx(np.median(hi))  # censoring off the middle


def test_censored_summary_edges():
    out = inf.censored_summary(np.array([]), np.array([]))
    assert np.isnan(out["estimate_low"]) and np.isnan(out["p"]) and out["note"] == "no pairs"
    out = inf.censored_summary(np.array([-1.0, -np.inf]), np.array([1.0, np.inf]))
    assert out["p"] == 1.0 and out["undetermined"] == 2
    with pytest.raises(ValueError):
        inf.censored_summary(np.array([1.0]), np.array([0.5]))


# ---- import cost -------------------------------------------------------------------------------------------------


def test_imports_stay_light():
    """The two modules alone (not the package, whose __init__ reads tables) import none of the heavy libraries."""
    folder = Path(inf.__file__).parent
    code = (
        "import importlib.util, sys\n"
        "for name in ('inference', 'curves'):\n"
        "    spec = importlib.util.spec_from_file_location(name, sys.argv[1] + '/' + name + '.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('scipy.stats', 'torch', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
