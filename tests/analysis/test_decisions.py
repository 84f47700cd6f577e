"""bnbench.analysis.decisions' words for a record: what each decision says, with the margin and the pairs lost."""

from bnbench.analysis.decisions import lines

PLAN = {
    "metric": "test_acc",
    "alpha": 0.05,
    "effect": 2.0,
    "spending": "pocock",
    "max_seeds": 10,
    "round": 5,
    "seeds": list(range(10)),
    "looks": [5, 10],
    "comparisons": 1,
}


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
