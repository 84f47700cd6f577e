"""bnbench.analysis.stopped: the estimate after a sequential stop, median-unbiased by simulation (issue 31, item 5)."""

import numpy as np
import pytest
from scipy import stats
from support.plans import plan as sequential_plan

from bnbench.analysis import sequential as sq
from bnbench.analysis.decisions import lines
from bnbench.analysis.stopped import median_unbiased

LOOKS = (5, 10, 15, 20)


def test_decides_intervals_shift_and_scale_with_the_differences():
    """What the simulation rests on: shifting every difference by c shifts each look's mean and interval by c, and
    scaling them scales both."""
    z = np.random.default_rng(5).standard_normal((200, 20))
    z[:, [3, 11]] = np.nan
    design = sq.Design(LOOKS)
    base, shifted, scaled = sq.decide(z, design), sq.decide(z + 1.5, design), sq.decide(3 * z, design)
    finite = np.isfinite(base.low)
    assert finite.any()
    assert np.allclose(shifted.low[finite], base.low[finite] + 1.5) and np.allclose(shifted.mean, base.mean + 1.5)
    assert np.allclose(scaled.high[finite], 3 * base.high[finite])


def test_one_look_gives_back_the_mean():
    """Without a look to stop at before, nothing is selected: the estimate is the mean, the interval the t one."""
    d = np.random.default_rng(9).normal(0.7, 2.0, 12)
    estimate, low, high = median_unbiased(d, sq.Design((12,)), 0)
    sd = d.std(ddof=1)
    half = stats.t.ppf(0.975, 11) * sd / np.sqrt(12)  # the spread's own uncertainty included: the t-interval
    assert estimate == pytest.approx(d.mean(), abs=0.03 * sd)
    assert (low, high) == pytest.approx((d.mean() - half, d.mean() + half), abs=0.03 * sd)


def test_the_adjusted_estimate_is_median_unbiased_and_its_interval_covers():
    """d = 1, Pocock: the mean where a sequence stops lies above the truth more often than below; the adjusted
    estimate half the time (within 3 binomial SE), and its interval covers 95% of the time."""
    sequences, effect = 240, 1.0
    design = sq.Design(LOOKS)
    d = np.random.default_rng(31).normal(effect, 1.0, (sequences, 20))
    looks = sq.decide(d, design)
    stop = np.where(looks.decided_at >= 0, looks.decided_at, len(LOOKS) - 1)
    found = np.array([median_unbiased(d[i], design, int(stop[i]), 2**12) for i in range(sequences)])
    se = np.sqrt(0.25 / sequences)
    assert abs(np.mean(found[:, 0] > effect) - 0.5) < 3 * se
    assert np.mean((found[:, 1] < effect) & (effect < found[:, 2])) > 0.95 - 3 * np.sqrt(0.05 * 0.95 / sequences)
    naive = looks.mean[np.arange(sequences), stop]
    assert np.mean(found[:, 0]) < np.mean(naive)  # the naive mean overstates the effect; the adjusted one less


def test_a_stop_on_a_lucky_start_is_pulled_back():
    """A large difference in the first seeds that decides early: the adjusted estimate lies below the mean there."""
    d = np.random.default_rng(2).normal(0.8, 1.0, 20)
    d[:10] += 1.0
    looks = sq.decide(d, sq.Design(LOOKS))
    assert looks.decision[0] == sq.BETTER and looks.decided_at[0] < len(LOOKS) - 1
    k = int(looks.decided_at[0])
    estimate, low, high = median_unbiased(d, sq.Design(LOOKS), k)
    assert low < estimate < looks.mean[0, k] < high


def test_no_spread_no_adjustment():
    assert median_unbiased(np.full(20, 0.5), sq.Design(LOOKS), 1) is None


def test_a_decision_line_gives_the_adjusted_estimate():
    plan = sequential_plan()
    comparison = {
        "variant": "bn",
        "where": "",
        "decision": "better",
        "decided_at": 1,
        "n": [5, 10],
        "mean": [1.0, 6.48],
        "sd": [1.0, 2.0],
        "low": [-1.0, 3.15],
        "high": [3.0, 9.81],
        "bound": [3.25, 2.69],
        "status": ["undecided", "better"],
        "adjusted": [6.31, 3.4, 9.1],
    }
    rec = {"looks_taken": 2, "seeds": 10, "finished": True, "next_seeds": [], "comparisons": [comparison]}
    (line, _) = lines(plan, rec, "plain")
    assert line == (
        "bn vs plain: better test acc, +6.48 pts, repeated 95% CI [+3.15, +9.81], decided after 10 seeds; adjusted "
        "for the stop: +6.31 pts [+3.40, +9.10] (median-unbiased, 95% CI)"
    )
