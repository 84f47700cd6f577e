"""A run decided in rounds of seeds (`bnbench run --until-decided`): its plan, each look's decisions worked out
from the run's own rows, and the words for them.

meta.json's `sequential` holds the plan, fixed when the run starts (`plan`: the metric, alpha, the cap, the
margin, the spending function, every seed it may use in order and the seeds at each look; read back through the
model `Plan`, so that a hand edit is one line), and the record of the looks taken (`record`), rewritten after
each. The record is never the source of a decision: every look is worked out again from the rows (a trial's
numbers depend only on its config and seed), so a resumed run takes the same decisions as one that ran through, and
`show` and `compare` say what the rows say.
"""

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bnbench.analysis.columns import METRICS, PRIMARY
from bnbench.analysis.inference import FEWEST, POWER, detectable, format_p, format_size
from bnbench.analysis.measures import point_measures
from bnbench.analysis.reading import Results, TrialIndex
from bnbench.analysis.row_checks import spans
from bnbench.analysis.sequential import (
    BETTER,
    EQUIVALENT,
    SPENDING,
    UNDECIDED,
    WORSE,
    Design,
    decide,
    exact_when_constant,
)
from bnbench.analysis.stopped import median_unbiased
from bnbench.errors import BnbenchError
from bnbench.experiment.config import MAX_TRIALS, Config
from bnbench.experiment.fields import brief
from bnbench.rundir.folder import META, RunFolder
from bnbench.rundir.meta import Meta, Overrides

KEY = "sequential"  # meta.json's field
SPENDING_NAMES = {"pocock": "Pocock-type", "obf": "O'Brien–Fleming-type"}
TESTED = tuple(name for name, m in METRICS.items() if m.tested)


@dataclass(frozen=True)
class Settings:
    """What `--until-decided` was asked: the cap on seeds, the metric decided on, the family-wise alpha, the
    equivalence margin (None: no equivalence decisions) and the spending function."""

    max_seeds: int = 20
    metric: str = PRIMARY
    alpha: float = 0.05
    effect: Optional[float] = None
    spending: str = "pocock"


def checked(settings: Settings) -> Settings:
    """The settings, or one line saying which option is wrong and what it takes. The cap is bounded as --seeds is
    (each seed makes a trial): a plan lists every seed it may use, so a huge cap would fill the memory."""
    if settings.metric not in TESTED:
        raise BnbenchError(f"--metric {settings.metric}: not a tested metric; choose one of {', '.join(TESTED)}")
    if not 0 < settings.alpha <= 0.5:
        raise BnbenchError(f"--alpha {settings.alpha:g}: must lie in (0, 0.5], e.g. 0.05")
    if settings.effect is not None and not (settings.effect > 0 and math.isfinite(settings.effect)):
        raise BnbenchError(
            f"--effect {settings.effect:g}: the equivalence margin must be a finite number above 0, e.g. --effect 1"
        )
    if settings.spending not in SPENDING:
        raise BnbenchError(f"--spending {settings.spending}: choose {' or '.join(SPENDING)}")
    if settings.max_seeds < FEWEST:
        raise BnbenchError(
            f"--max-seeds {settings.max_seeds}: a decision needs at least {FEWEST} seeds (fewer cannot show the skew "
            f"that breaks the tests); use --max-seeds {FEWEST} or more"
        )
    if settings.max_seeds > MAX_TRIALS:
        raise BnbenchError(
            f"--max-seeds {settings.max_seeds:,}: more seeds than the {MAX_TRIALS:,} trials one run may hold (a seed "
            f"trains every variant); use fewer, e.g. --max-seeds 50"
        )
    return settings


