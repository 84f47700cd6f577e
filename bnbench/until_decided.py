"""`bnbench run CONFIG --until-decided`: seeds are added in rounds until every comparison is decided.

The plan is made before the first trial: every seed the run may use, in order (the config's seeds, then the
smallest unused ones), and the looks (after ROUND seeds or the config's, if more; then every ROUND more, up to
the cap). After each round the group-sequential design of `analysis.sequential` decides each variant x sweep
point against the baseline: better, worse, equivalent within the margin, or undecided; the rounds stop when
nothing is undecided or the cap is reached.

Each round is a grow of the same run folder (`runner.plan`/`execute`), so it trains with `--jobs` and `--backend
ray` as any run does, and an interrupted run continues with `bnbench run --resume RUN`: the plan is in meta.json
and every look is worked out again from the rows (`analysis.decisions`), so it takes the seeds and decisions an
uninterrupted run takes. Every variant trains every round's seeds, decided or not: the run stays a complete grid
that `compare`, pooling and growing read as any other, and the baseline trains every seed anyway.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from . import backends, store
from .analysis.columns import METRICS, PRIMARY
from .analysis.decisions import KEY, lines, plan_of, record
from .analysis.reading import TrialIndex, load_run
from .analysis.sequential import SPENDING, schedule
from .config import Config
from .errors import BnbenchError, Interrupted
from .experiment import validate
from .log import noted
from .run_state import Reporter, Silent
from .runner import Plan, execute

ROUND = 5  # seeds a round, and the fewest the first look has


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
    """The settings, or one line saying which option is wrong and what it takes."""
    tested = [name for name, m in METRICS.items() if m.tested]
    if settings.metric not in tested:
        raise BnbenchError(f"--metric {settings.metric}: not a tested metric; choose one of {', '.join(tested)}")
    if not 0 < settings.alpha <= 0.5:
        raise BnbenchError(f"--alpha {settings.alpha:g}: must lie in (0, 0.5], e.g. 0.05")
    if settings.effect is not None and not settings.effect > 0:
        raise BnbenchError(f"--effect {settings.effect:g}: the equivalence margin must be above 0, e.g. --effect 1")
    if settings.spending not in SPENDING:
        raise BnbenchError(f"--spending {settings.spending}: choose {' or '.join(SPENDING)}")
    if settings.max_seeds < 2:
        raise BnbenchError(f"--max-seeds {settings.max_seeds}: a paired comparison needs at least 2 seeds")
    return settings


def new_plan(config: Config, settings: Settings) -> dict:
    """The plan a new run is started with (meta.json's `sequential.plan`)."""
    s = checked(settings)
    if len(config.seeds) > s.max_seeds:
        raise BnbenchError(
            f"--max-seeds {s.max_seeds}: below the {len(config.seeds)} seeds the config starts with; raise it or "
            f"start with fewer (--seeds)"
        )
    extra = (seed for seed in range(10**9) if seed not in set(config.seeds))
    seeds = list(config.seeds) + [next(extra) for _ in range(s.max_seeds - len(config.seeds))]
    points = len(TrialIndex.of(config).points)
    return {
        "metric": s.metric,
        "alpha": s.alpha,
        "effect": s.effect,
        "spending": s.spending,
        "max_seeds": s.max_seeds,
        "round": ROUND,
        "seeds": seeds,
        "looks": list(schedule(max(len(config.seeds), ROUND), s.max_seeds, ROUND)),
        "comparisons": (len(config.variants) - 1) * points,
    }


def run(
    todo: Plan,
    settings: "Settings | bool",
    dispatch: backends.Dispatch = backends.Dispatch(),
    argv: Optional[list[str]] = None,
    reporter: Reporter = Silent(),
) -> Path:
    """Carry out `todo` (a new run, or a sequential run to continue) round by round until decided; returns the
    run folder. `settings` for a new run (a run keeps the plan it started with)."""
    if todo.kind == "new":
        plan = new_plan(todo.config, settings if isinstance(settings, Settings) else Settings())
        first = plan["seeds"][: plan["looks"][0]]
        config = validate(todo.config.model_dump(mode="json") | {"seeds": first}, str(todo.source))
        meta = todo.meta | {KEY: {"plan": plan, "record": None}}
        todo = replace(todo, config=config, overrides=todo.overrides | {"seeds": first}, meta=meta)
        run_dir = execute(todo, dispatch, argv, reporter)
    else:
        run_dir = todo.run_dir
        plan = continued(run_dir)
        if todo.kind == "resume":
            execute(todo, dispatch, argv, reporter)
    while True:
        try:
            rec = look(run_dir, plan, reporter)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted between two rounds; nothing finished is lost. Resume with: bnbench run --resume {run_dir}"
            ) from None
        if rec["finished"]:
            return run_dir
        grow = Plan("grow", f"{run_dir} grows by seeds {rec['next_seeds']}", run_dir, seeds=_through(plan, rec))
        execute(grow, dispatch, argv, reporter)


def continued(run_dir: Path, asked: Optional[dict] = None) -> dict:
    """The plan of a sequential run being continued; `asked` (options of --until-decided) is refused: the plan
    cannot change (a design chosen after seeing results is not the design whose error rate was promised)."""
    plan = plan_of(store.read_meta(run_dir))
    if plan is None:
        raise BnbenchError(
            f"{run_dir}: was not started with --until-decided, and a run decides in rounds only from its start; "
            f"start a new run with --until-decided"
        )
    if asked:
        raise BnbenchError(
            f"{run_dir}: its sequential plan is fixed (looks after {', '.join(map(str, plan['looks']))} seeds, "
            f"alpha {plan['alpha']:g}); continue it with: bnbench run --resume {run_dir}"
        )
    return plan


def is_sequential(run_dir: Optional[Path]) -> bool:
    return run_dir is not None and plan_of(store.read_meta(run_dir)) is not None


def pending(run_dir: Path) -> bool:
    """Whether a complete sequential run has rounds left (it stopped between two)."""
    plan = plan_of(store.read_meta(run_dir))
    return not record(load_run(run_dir), plan)["finished"]


def _through(plan: dict, rec: dict) -> list[int]:
    """Every seed through the next look (growing adds the ones the run lacks)."""
    return plan["seeds"][: plan["looks"][rec["looks_taken"]]]


def look(run_dir: Path, plan: dict, reporter: Reporter) -> dict:
    """Take the looks the run's rows allow, write them to meta.json and say them (terminal and run.log)."""
    results = load_run(run_dir)
    rec = record(results, plan)
    lock = store.RunLock(run_dir).acquire()
    try:
        meta = store.read_meta(run_dir)
        meta[KEY] = {"plan": plan, "record": rec}
        store.write_meta(run_dir, meta)
    finally:
        lock.release()
    fresh = [c for c in rec["comparisons"] if c["decided_at"] in (None, rec["looks_taken"] - 1)]  # decided before: said
    said = [
        f"look {rec['looks_taken']} ({rec['seeds']} seeds): {line}"
        for line in lines(plan, rec | {"comparisons": fresh}, results.config.baseline)[:-1]
    ]
    noted(run_dir, said)
    for line in said:
        reporter.note(line)
    return rec
