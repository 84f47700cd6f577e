"""bnbench.analysis.decisions' words for a record: what each decision says, with the margin and the pairs lost."""

import numpy as np
from scipy.special import stdtr
from support.plans import plan

from bnbench.analysis.decisions import lines
from bnbench.analysis.sequential import (
    BETTER,
    EQUIVALENT,
    UNDECIDED,
    Design,
    decide,
    exact_when_constant,
)

PLAN = plan(effect=2.0)


def record(decision, low, high, n=(5, 10), decided_at=1):
    comparison = {
        "variant": "bn_after",
        "where": "",
        "decision": decision,
        "decided_at": decided_at,
        "n": list(n),
        "mean": [0.0, (low + high) / 2],
        "sd": [1.0, 1.0],
        "low": [-5.0, low],
        "high": [5.0, high],
        "bound": [3.25, 2.69],
        "status": ["undecided", decision],
    }
    return {"looks_taken": 2, "seeds": 10, "finished": True, "next_seeds": [], "comparisons": [comparison]}


def test_a_difference_inside_the_margin_says_so():
    (line, _) = lines(PLAN, record("worse", -1.91, -0.13), "plain")
    assert line == (
        "bn_after vs plain: worse test acc, -1.02 pts, repeated 95% CI [-1.91, -0.13] "
        "(within ±2 pts: smaller than the margin), decided after 10 seeds"
    )


def test_a_difference_reaching_past_the_margin_does_not():
    (line, _) = lines(PLAN, record("worse", -2.5, -0.5), "plain")
    assert line == (
        "bn_after vs plain: worse test acc, -1.50 pts, repeated 95% CI [-2.50, -0.50], decided after 10 seeds"
    )
    (line, _) = lines(PLAN | {"effect": None}, record("better", 0.5, 1.5), "plain")
    assert line == (
        "bn_after vs plain: better test acc, +1.00 pts, repeated 95% CI [+0.50, +1.50], decided after 10 seeds"
    )


def test_pairs_lost_to_divergence_are_named():
    (line, _) = lines(PLAN, record("equivalent", -1.0, 1.0, n=(5, 8)), "plain")
    assert line == (
        "bn_after vs plain: equivalent test acc within ±2 pts, +0.00 pts, repeated 95% CI [-1.00, +1.00], "
        "decided after 10 seeds (8 pairs: the others diverged)"
    )


def test_a_loss_is_written_at_its_own_precision():
    """Losses differ by thousandths: at 2 decimals a decided loss read "-0.00 [-0.01, -0.00]" (issue 31); its lines
    use the metric's 4 decimals, the undecided one's detectable effect too."""
    loss = PLAN | {"metric": "train_loss", "effect": None}
    (line, _) = lines(loss, record("better", -0.0072, -0.0012), "plain")
    assert line == (
        "bn_after vs plain: better train loss, -0.0042, repeated 95% CI [-0.0072, -0.0012], decided after 10 seeds"
    )
    undecided = record("undecided", -0.0032, 0.0012, decided_at=None)
    undecided["comparisons"][0]["sd"] = [0.004, 0.004]
    (line, _) = lines(loss, undecided, "plain")
    assert line.startswith("bn_after vs plain: undecided after 10 seeds: train loss -0.0010, repeated 95% CI ")
    assert "[-0.0032, +0.0012]; could detect ≥ 0.00" in line and " (80% power at its last look)" in line
    detectable = line.split("could detect ≥ ")[1].split(" ")[0]
    assert len(detectable.split(".")[1]) == 4 and float(detectable) > 0


# ---- issue 31, item 6: one rule for a constant difference, on both paths -----------------------------------------

PLAN20 = PLAN | {"effect": None, "max_seeds": 20, "seeds": list(range(20)), "looks": [5, 10, 15, 20]}


def constant_looks(value: float, effect=None):
    """A constant difference (+1/360 of accuracy: 0.28 pts) read back from 9-digit text, through decide and the
    constant rule, as `record` takes them."""
    d = np.full((1, 20), value) * (1 + 1e-9 * np.sin(np.arange(20)))
    design = Design((5, 10, 15, 20), effect=effect)
    return exact_when_constant(d, decide(d, design), design)


