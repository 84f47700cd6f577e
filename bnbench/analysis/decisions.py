"""A run decided in rounds of seeds (`bnbench run --until-decided`): its plan, each look's decisions worked out
from the run's own rows, and the words for them.

meta.json's `sequential` holds the plan, fixed when the run starts (`plan`: the metric, alpha, the cap, the
margin, the spending function, every seed it may use in order and the seeds at each look), and the record of the
looks taken (`record`), rewritten after each. The record is never the source of a decision: every look is worked
out again from the rows (a trial's numbers depend only on its config and seed), so a resumed run takes the same
decisions as one that ran through, and `show` and `compare` say what the rows say.
"""

import math
from typing import Optional

import numpy as np

from .columns import METRICS
from .inference import POWER, detectable
from .measures import point_measures
from .reading import Results, spans
from .sequential import BETTER, EQUIVALENT, UNDECIDED, WORSE, Design, boundaries, decide

KEY = "sequential"  # meta.json's field
SPENDING_NAMES = {"pocock": "Pocock-type", "obf": "O'Brien–Fleming-type"}


def plan_of(meta: dict) -> Optional[dict]:
    """The sequential plan a run was started with (None: a run of fixed seeds)."""
    found = meta.get(KEY)
    return found.get("plan") if isinstance(found, dict) and isinstance(found.get("plan"), dict) else None


def design(plan: dict) -> Design:
    return Design(
        tuple(plan["looks"]),
        plan["alpha"],
        plan["comparisons"],
        plan["spending"],
        plan["effect"],
        METRICS[plan["metric"]].higher,
    )


def record(results: Results, plan: dict) -> dict:
    """Every look the run's rows allow (those whose seeds have all finished), for every comparison (a variant
    against the baseline at a sweep point): the pairs, mean difference, repeated interval, boundary and status at
    each look, and its decision. `finished`: nothing is undecided, or the last look is taken; `next_seeds`: the
    seeds the next round adds (empty when finished)."""
    seeds = plan["seeds"]
    have = list(results.config.seeds)
    taken = [k for k, n in enumerate(plan["looks"]) if have[:n] == seeds[:n]]  # a shorter `have` differs
    if results.status != "complete" and taken:  # the rows of the last look's seeds may not all be there yet
        taken = taken[:-1] if len(have) == plan["looks"][taken[-1]] else taken
    names, base = _comparisons(results)
    rows = []
    if taken:
        d = _differences(results, plan, names, base)
        looks = decide(d, design(plan), len(taken))
        rows = [_row(looks, i, name) for i, name in enumerate(names)]
    done = bool(taken) and (len(taken) == len(plan["looks"]) or all(r["decision"] != UNDECIDED for r in rows))
    since = plan["looks"][taken[-1]] if taken else 0
    return {
        "looks_taken": len(taken),
        "seeds": since,
        "finished": done,
        "next_seeds": [] if done else seeds[since : plan["looks"][len(taken)]],
        "comparisons": rows,
    }


def _comparisons(results: Results) -> tuple[list[tuple[int, str, str]], str]:
    """(sweep point, variant, where) of every comparison, in the runner's order, and the baseline's name."""
    config = results.config
    where = [", ".join(f"{k}={v}" for k, v in point.items()) for point in results.trials.points]
    names = [
        (p, v.name, where[p])
        for p in range(len(results.trials.points))
        for v in config.variants
        if v.name != config.baseline
    ]
    return names, config.baseline


def _differences(results: Results, plan: dict, names: list, baseline: str) -> np.ndarray:
    """[comparisons, cap]: variant − baseline of `plan['metric']` per seed, in the plan's seed order; NaN where
    either trial diverged or has no result, and for seeds not trained yet."""
    index = results.trials
    where = {name: spans(getattr(results, name), index.size) for name in ("batches", "epochs", "evals")}
    order = {seed: i for i, seed in enumerate(plan["seeds"])}
    d = np.full((len(names), len(plan["seeds"])), np.nan)
    measured = {}
    for row, (point, variant, _) in enumerate(names):
        if point not in measured:
            measured[point] = point_measures(results, point, where, baseline, None)[0]
        m, config = measured[point], index.resolved[point]
        variants = [x.name for x in config.variants]
        v, b = variants.index(variant), variants.index(baseline)
        values, ok = m[plan["metric"]], m["ok"]
        for s, seed in enumerate(config.seeds):
            if ok[s, v] and ok[s, b]:
                d[row, order[seed]] = values[s, v] - values[s, b]
    return d


