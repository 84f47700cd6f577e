"""bnbench.analysis.outcomes: a diverged trial decided as an outcome (the worst rank, the sign test over every pair),
a detectable effect never beyond the 0–100 scale, and no speed claimed when neither variant learned (issue 31,
item 3), on run folders written by hand. Each test fails on the code before it (commit bcbf97d); what that code
printed is in the test's docstring."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_summary import NAN, curve, json_rows, plain_holm, table, write_run

from bnbench.analysis import compare_runs, outcomes
from bnbench.analysis.inference import format_p

DIVERGED = {"losses": [[2.0, 1.9, NAN]], "acc": [NAN]}


def finished(seed: int, acc: float, slope: float = 0.05) -> dict:
    return {"losses": [list(curve(seed, slope, 10, 0.01))], "acc": [acc]}


def test_a_variant_that_survives_where_the_baseline_diverges_is_better(tmp_path):
    """10 seeds; plain diverges on 8, bn on none and wins both survivors: 10 wins, 0 losses, sign test p = 2/2^10
    in the verdict's Holm family. Old code: "bn vs plain: no difference shown in test acc: +10.00 pts, 2/2 seeds
    better (Holm p=1); ...; only 2 pairs: run ≥ 5 seeds" (test acc on the 2 survivors only)."""
    trials = {}
    for s in range(10):
        trials[("bn", s)] = finished(s + 20, 0.90 + 0.001 * s, 0.08)
        trials[("plain", s)] = DIVERGED if s < 8 else finished(s, 0.80 + 0.001 * s)
    run = write_run(tmp_path, trials)
    bn = table(run).loc["bn"]
    assert bn.pairs == 2 and bn.test_acc_ranked == 10
    assert (bn.test_acc_ranked_wins, bn.test_acc_ranked_losses) == (10, 0)
    assert bn.test_acc_rule == outcomes.RULE
    assert bn.test_acc_p == pytest.approx(stats.binomtest(10, 10, 0.5).pvalue, rel=1e-12) == 2 / 2**10
    family = [bn.test_acc_p, bn.steps_p, bn.steps_acc_p, bn.diverged_p]
    holm = plain_holm(family)[0]
    assert bn.test_acc_p_holm == pytest.approx(holm, rel=1e-12) and holm < 0.05
    assert bn.test_acc_delta == pytest.approx(10.0, abs=1e-6)  # the survivors' difference stays, described as such
    assert math.isnan(bn.test_acc_detectable)  # a rank test has no effect size in points
    assert bn.verdict.startswith(
        "bn vs plain: better test acc: 10/10 seeds better, 0 worse (a diverged trial counts as the worst; sign "
        f"test, Holm p={format_p(holm)}); on the 2 pairs where neither diverged: +10.00 pts"
    )
    assert "only" not in bn.verdict and "could detect" not in bn.verdict
    (comparison,), _ = compare_runs([run])
    assert comparison.headline == "bn better"
    row = json_rows(run)["bn"]  # the export says which rule decided
    assert row["test_acc_rule"] == outcomes.RULE and row["test_acc_ranked_wins"] == 10


def test_two_diverged_trials_tie_and_a_variant_that_diverges_alone_loses(tmp_path):
    """6 seeds: both diverge on seed 0 (a tie), bn alone on seed 1 (a loss), plain alone on 2-5 (wins): 4 wins,
    1 loss, p = P(|Bin(5, 1/2) - 2.5| >= 1.5) = 0.375; no pair where neither diverged, yet a comparison. Old code:
    "bn vs plain: nothing to compare: no seed where neither diverged (bn diverged on 2/6 seeds, plain on 5/6 ...)"."""
    trials = {("bn", 0): DIVERGED, ("plain", 0): DIVERGED, ("bn", 1): DIVERGED, ("plain", 1): finished(1, 0.8)}
    for s in range(2, 6):
        trials[("bn", s)], trials[("plain", s)] = finished(s + 20, 0.9, 0.08), DIVERGED
    bn = table(write_run(tmp_path, trials)).loc["bn"]
    assert bn.pairs == 0 and bn.test_acc_ranked == 6
    assert (bn.test_acc_ranked_wins, bn.test_acc_ranked_losses) == (4, 1)
    assert bn.test_acc_p == pytest.approx(stats.binomtest(4, 5, 0.5).pvalue, rel=1e-12) == 0.375
    assert bn.verdict.startswith(
        f"bn vs plain: no difference shown in test acc: 4/6 seeds better, 1 worse (a diverged trial counts as the "
        f"worst; sign test, Holm p={format_p(bn.test_acc_p_holm)}); the sign test cannot decide with 5 untied pairs "
        f"(its smallest p, 0.062, is above the level it is held to, 0.0125)"
    )
    assert "nothing to compare" not in bn.verdict and "where neither diverged:" not in bn.verdict


