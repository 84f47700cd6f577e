"""A sequential plan as meta.json's `sequential.plan` holds it: looks after 5 and 10 of 10 seeds, Pocock spending,
alpha 0.05, one comparison, the test accuracy decided; a test states only what it changes."""

PLAN = {
    "metric": "test_acc",
    "alpha": 0.05,
    "effect": None,
    "spending": "pocock",
    "max_seeds": 10,
    "round": 5,
    "seeds": list(range(10)),
    "looks": [5, 10],
    "comparisons": 1,
}


def plan(**changes) -> dict:
    """PLAN with `changes` (a fresh dict each time)."""
    return {**PLAN, "seeds": list(PLAN["seeds"]), "looks": list(PLAN["looks"]), **changes}
