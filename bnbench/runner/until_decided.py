"""`bnbench run CONFIG --until-decided`: seeds are added in rounds until every comparison is decided.

The plan is made before the first trial: every seed the run may use, in order (the config's seeds, then the
smallest unused ones), and the looks (after ROUND seeds or the config's, if more; then every ROUND more, up to
the cap). After each round the group-sequential design of `analysis.sequential` decides each variant x sweep
point against the baseline: better, worse, equivalent within the margin, or undecided; the rounds stop when
nothing is undecided or the cap is reached.

Each round is a grow of the same run folder (`runner.plan`/`execute`), so it trains with `--jobs` and `--backend
ray` as any run does, and an interrupted run continues with `bnbench run --resume RUN`: the plan is in meta.json
and every look is worked out again from the rows (`analysis.decisions`), so it takes the seeds and decisions an
uninterrupted run takes (a run stopped as its last look was written, complete but with meta.json's record behind
its rows, takes that look and writes its ending). Every variant trains every round's seeds, decided or not: the
run stays a complete grid that `compare`, pooling and growing read as any other, and the baseline trains every
seed anyway.
"""

from dataclasses import replace
from pathlib import Path
from typing import Optional

from bnbench.analysis.decisions import KEY, Settings, check_run, checked, lines, plan_of, record
from bnbench.analysis.reading import TrialIndex, load_run
from bnbench.analysis.sequential import schedule
from bnbench.backends.dispatch import Dispatch
from bnbench.errors import BnbenchError, Interrupted
from bnbench.experiment.config import MAX_TRIALS, Config
from bnbench.experiment.loading import validate
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.log import noted
from bnbench.runner.execute import Plan, execute
from bnbench.runner.state import Reporter, Silent

ROUND = 5  # seeds a round, and the fewest the first look has


def new_plan(
    config: Config, settings: Settings, typed_seeds: Optional[list[int]] = None, avoid: tuple[int, ...] = ()
) -> dict:
    """The plan a new run is started with (meta.json's `sequential.plan`); `typed_seeds`: --seeds as typed; `avoid`:
    seeds it may not add (those that chose a tune's settings)."""
    s = checked(settings)
    if len(config.variants) < 2:
        raise BnbenchError(
            f"--until-decided: the config has one variant ({config.variants[0].name}), and a decision compares a "
            f"variant with the baseline; give the config (its `variants`) a second variant"
        )
    if s.metric.startswith("val_") and config.dataset.validation is None:
        raise BnbenchError(
            f"--metric {s.metric}: the config has no validation split; hold one out with dataset.validation "
            f"(e.g. --set dataset.validation=0.1), or decide on test_acc"
        )
    if len(config.seeds) > s.max_seeds:
        raise BnbenchError(
            f"--max-seeds {s.max_seeds}: below the {len(config.seeds)} seeds the config starts with; raise it or "
            f"start with fewer (--seeds)"
        )
    points = len(TrialIndex.of(config).points)
    per_seed = len(config.variants) * points
    if s.max_seeds * per_seed > MAX_TRIALS:
        raise BnbenchError(
            f"--max-seeds {s.max_seeds:,}: {s.max_seeds:,} seeds x {per_seed} trials a seed, more than the "
            f"{MAX_TRIALS:,} trials one run may hold; use --max-seeds {MAX_TRIALS // per_seed} or fewer"
        )
    started = set(config.seeds) | set(avoid)
    extra = (seed for seed in range(MAX_TRIALS + len(started)) if seed not in started)
    seeds = list(config.seeds) + [next(extra) for _ in range(s.max_seeds - len(config.seeds))]
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
        "typed_seeds": typed_seeds,
    }


def run(
    todo: Plan,
    settings: "Settings | bool",
    dispatch: Dispatch = Dispatch(),
    argv: Optional[list[str]] = None,
    reporter: Reporter = Silent(),
) -> Path:
    """Carry out `todo` (a new run, or a sequential run to continue) round by round until decided; returns the
    run folder. `settings` for a new run (a run keeps the plan it started with)."""
    if todo.kind == "new":
        settings = settings if isinstance(settings, Settings) else Settings()
        plan = new_plan(todo.config, settings, todo.overrides.get("seeds"), todo.avoid)
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
    """The plan of a sequential run being continued, checked against the run; `asked` (options of
    --until-decided) is refused: the plan cannot change (a design chosen after seeing results is not the design
    whose error rate was promised)."""
    plan = plan_of(RunFolder(run_dir).meta(), run_dir)
    if plan is None:
        raise BnbenchError(
            f"{run_dir}: was not started with --until-decided, and a run decides in rounds only from its start; "
            f"start a new run with --until-decided"
        )
    check_run(plan, RunFolder(run_dir).config(), run_dir)
    if asked:
        raise BnbenchError(
            f"{run_dir}: its sequential plan is fixed (looks after {', '.join(map(str, plan['looks']))} seeds, "
            f"alpha {plan['alpha']:g}); continue it with: bnbench run --resume {run_dir}"
        )
    return plan


def is_sequential(run_dir: Optional[Path]) -> bool:
    return run_dir is not None and RunFolder(run_dir).meta().has(KEY)


def pending(run_dir: Path) -> bool:
    """Whether a complete sequential run has work left: rounds (it stopped between two), or its last look, when
    meta.json's record is not the one its rows give (stopped before the look was written: the ending is owed)."""
    meta = RunFolder(run_dir).meta()
    rec = record(load_run(run_dir), plan_of(meta, run_dir))
    return not rec["finished"] or meta.fields.sequential.get("record") != rec


def _through(plan: dict, rec: dict) -> list[int]:
    """Every seed through the next look (growing adds the ones the run lacks)."""
    return plan["seeds"][: plan["looks"][rec["looks_taken"]]]


def look(run_dir: Path, plan: dict, reporter: Reporter) -> dict:
    """Take the looks the run's rows allow, write them to meta.json (removing what a write that was killed left)
    and say them: to run.log, and to the terminal unless the run ends here (its verdict says them then)."""
    results = load_run(run_dir)
    rec = record(results, plan)
    folder = RunFolder(run_dir)
    lock = folder.lock().acquire()
    try:
        folder.remove_temporaries()
        meta = folder.meta()
        meta.update(**{KEY: {"plan": plan, "record": rec}})
        folder.write_meta(meta)
    finally:
        lock.release()
    fresh = [c for c in rec["comparisons"] if c["decided_at"] in (None, rec["looks_taken"] - 1)]  # decided before: said
    said = [
        f"look {rec['looks_taken']} ({rec['seeds']} seeds): {line}"
        for line in lines(plan, rec | {"comparisons": fresh}, results.config.baseline)[:-1]
    ]
    noted(run_dir, said)
    for line in said if not rec["finished"] else []:
        reporter.note(line)
    return rec
