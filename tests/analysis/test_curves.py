"""bnbench.analysis.curves against brute force: np.mean over each window's slice, and plain loops over points."""

import time

import numpy as np
import pandas as pd
import pytest

from bnbench.analysis.curves import NEVER, UNDEFINED, first_crossing, level_at, trailing_mean


def brute_trailing(values, trial, window):
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        start = i - window + 1
        if start >= 0 and np.all(trial[start : i + 1] == trial[i]):
            out[i] = np.mean(values[start : i + 1])
    return out


def random_trials(seed, lengths):
    rng = np.random.default_rng(seed)
    trial = np.repeat(rng.permutation(len(lengths)), lengths)  # ids in no particular order
    return rng.lognormal(0.0, 1.0, len(trial)), trial


@pytest.mark.parametrize("window", [1, 2, 3, 7, 10, 25, 40, 41, 60])
def test_trailing_mean_matches_slices(window):
    values, trial = random_trials(window, [40, 1, 13, 25, 7, 41, 3])
    out = trailing_mean(values, trial, window)
    expected = brute_trailing(values, trial, window)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_trailing_mean_window_against_trial_length():
    values = np.arange(1.0, 6.0)
    trial = np.zeros(5, dtype=int)
    np.testing.assert_array_equal(trailing_mean(values, trial, 1), values)
    np.testing.assert_array_equal(trailing_mean(values, trial, 5), [np.nan] * 4 + [3.0])
    assert np.isnan(trailing_mean(values, trial, 6)).all()
    assert len(trailing_mean(np.array([]), np.array([]), 3)) == 0
    with pytest.raises(ValueError):
        trailing_mean(values, trial, 0)


def test_trailing_mean_string_ids_and_a_returning_id():
    values = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 5.0, 7.0])
    trial = np.array(["a", "a", "a", "b", "b", "a", "a"])  # "a" again after "b": a new trial
    np.testing.assert_array_equal(trailing_mean(values, trial, 2), [np.nan, 1.5, 2.5, np.nan, 15.0, np.nan, 6.0])


def spiky_curve(seed, n=600):
    """A diverging run: ordinary losses with a burst of huge ones in the middle."""
    values = np.random.default_rng(seed).random(n) + 1.0
    values[100], values[103], values[390] = 1e35, 7e33, 1.2345e20
    return values


@pytest.mark.parametrize("window", [5, 20, 100])
def test_trailing_mean_is_exact_after_a_spike(window):
    values = spiky_curve(window)
    trial = np.zeros(len(values), dtype=int)
    out = trailing_mean(values, trial, window)
    expected = brute_trailing(values, trial, window)
    huge = np.zeros(len(values), dtype=bool)
    huge[[100, 103, 390]] = True
    clean = ~np.isnan(expected)
    clean[window - 1 :] &= ~np.convolve(huge, np.ones(window), "valid").astype(bool)  # windows without a spike
    assert clean.sum() > len(values) / 3
    np.testing.assert_allclose(out[clean], expected[clean], rtol=1e-12)
    np.testing.assert_allclose(out[~clean & ~np.isnan(expected)], expected[~clean & ~np.isnan(expected)], rtol=1e-12)
    # pandas' rolling mean keeps a running sum (compensated, but still subtracting): after the burst its windows
    # without a spike come out wrong, by far more than rounding
    rolling = pd.Series(values).rolling(window).mean().to_numpy()
    error = np.abs(rolling[clean] / expected[clean] - 1)
    assert error.max() > 1e-3


def test_trailing_mean_non_finite_stays_in_its_windows():
    values = np.arange(1.0, 13.0)
    values[4], values[9] = np.inf, np.nan
    trial = np.zeros(12, dtype=int)
    out = trailing_mean(values, trial, 3)
    expected = np.array([np.sum(values[i - 2 : i + 1]) / 3 if i >= 2 else np.nan for i in range(12)])
    np.testing.assert_array_equal(out, expected)  # inf in rows 4-6, NaN in rows 9-11, exact elsewhere
    assert np.isinf(out[4:7]).all() and np.isnan(out[9:]).all() and out[7] == 7.0 and out[8] == 8.0


def test_trailing_mean_is_fast():
    values, trial = np.random.default_rng(0).random(250_000), np.repeat(np.arange(10), 25_000)
    trailing_mean(values, trial, 50)
    start = time.perf_counter()
    trailing_mean(values, trial, 50)
    assert time.perf_counter() - start < 0.25  # a few ms here; generous for a loaded machine
    values, trial = np.random.default_rng(0).random(100_000), np.repeat(np.arange(5000), 20)  # many short trials
    start = time.perf_counter()
    trailing_mean(values, trial, 7)
    assert time.perf_counter() - start < 0.25


# ---- crossing and level ------------------------------------------------------------------------------------------

STEPS = np.array([10, 20, 30, 40, 50])


@pytest.mark.parametrize(
    "values,target,higher,expected",
    [
        ([5.0, 4.0, 3.0, 2.0, 1.0], 2.5, False, (30, 40)),  # crossed between 30 and 40
        ([5.0, 4.0, 3.0, 2.0, 1.0], 3.0, False, (20, 30)),  # meeting the target counts
        ([5.0, 4.0, 3.0, 2.0, 1.0], 9.0, False, (0, 10)),  # met at the first point: somewhere in (0, 10]
        ([np.nan, np.nan, 3.0, 2.0, 1.0], 3.5, False, (0, 30)),  # the first defined point
        ([np.nan, 4.0, np.nan, 2.0, 1.0], 3.0, False, (20, 40)),  # undefined points are skipped
        ([5.0, 4.0, 3.0, 2.0, 1.0], 0.5, False, (50, NEVER)),
        ([5.0, 4.0, 3.0, 2.0, np.nan], 0.5, False, (40, NEVER)),  # the last defined step
        ([10.0, 30.0, 50.0, 70.0, 90.0], 60.0, True, (30, 40)),
        ([10.0, 30.0, 50.0, 70.0, 90.0], 95.0, True, (50, NEVER)),
        ([np.nan] * 5, 1.0, True, (0, UNDEFINED)),
        ([1.0] * 5, np.nan, True, (0, UNDEFINED)),
    ],
)
def test_first_crossing(values, target, higher, expected):
    assert first_crossing(STEPS, np.array(values), target, higher) == expected


def brute_crossing(steps, values, target, higher):
    defined = [(s, v) for s, v in zip(steps, values) if not np.isnan(v)]
    if not defined or np.isnan(target):
        return 0, UNDEFINED
    previous = 0
    for s, v in defined:
        if (v >= target) if higher else (v <= target):
            return previous, s
        previous = s
    return previous, NEVER


@pytest.mark.parametrize("seed", range(5))
def test_first_crossing_random(seed):
    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(1, 50, 30))
    values = np.where(rng.random(30) < 0.2, np.nan, rng.random(30))
    for target in (0.1, 0.5, 0.9, 1.5):
        for higher in (True, False):
            assert first_crossing(steps, values, target, higher) == brute_crossing(steps, values, target, higher)


def test_level_at():
    values = np.array([np.nan, 4.0, np.nan, 2.0, 1.0])
    assert level_at(STEPS, values, 35) == (20, 4.0)
    assert level_at(STEPS, values, 40) == (40, 2.0)
    assert level_at(STEPS, values, 1000) == (50, 1.0)
    step, level = level_at(STEPS, values, 15)
    assert step == 0 and np.isnan(level)
    step, level = level_at(STEPS, np.full(5, np.nan), 50)
    assert step == 0 and np.isnan(level)