class Plan(BaseModel):
    """meta.json's `sequential.plan`, as `until_decided.new_plan` writes it, read back through this model: a hand
    edit is refused in one line, never decided on (a plan changed after the start is not the design whose error
    rate was promised) and never left to a traceback or a round that adds no seed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    metric: Literal[TESTED]
    alpha: float = Field(gt=0, le=0.5)
    effect: Optional[float] = Field(gt=0, allow_inf_nan=False)
    spending: Literal[SPENDING]
    max_seeds: int = Field(ge=2, le=MAX_TRIALS)
    round: int = Field(ge=1)
    seeds: list[int]  # every seed the run may use, in order
    looks: list[int]  # the seeds at each look
    comparisons: int = Field(ge=0)  # variants other than the baseline x sweep points (check_run: the config's)
    typed_seeds: Optional[list[int]] = None  # --seeds as the user typed them (None: the config's), for `show`

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or any(not 0 <= s < 2**63 for s in seeds):
            raise ValueError("must be distinct seeds, each in [0, 2**63)")
        return seeds

    @model_validator(mode="after")
    def _fits(self) -> "Plan":
        if len(self.seeds) != self.max_seeds:
            raise ValueError(f"seeds: lists {len(self.seeds)} seeds, not max_seeds ({self.max_seeds})")
        if not self.looks or self.looks != sorted(set(self.looks)) or self.looks[0] < 2:
            raise ValueError(f"looks: must increase from at least 2 seeds (got {brief(self.looks)})")
        if self.looks[-1] != self.max_seeds:
            raise ValueError(f"looks: the last must be max_seeds ({self.max_seeds}), got {self.looks[-1]}")
        return self


def plan_of(meta: Meta, run_dir: Optional[Path] = None) -> Optional[dict]:
    """The sequential plan a run was started with (None: a run of fixed seeds, without the field), checked: a
    damaged one is one line naming the field and the repair."""
    if not meta.has(KEY):
        return None
    found = meta.fields.sequential
    where = f"{RunFolder(run_dir).meta_file if run_dir else META}: {KEY}"
    if not isinstance(found, dict) or not isinstance(found.get("plan"), dict):
        raise _damaged(f"{where}.plan: missing or not a mapping of the plan's fields")
    try:
        return Plan.model_validate(found["plan"]).model_dump(mode="json")
    except ValidationError as e:
        first = e.errors()[0]  # a check across fields (no loc) names its field: 'looks: ...'
        problem = "is missing" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ")
        got = f" (got {brief(first.get('input'))})" if first["loc"] and first["type"] != "missing" else ""
        field = "".join(f"{part}: " for part in first["loc"])
        raise _damaged(f"{where}.plan.{field}{problem}{got}") from None


def _damaged(what: str) -> BnbenchError:
    return BnbenchError(f"{what}; put back the plan the run was started with, or start a new run with --until-decided")


def as_typed(meta: Meta) -> dict:
    """`show`'s `overrides` and `resumed` of a sequential run as the user ran it (nothing for another run, or a
    damaged plan, which `show` reports where it compares): the options typed, --until-decided and its own among
    them (each round's seeds, recorded as the run's --seeds, are the plan's), and the resumes the user asked for
    (each round after the first reopens the run as a grow, which meta.json's `resumed` lists too)."""
    try:
        plan = plan_of(meta)
    except BnbenchError:
        return {}
    recorded = meta.overrides()
    if plan is None or recorded is None:
        return {}
    options = [
        f"--{f.name.replace('_', '-')} {format(plan[f.name], 'g') if isinstance(plan[f.name], float) else plan[f.name]}"
        for f in fields(Settings)
        if plan[f.name] != f.default
    ]
    typed = overrides_text(recorded.model_copy(update={"seeds": plan["typed_seeds"]}))
    resumed = list(meta.fields.resumed)
    for change in meta.fields.grown:  # a round's grow, just after its reopen
        at = change.get("at") if isinstance(change, dict) else None
        before = [when for when in resumed if isinstance(when, str) and isinstance(at, str) and when <= at]
        if before:
            resumed.remove(before[-1])
    return {"overrides": " ".join([typed, "--until-decided", *options]).strip(), "resumed": resumed}


def overrides_text(recorded: Optional[Overrides]) -> str:
    """The options a run was started with on top of its config file, as typed: '--set training.epochs=1 --seeds
    0,1' ('' for none). A path set more than once (a run grown by epochs twice) shows its last value, where it was
    first set: what the run holds."""
    if recorded is None:
        return "(damaged in meta.json)"
    last = {text.partition("=")[0].strip(): text for text in recorded.set}
    parts = [f"--set {text}" for text in last.values()] + [f"--sweep {text}" for text in recorded.sweep]
    if recorded.seeds is not None:
        parts.append("--seeds " + ",".join(map(str, recorded.seeds)))
    if recorded.device:
        parts.append(f"--device {recorded.device}")
    return " ".join(parts)


def check_run(plan: dict, config: Config, run_dir: Path) -> None:
    """That the plan is the run's: its seeds are the plan's first ones through a look, and its comparisons are
    the config's (a plan whose seeds the run does not hold would add no seed, round after round)."""
    if len(config.variants) < 2:  # made before --until-decided refused it
        raise BnbenchError(
            f"{run_dir}: a run of one variant ({config.variants[0].name}) made with --until-decided has nothing to "
            f"decide (a decision compares a variant with the baseline); start a new run with a second variant"
        )
    have, where = list(config.seeds), f"{RunFolder(run_dir).meta_file}: {KEY}.plan"
    if len(have) not in plan["looks"] or plan["seeds"][: len(have)] != have:
        raise _damaged(f"{where}.seeds: the run holds seeds {brief(have)}, not the plan's first seeds through a look")
    comparisons = (len(config.variants) - 1) * len(TrialIndex.of(config).points)
    if plan["comparisons"] != comparisons:
        raise _damaged(f"{where}.comparisons: {plan['comparisons']}, but the run's config makes {comparisons}")


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
    check_run(plan, results.config, results.dir)
    seeds, held = plan["seeds"], len(results.config.seeds)  # check_run: the plan's first `held`, through a look
    taken = [k for k, n in enumerate(plan["looks"]) if n <= held]
    if results.status != "complete":  # the rows of the last look's seeds may not all be there yet
        taken = taken[:-1]
    names, base = _comparisons(results)
    rows = []
    if taken:
        d = _differences(results, plan, names, base)
        looks = exact_when_constant(d, decide(d, design(plan), len(taken)), design(plan))
        rows = [_row(looks, i, name) | _adjusted(d[i], looks, i, design(plan)) for i, name in enumerate(names)]
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


def _adjusted(d: np.ndarray, looks, i: int, plan_design: Design) -> dict:
    """A better/worse decision's estimate adjusted for where it stopped (stopped.median_unbiased), JSON-ready:
    {"adjusted": [estimate, low, high]}; None for other decisions and for a difference without spread."""
    found = None
    if looks.decision[i] in (BETTER, WORSE):
        found = median_unbiased(d, plan_design, int(looks.decided_at[i]))
    return {"adjusted": None if found is None else [float(x) for x in found]}


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
        "the table tests the seeds as if their number had been fixed in advance (its CI is a fixed-n one, "
        "narrower than the repeated CI above); the run added seeds until decided, so the sequential decisions "
        "and repeated CIs above are the ones that hold"
    )


def _line(c: dict, plan: dict, rec: dict, baseline: str) -> str:
    metric = METRICS[plan["metric"]]
    unit = f" {metric.unit}" if metric.unit else ""
    name = metric.label.removeprefix("final ").removesuffix(" %")
    head = f"{c['variant']}{' @ ' + c['where'] if c['where'] else ''} vs {baseline}:"
    k = c["decided_at"] if c["decided_at"] is not None else rec["looks_taken"] - 1
    digits = metric.digits  # a loss's differences are thousandths: 2 decimals would print "-0.00 [-0.01, -0.00]"
    numbers = _numbers(c, k, plan, digits, unit)
    seeds = f"{plan['looks'][k]} seeds"
    pairs = "" if c["n"][k] == plan["looks"][k] else f" ({c['n'][k]} pairs: the others diverged)"
    if c["decision"] in (BETTER, WORSE):
        small = plan["effect"] is not None and -plan["effect"] < c["low"][k] and c["high"][k] < plan["effect"]
        within = f" (within ±{plan['effect']:g}{unit}: smaller than the margin)" if small else ""
        return f"{head} {c['decision']} {name}, {numbers}{within}, decided after {seeds}{pairs}{_stop(c, plan)}"
    if c["decision"] == EQUIVALENT:
        return f"{head} equivalent {name} within ±{plan['effect']:g}{unit}, {numbers}, decided after {seeds}{pairs}"
    text = f"{head} undecided after {seeds}{pairs}: {name} {numbers}"
    if rec["finished"] and c["sd"][k] and c["bound"][k] is not None:  # sd 0: no t-test, no power to speak of
        found = detectable(c["n"][k], c["sd"][k], _nominal(c["bound"][k], c["n"][k]))
        text += f"; could detect ≥ {format_size(found, digits)}{unit} ({POWER:.0%} power at its last look)"
    return text


def _stop(c: dict, plan: dict) -> str:
    """The estimate adjusted for the stop (a mean where a run stopped because it looked large overstates the
    effect): '; adjusted for the stop: +6.31 pts [+3.40, +9.10] (median-unbiased, 95% CI)'."""
    if not c.get("adjusted"):
        return ""
    metric = METRICS[plan["metric"]]
    estimate, low, high = c["adjusted"]
    unit = f" {metric.unit}" if metric.unit else ""
    level = _level(plan).removeprefix("repeated ")
    interval = _interval(low, high, metric.digits)
    return f"; adjusted for the stop: {_signed(estimate, metric.digits)}{unit} {interval} (median-unbiased, {level})"


def _numbers(c: dict, k: int, plan: dict, digits: int, unit: str) -> str:
    """The estimate at look k and its repeated CI; for a constant difference (sd 0: no t-interval) the exact
    sign-flip p against the look's level instead, which is what decides it (sequential.exact_when_constant)."""
    mean, n = f"{_signed(c['mean'][k], digits)}{unit}", c["n"][k]
    if n < FEWEST:
        return f"{mean} (no decision before {FEWEST} pairs)"
    if c["sd"][k] != 0 or c["bound"][k] is None:  # no bound: no new pair, the look decides nothing
        return f"{mean}, {_level(plan)} {_interval(c['low'][k], c['high'][k], digits)}"
    level, p = _nominal(c["bound"][k], n), 1.0 if c["mean"][k] == 0 else 2.0 / 2**n  # every sign agrees
    held = f"{'≤' if p <= level else '>'} {level:.3g}, this look's level"
    return f"{mean} on every pair (no spread: exact sign-flip p={format_p(p, level)} {held})"


def design_line(plan: dict, rec: dict) -> str:
    """How it was decided: the looks, the spending function, alpha and its split, the boundaries used."""
    m = plan["comparisons"]
    taken = max(rec["looks_taken"], 1)
    bounds = _json(decide(np.zeros((1, plan["looks"][-1])), design(plan), taken).bound[0])  # no pair missing
    split = f" over {m} comparisons (Bonferroni: {plan['alpha'] / m:.3g} each)" if m > 1 else ""
    margin = f", equivalence margin ±{plan['effect']:g}" if plan["effect"] is not None else ""
    return (
        f"sequential design: looks after {', '.join(map(str, plan['looks']))} seeds (at most {plan['looks'][-1]}), "
        f"{SPENDING_NAMES[plan['spending']]} alpha spending, alpha {plan['alpha']:g}{split}{margin}; "
        f"{_level(plan)}s (Student's and skew-corrected t), boundaries |t| ≥ "
        f"{_bounds_text(bounds)} at the looks taken{_used(rec, bounds)}; no decision before {FEWEST} pairs"
    )


def _used(rec: dict, planned: list) -> str:
    """The boundaries a comparison used where they are not the planned ones (those of a comparison with no pair
    missing): a missing pair (a diverged trial) changes a look's n and so its boundary (5.05 in place of 3.87 at 4
    pairs of 5)."""
    changed = [
        f"{c['variant']}{' @ ' + c['where'] if c['where'] else ''} {_bounds_text(c['bound'][: len(planned)])}"
        for c in rec["comparisons"]
        if any(
            (b is None) != (p is None) or (b is not None and not math.isclose(b, p))
            for b, p in zip(c["bound"], planned)
        )
    ]
    return f" (planned; used, the pairs lost changing them: {'; '.join(changed)})" if changed else ""


def _bounds_text(bounds: list) -> str:
    """'3.87, 2.97'; ∞ at a look that decides nothing (no new pair, or fewer than FEWEST pairs)."""
    return ", ".join("∞" if b is None else f"{b:.2f}" for b in bounds)


def _level(plan: dict) -> str:
    """What a decision's interval is: a repeated CI, each comparison's at alpha / m (together: 1 - alpha)."""
    return f"repeated {100 * (1 - plan['alpha'] / plan['comparisons']):.4g}% CI"


def _signed(x: Optional[float], digits: int) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


def _interval(low: Optional[float], high: Optional[float], digits: int) -> str:
    return "[no interval]" if low is None or high is None else f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def _nominal(bound: float, n: int) -> float:
    """The two-sided level of a t boundary on n pairs."""
    from scipy.special import stdtr

    return float(2 * stdtr(n - 1, -bound))