def test_without_divergence_the_paired_test_decides_as_before(tmp_path):
    """No trial diverged: no rank rule, the paired t-test's p is the decision's."""
    trials = {}
    for s in range(5):
        trials[("bn", s)], trials[("plain", s)] = finished(s + 20, 0.9 + 0.01 * s, 0.08), finished(s, 0.8)
    bn = table(write_run(tmp_path, trials)).loc["bn"]
    assert bn.test_acc_rule == "" and bn.test_acc_ranked is pd.NA and bn.test_acc_p >= bn.test_acc_p_t  # paired
    assert "sign test" not in bn.verdict


def test_a_detectable_effect_beyond_100_points_is_not_printed(tmp_path):
    """3 seeds whose differences are +80, -80 and +1 pts: the t-test's detectable effect at 80% power is far beyond
    the 100 points an accuracy difference can be. Old code: "these seeds could detect ≥ 523.70 pts"."""
    accs = [(0.9, 0.1), (0.1, 0.9), (0.51, 0.5)]
    trials = {}
    for s, (b, p) in enumerate(accs):
        trials[("bn", s)], trials[("plain", s)] = finished(s + 20, b), finished(s, p)
    run = write_run(tmp_path, trials)
    bn = table(run).loc["bn"]
    assert bn.test_acc_detectable > 100  # the column keeps the power formula's number
    assert "these seeds cannot detect any difference within the 0–100 pts scale" in bn.verdict
    assert "could detect" not in bn.verdict


def test_no_speed_is_claimed_when_neither_variant_learned(tmp_path):
    """Both variants end at chance (10 classes: 10%, every seed below 14.5%) while bn's loss falls faster: no
    speed claim, "no variant learned". Old code: "reaches plain's half-run loss 1.37× [1.23, 1.52] sooner (Holm
    p=0.0023)"."""
    trials = {}
    for s in range(6):
        trials[("bn", s)] = finished(s + 20, 0.10 + 0.005 * (s % 3), 0.08)
        trials[("plain", s)] = finished(s, 0.10 + 0.004 * (s % 2), 0.05)
    t = table(write_run(tmp_path, trials))
    bn = t.loc["bn"]
    assert bn.steps_p_holm < 0.05  # the flat curves' speed would be "decided"
    assert bool(bn.learned_nothing) and bool(t.loc["plain", "learned_nothing"])
    assert "no variant learned (both at chance accuracy)" in bn.verdict
    assert "half-run" not in bn.verdict


def test_a_speed_is_claimed_when_one_variant_learned(tmp_path):
    """The same curves, bn at 90%: it learned, the speed claim stands."""
    trials = {}
    for s in range(6):
        trials[("bn", s)] = finished(s + 20, 0.90, 0.08)
        trials[("plain", s)] = finished(s, 0.10 + 0.004 * (s % 2), 0.05)
    t = table(write_run(tmp_path, trials))
    assert not t.loc["bn", "learned_nothing"] and t.loc["plain", "learned_nothing"]
    assert "reaches plain's half-run loss" in t.loc["bn", "verdict"]
    assert "no variant learned" not in t.loc["bn", "verdict"]


def test_learned_nothing_is_within_a_twentieth_of_the_way_from_chance_to_100():
    """At 10 classes chance is 10% and the line 14.5%; a diverged trial counts as at chance; unknown classes: None."""
    assert outcomes.chance("digits") == 10.0 and outcomes.chance("cifar100") == 1.0
    assert outcomes.chance("imagefolder") is None
    assert outcomes.learned_nothing(np.array([14.49, 9.0]), 2, 10.0) is True
    assert outcomes.learned_nothing(np.array([14.51, 9.0]), 2, 10.0) is False
    assert outcomes.learned_nothing(np.array([]), 3, 10.0) is True  # every trial diverged
    assert outcomes.learned_nothing(np.array([50.0]), 1, None) is None
