"""bnbench.analysis.sentences' claims on hand-made rows: the direction of a censored speedup, the level an exact
test was held to, a detectable effect never written as 0.00 (issue 31, item 6)."""

import math

import numpy as np
import pytest
from test_summary import accuracies, table, write_run

from bnbench.analysis import inference
from bnbench.analysis.columns import COLUMNS
from bnbench.analysis.paired import speed
from bnbench.analysis.sentences import _metric_claim, _speed_claim


def row(**values) -> dict:
    """A compared row: every column missing (NaN, '' for text) but `values`."""
    empty = {c: "" if c.endswith(("_note", "_estimator", "_unit")) else np.nan for c in COLUMNS}
    return empty | {"variant": "bn", "baseline": False, "test": "t"} | values


def test_a_censored_speedup_takes_its_direction_from_the_sign_test():
    """8 seeds sooner, 0 later, 9 undetermined: the sign test decides (p = 2/2^8, Holm 0.031), while the median is
    known only between 0.50 and 2.01. Old code: "reaches plain's half-run loss median 0.50–2.01× [0.50, 3.00]
    later" (the direction from the median's low end, against the seeds)."""
    speed = row(
        pairs=17,
        steps_pairs=17,
        steps_speedup=0.5,
        steps_speedup_high=2.01,
        steps_estimator="median",
        steps_ci_low=0.5,
        steps_ci_high=3.0,
        steps_p=2 / 2**8,
        steps_p_holm=4 * 2 / 2**8,
        steps_censored=9,
        steps_baseline_censored=0,
        steps_unit="steps",
        _steps_counts=(8, 0, 9),
    )
    text = _speed_claim(speed, "steps", "plain")
    assert text.startswith("reaches plain's half-run loss sooner on 8 seeds, later on 0, 9 undetermined (sign test)")
    assert "later" not in text.split("later on 0")[1] and "median 0.50–2.01×" in text and "(Holm p=0.031)" in text
    later = _speed_claim(speed | {"_steps_counts": (1, 9, 7)}, "steps", "plain")
    assert later.startswith("reaches plain's half-run loss later on 9 seeds, sooner on 1, 7 undetermined")


def test_the_exact_test_names_the_level_it_was_held_to():
    """Old code: "the exact test cannot decide with 6 pairs (its smallest p is 0.031)", no level."""
    claim = row(
        pairs=6,
        test="exact",
        test_acc_delta=1.0,
        test_acc_wins=5,
        test_acc_p_holm=1.0,
        test_acc_tests=8,
        test_acc_detectable=np.inf,
    )
    text = _metric_claim(claim, "test_acc")
    assert (
        "the exact test cannot decide with 6 pairs (its smallest p, 0.031, is above the level it is held to, " in text
    )
    assert text.endswith("0.00625 = 0.05 / 8 Holm tests)")
    one = _metric_claim(claim | {"pairs": 5, "test_acc_tests": 1}, "test_acc")
    assert one.endswith("(its smallest p, 0.062, is above the level it is held to, 0.05)")


def test_a_tiny_detectable_effect_is_not_written_as_zero():
    claim = row(pairs=20, test_acc_delta=0.0, test_acc_wins=10, test_acc_p_holm=1.0, test_acc_tests=4)
    text = _metric_claim(claim | {"test_acc_detectable": 0.00031}, "test_acc")
    assert "could detect ≥ 0.00031 pts" in text and "≥ 0.00 " not in text
    assert "could detect ≥ 1.25 pts" in _metric_claim(claim | {"test_acc_detectable": 1.2468}, "test_acc")
    assert inference.format_size(0.004, 4) == "0.0040" and inference.format_size(4e-5, 4) == "4e-05"


@pytest.mark.parametrize(("alpha", "pairs"), [(0.05, 6), (0.05 / 4, 8), (0.05 / 24, 10), (0.0625, 6), (0.07, 5)])
def test_exact_pairs_is_the_fewest_whose_smallest_p_is_below_alpha(alpha, pairs):
    assert inference.exact_pairs(alpha) == pairs
    assert 2 / 2**pairs < alpha <= 2 / 2 ** (pairs - 1)


def test_seeds_needed_counts_what_the_exact_test_needs():
    """Old code: 2 for sd == 0, though the decision on a constant difference is the exact test's."""
    assert inference.seeds_needed(1.0, 0.0, 0.05 / 24) == 10
    assert inference.seeds_needed(10.0, 1.0, 0.05 / 24) < 10  # the t-test's power alone
    assert inference.seeds_needed(10.0, 1.0, 0.05 / 24, exact=True) == 10
    slow = inference.seeds_needed(0.5, 1.0, 0.05 / 24)
    assert inference.seeds_needed(0.5, 1.0, 0.05 / 24, exact=True) == slow > 10


def test_effect_on_a_constant_zero_difference_needs_what_the_exact_test_needs(tmp_path):
    """Identical variants on 6 seeds and --effect 1: the difference is constant (0), the exact test decides, and at
    0.05 / 4 (the verdict family) it needs 8 pairs. Old code: "the --effect difference would need ~2 seeds"."""
    losses = [[2.0 - 0.1 * b for b in range(10)]]
    trials = {(v, s): {"losses": losses, "acc": [0.8 + 0.01 * s]} for s in range(6) for v in ("bn", "plain")}
    run = write_run(tmp_path, trials)
    assert np.all(accuracies(run, "bn", 1) == accuracies(run, "plain", 1))
    bn = table(run, effect=1.0).loc["bn"]
    assert bn.test_acc_tests == 4 and bn.test_acc_needed == 8
    assert "the --effect difference would need ~8 seeds" in bn.verdict
    assert "could detect" not in bn.verdict and math.isnan(bn.test_acc_detectable)


def test_a_censored_speedup_carries_the_sign_tests_counts_to_the_verdict():
    """paired.speed on 17 pairs: 8 where the variant reached the target sooner, 9 where it never did within its
    200 steps while the baseline took 300 (undetermined); the verdict's claim reads those counts."""
    seeds = 17
    sooner = np.arange(seeds) < 8
    m = {
        "steps_target": np.full((seeds, 2), 1.0),
        "steps_at": np.column_stack([np.where(sooner, 50.0, np.nan), np.where(sooner, 100.0, 300.0)]),
        "steps_after": np.column_stack([np.where(sooner, 49.0, np.nan), np.where(sooner, 99.0, 299.0)]),
        "steps": np.full((seeds, 2), 200.0),
        "batch_size": np.full((seeds, 2), 10.0),
        "steps_why": np.full((seeds, 2), ""),
    }
    out = speed("steps", m, 0, 1, np.ones(seeds, dtype=bool), "t")
    assert out["steps_estimator"] == "median" and out["_steps_counts"] == (8, 0, 9)
    assert out["steps_p"] == inference.sign_test_p(8, 0)
    claim = row(pairs=seeds, steps_p_holm=4 * out["steps_p"], steps_unit="steps", steps_baseline_censored=0) | out
    assert "reaches plain's half-run loss sooner on 8 seeds, later on 0" in _speed_claim(claim, "steps", "plain")