def _row(looks, i: int, name: tuple) -> dict:
    """One comparison's looks, JSON-ready (an infinite bound or interval as None)."""
    _, variant, where = name
    at = int(looks.decided_at[i])
    return {
        "variant": variant,
        "where": where,
        "decision": str(looks.decision[i]),
        "decided_at": at if at >= 0 else None,
        "n": looks.n[i].tolist(),
        "mean": _json(looks.mean[i]),
        "sd": _json(looks.sd[i]),
        "low": _json(looks.low[i]),
        "high": _json(looks.high[i]),
        "bound": _json(looks.bound[i]),
        "status": [str(s) for s in looks.status[i]],
    }


def _json(values: np.ndarray) -> list:
    return [None if not math.isfinite(x) else float(x) for x in values]


# ---- words -------------------------------------------------------------------------------------------------------


def lines(plan: dict, rec: dict, baseline: str) -> list[str]:
    """The decision per comparison, conclusion first, then one line on the design that made it."""
    out = [_line(c, plan, rec, baseline) for c in rec["comparisons"]]
    if not rec["looks_taken"]:
        out.append(f"no look taken yet: the first comes after {plan['looks'][0]} seeds")
    elif not rec["finished"]:
        ahead = ", ".join(map(str, rec["next_seeds"]))
        out.append(f"undecided comparisons remain; the next round trains seeds {ahead}")
    return out + [design_line(plan, rec)]


def caveat() -> str:
    """Why the comparison table's own tests do not replace a sequential run's decisions."""
    return (
        "the table tests the seeds as if their number had been fixed in advance; the run added seeds until "
        "decided, so the sequential decisions above are the ones that hold"
    )


def _line(c: dict, plan: dict, rec: dict, baseline: str) -> str:
    metric = METRICS[plan["metric"]]
    unit = f" {metric.unit}" if metric.unit else ""
    name = metric.label.removeprefix("final ").removesuffix(" %")
    head = f"{c['variant']}{' @ ' + c['where'] if c['where'] else ''} vs {baseline}:"
    k = c["decided_at"] if c["decided_at"] is not None else rec["looks_taken"] - 1
    numbers = f"{_signed(c['mean'][k])}{unit} {_interval(c['low'][k], c['high'][k])}"
    seeds = f"{plan['looks'][k]} seeds"
    pairs = "" if c["n"][k] == plan["looks"][k] else f" ({c['n'][k]} pairs: the others diverged)"
    if c["decision"] in (BETTER, WORSE):
        small = plan["effect"] is not None and -plan["effect"] < c["low"][k] and c["high"][k] < plan["effect"]
        within = f" (within ±{plan['effect']:g}{unit}: smaller than the margin)" if small else ""
        return f"{head} {c['decision']} {name}, {numbers}{within}, decided after {seeds}{pairs}"
    if c["decision"] == EQUIVALENT:
        return f"{head} equivalent {name} within ±{plan['effect']:g}{unit}, {numbers}, decided after {seeds}{pairs}"
    text = f"{head} undecided after {seeds}{pairs}: {name} {numbers}"
    if rec["finished"] and c["sd"][k] is not None and c["bound"][k] is not None:
        found = detectable(c["n"][k], c["sd"][k], _nominal(c["bound"][k], c["n"][k]))
        text += f"; could detect ≥ {found:.2f}{unit} ({POWER:.0%} power at its last look)"
    return text


def design_line(plan: dict, rec: dict) -> str:
    """How it was decided: the looks, the spending function, alpha and its split, the boundaries used."""
    m = plan["comparisons"]
    taken = plan["looks"][: max(rec["looks_taken"], 1)]
    bounds = boundaries(
        tuple(taken), plan["looks"][-1], plan["alpha"] / m, plan["spending"], len(taken) == len(plan["looks"])
    )
    split = f" over {m} comparisons (Bonferroni: {plan['alpha'] / m:.3g} each)" if m > 1 else ""
    margin = f", equivalence margin ±{plan['effect']:g}" if plan["effect"] is not None else ""
    return (
        f"sequential design: looks after {', '.join(map(str, plan['looks']))} seeds (at most {plan['looks'][-1]}), "
        f"{SPENDING_NAMES[plan['spending']]} alpha spending, alpha {plan['alpha']:g}{split}{margin}; "
        f"repeated {100 * (1 - plan['alpha'] / m):.4g}% intervals, boundaries |t| ≥ "
        f"{', '.join(f'{b:.2f}' for b in bounds[: rec['looks_taken'] or 1])} at the looks taken; assumes roughly "
        f"normal differences across seeds"
    )


def _signed(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:+.2f}"


def _interval(low: Optional[float], high: Optional[float]) -> str:
    return "[no interval]" if low is None or high is None else f"[{low:+.2f}, {high:+.2f}]"


def _nominal(bound: float, n: int) -> float:
    """The two-sided level of a t boundary on n pairs."""
    from scipy.special import stdtr

    return float(2 * stdtr(n - 1, -bound))