def test_a_constant_difference_is_decided_by_the_exact_test_at_the_looks_level():
    """Old code: "better test acc, +0.28 pts [+0.28, +0.28], decided after 5 seeds" (a zero-width t-interval),
    while compare gives the same differences to the exact test (p = 2/2^5 = 0.0625: undecided)."""
    looks = constant_looks(100 / 360)
    level = 2 * stdtr(looks.n - 1, -looks.bound)  # each look's two-sided level (0 where it decides nothing)
    reached = 2.0 / 2.0**looks.n <= level
    assert looks.status[0, 0] == UNDECIDED and not reached[0, 0]  # 0.0625 at 5 pairs: above any level <= 0.05
    first = int(np.argmax(reached[0]))
    assert reached[0].any() and looks.decision[0] == BETTER and looks.decided_at[0] == first
    assert np.all(looks.sd == 0.0) and np.all(np.isinf(looks.low[0, :first]))
    assert looks.low[0, first] == looks.high[0, first] == looks.mean[0, first]  # the exact test's set: the point


def test_identical_variants_are_never_better_and_equivalent_only_by_the_exact_test():
    zero = constant_looks(0.0)
    assert zero.decision[0] == UNDECIDED and np.all(zero.status == UNDECIDED)
    margin = constant_looks(0.0, effect=0.1)
    assert margin.status[0, 0] == UNDECIDED  # old code: equivalent at 5 pairs, which the exact test cannot reach
    assert margin.decision[0] == EQUIVALENT


def constant_record(decision, mean, n=(5, 10), decided_at=1, finished=True):
    rec = record(decision, mean, mean, n=n, decided_at=decided_at)
    c = rec["comparisons"][0]
    c.update(mean=[mean, mean], sd=[0.0, 0.0], low=[None, mean], high=[None, mean])
    c["status"] = [UNDECIDED, decision]
    return rec | {"finished": finished}


def test_a_constant_difference_says_which_test_decided_and_never_could_detect_zero():
    """Old code: "undecided after 20 seeds: test acc +0.00 pts, repeated 95% CI [+0.00, +0.00]; could detect ≥ 0.00
    pts (80% power at its last look)"."""
    level = 2 * stdtr(9, -2.69)
    (line, _) = lines(PLAN20, constant_record(BETTER, 100 / 360), "plain")
    assert line == (
        "bn_after vs plain: better test acc, +0.28 pts on every pair (no spread: exact sign-flip p=0.002 ≤ "
        f"{level:.3g}, this look's level), decided after 10 seeds"
    )
    (line, _) = lines(PLAN20, constant_record(UNDECIDED, 0.0, decided_at=None), "plain")
    assert line == (
        "bn_after vs plain: undecided after 10 seeds: test acc +0.00 pts on every pair (no spread: exact sign-flip "
        f"p=1 > {level:.3g}, this look's level)"
    )
    assert "could detect" not in line


def test_a_detectable_effect_that_rounds_to_zero_keeps_its_digits():
    undecided = record("undecided", -0.0001, 0.0001, decided_at=None)
    undecided["comparisons"][0]["sd"] = [1e-4, 1e-4]
    (line, _) = lines(PLAN, undecided, "plain")
    found = float(line.split("could detect ≥ ")[1].split(" ")[0])
    assert "could detect ≥ 0.00 " not in line and 1e-4 < found < 1e-3


def test_the_design_line_names_the_boundaries_a_missing_pair_changed():
    """Old code: "boundaries |t| ≥ 3.25, 2.69 at the looks taken" (the planned ones) though bn_after, with a pair
    missing at its first look, used others."""
    plan = PLAN | {"effect": None, "max_seeds": 24, "seeds": list(range(24)), "looks": [12, 24]}
    row = np.zeros((1, 24))
    planned = decide(row, Design((12, 24)), 2).bound[0]
    row[0, 3] = np.nan
    used = decide(row, Design((12, 24)), 2).bound[0]
    assert np.all(np.isfinite(used)) and not np.allclose(used, planned)
    rec = record("undecided", -1.0, 1.0, n=(11, 23), decided_at=None)
    rec["comparisons"][0]["bound"] = list(used)
    (_, design) = lines(plan, rec, "plain")
    shown = f"{planned[0]:.2f}, {planned[1]:.2f} at the looks taken"
    assert f"{shown} (planned; used, the pairs lost changing them: bn_after {used[0]:.2f}, {used[1]:.2f})" in design
    rec["comparisons"][0]["bound"] = list(planned)
    (_, design) = lines(plan, rec, "plain")
    assert f"{shown}; no decision before 8 pairs" in design
