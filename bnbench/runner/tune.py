"""`bnbench tune`: every variant at its own best setting, chosen on the validation split, then compared on test.

One tune folder, `OUT/<name>/<tune id>/`, holds `tune.json` (what was asked, the stage reached, the choices) and
three ordinary run folders, trained in order by the runner as `bnbench run` trains any run (`--jobs`, `--backend
ray`, the engine that fits, resume):
- `tuning/`: every variant x grid point x tuning seed (the grid is the run's sweep); each variant's setting is
  chosen from its validation metric alone (`analysis.tuning`): the same grid, seeds and epochs for every variant;
- `tuned/`: each variant at its own chosen setting (the variant's `overrides`) on the final seeds, fresh ones;
- `shared/`: every variant at the config's own setting on the same final seeds: the equal-setting comparison.
Only the tuned and shared stages are compared on test. `next_stage` says what is left, so that an interrupted tune
continues where it stopped: a stage begun is resumed; the choices, made once the tuning stage is complete, are kept
in tune.json.

Only optimizer settings are tuned: a variant's own setting is an `overrides` entry, which is optimizer fields only
(config.Config), so that what compare reads per run (batch size, epochs, seeds) stays one config.
"""

import json
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Callable, Optional, Union

from bnbench.analysis.decisions import Settings
from bnbench.analysis.tuning import chosen
from bnbench.backends.dispatch import Dispatch
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.loading import DICT_SOURCE, load_config, parse_sweep, validate
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.lock import stage_run_dir
from bnbench.rundir.meta import now
from bnbench.rundir.tunes import STAGES, Tune, final_seeds, read
from bnbench.runner.execute import Plan, execute
from bnbench.runner.state import Reporter, Silent
from bnbench.runner.until_decided import is_sequential, new_plan, pending
from bnbench.runner.until_decided import run as rounds

METRICS = ("val_acc", "val_loss")
MARGIN = {"val_acc": 1.0, "val_loss": 0.05}  # points of accuracy; loss units
TUNE_SEEDS = [0, 1, 2]
GRID_EXAMPLE = "--grid optimizer.lr=1e-4,3e-4,1e-3,3e-3,1e-2"


def reopen(tune_dir: Path, given: dict[str, Any]) -> Tune:
    """`tune --resume TUNE_DIR`: the tune, once none of the options that made it is `given` again (a value that is
    not empty): a tune keeps the settings it began with."""
    tune = read(tune_dir)
    again = [option for option, value in given.items() if value not in (None, False, [], ())]
    if again:
        raise BnbenchError(
            f"{again[0]}: a tune keeps the settings it began with; continue it with: bnbench tune --resume {tune_dir}"
        )
    return tune


# ---- a new tune ----------------------------------------------------------------------------------------------------


def start(
    config: Union[str, dict],
    grid: tuple[str, ...],
    *,
    tune_seeds: Optional[list[int]] = None,
    seeds: Optional[list[int]] = None,
    metric: str = "val_acc",
    margin: Optional[float] = None,
    set_: tuple[str, ...] = (),
    device: Optional[str] = None,
    out: Path = Path("results"),
    argv: Optional[list[str]] = None,
    until_decided: Optional[dict] = None,
) -> Tune:
    """A new tune folder of CONFIG (with --set, --device), every option checked first (one line for each mistake);
    nothing is trained yet (`next_stage`). `until_decided`: the --until-decided settings given ({} for none) when
    the tuned stage adds seeds until decided (the shared stage then trains the seeds it ended with)."""
    if metric not in METRICS:
        raise BnbenchError(f"--metric {metric}: tune chooses on the validation split; use {' or '.join(METRICS)}")
    margin = MARGIN[metric] if margin is None else margin
    if not margin >= 0:
        raise BnbenchError(f"--margin {margin}: expected 0 or more ({_margin_unit(metric)})")
    base, source = load_config(config, tuple(set_), None, device)
    where = config if isinstance(config, str) else DICT_SOURCE  # how a message names the config
    axes = _grid(grid, base)
    if base.dataset.validation is None:
        raise BnbenchError(
            f"{where}: has no validation split, and tuning must not read the test set; add dataset.validation: "
            f"0.1 to the config, or --set dataset.validation=0.1"
        )
    if base.sweep:
        raise BnbenchError(
            f"{where}: sweeps {', '.join(base.sweep)}; tune sweeps its --grid itself: remove the config's sweep "
            f"(or tune each of its values in a run of its own, --set)"
        )
    tune_seeds = TUNE_SEEDS if tune_seeds is None else tune_seeds
    seeds = base.seeds if seeds is None else seeds
    _disjoint(tune_seeds, seeds, seeds is base.seeds)
    spec = {
        "config": base.model_dump(mode="json"),
        "source": str(source.resolve()) if source is not None else None,
        "grid": axes,  # as --sweep reads it: the tuning stage's sweep
        "set": list(set_),
        "device": device,
        "grid_options": list(grid),
        "tune_seeds": tune_seeds,
        "final_seeds": seeds,
        "metric": metric,
        "margin": margin,
        "until_decided": until_decided,
        "command": argv or [],
        "started": now(),
    }
    _stage_config(Tune(Path(), spec, "tuning"), "tuning")  # every tuning trial valid before a folder is made
    if until_decided is not None:  # its settings checked now, not after the tuning stage
        new_plan(base.model_copy(update={"seeds": seeds}), Settings(**until_decided), seeds, tuple(tune_seeds))
    staging, tune_dir, lock = stage_run_dir(out, base.name)
    try:
        Tune(staging, spec, "tuning").write()
        os.rename(staging, tune_dir)
    finally:
        lock.release()
    return read(tune_dir)


def _grid(texts: tuple[str, ...], base: Config) -> dict[str, list]:
    """{path: values} of the --grid options, parsed as --sweep parses them; optimizer fields only, two or more
    values each, each path once."""
    if not texts:
        raise BnbenchError(f"--grid: give the settings to tune, e.g. {GRID_EXAMPLE}")
    axes: dict[str, list] = {}
    for text in texts:
        try:
            path, values = parse_sweep(text)
        except BnbenchError as e:
            raise BnbenchError(str(e).replace("--sweep", "--grid")) from None
        if not path.startswith("optimizer."):
            raise BnbenchError(
                f"--grid {text}: tune chooses optimizer settings (each variant's own, e.g. optimizer.lr); compare "
                f"other fields with bnbench run --sweep"
            )
        if path in axes:
            raise BnbenchError(f"--grid {text}: {path} is given twice; give each path once")
        if len(values) < 2:
            raise BnbenchError(
                f"--grid {text}: one value leaves nothing to choose; give two or more, e.g. {GRID_EXAMPLE}"
            )
        validate({**base.model_dump(mode="json"), "sweep": {path: values}}, f"--grid {text}", new=True)
        axes[path] = values
    return axes


def _disjoint(tune_seeds: list[int], seeds: list[int], from_config: bool) -> None:
    """The final seeds (of the tuned and shared stages) are fresh: none of them chose a setting."""
    shared = [s for s in seeds if s in set(tune_seeds)]
    if shared:
        where = "the config's seeds" if from_config else "--seeds"
        fresh = max([*tune_seeds, *seeds]) + 1
        raise BnbenchError(
            f"{where} {_seeds(seeds)}: {_seeds(shared)} also tune (--tune-seeds {_seeds(tune_seeds)}); the final "
            f"comparison needs fresh seeds, e.g. --seeds {fresh}-{fresh + len(seeds) - 1}"
        )


def _seeds(seeds: list[int]) -> str:
    return ",".join(map(str, seeds))


def _margin_unit(metric: str) -> str:
    return "points of accuracy" if metric == "val_acc" else "loss units"


# ---- the stages ----------------------------------------------------------------------------------------------------


def next_stage(tune: Tune) -> tuple[Tune, Optional[Plan]]:
    """The tune (tune.json brought up to date) and the plan of what is left to train: a stage to start or resume,
    or None when all three are complete. The choices are made once the tuning stage is complete."""
    for stage in STAGES:
        folder = RunFolder(tune.stage_dir(stage))
        if stage == "tuned" and tune.choices is None:
            tune = tune.write(choices=chosen(tune))
        if not folder.path.exists():
            tune = tune.write(stage=stage)
            plan = Plan(
                "new",
                f"the {stage} stage of {tune.dir}",
                run_dir=folder.path,
                config=_stage_config(tune, stage),
                source=_source(tune),
                out=tune.dir,
                overrides=_options(tune, stage),
                avoid=tuple(tune.spec["tune_seeds"]),
            )
            return tune, plan
        if folder.status(folder.meta()) != "complete":
            return tune.write(stage=stage), Plan("resume", f"the {stage} stage is not complete", folder.path)
        if is_sequential(folder.path) and pending(folder.path):  # stopped between two rounds
            return tune.write(stage=stage), Plan("nothing", f"the {stage} stage has rounds left", folder.path)
    return (tune if tune.stage == "complete" else tune.write(stage="complete")), None


def train(
    tune: Tune,
    dispatch: Dispatch = Dispatch(),
    argv: Optional[list[str]] = None,
    reporting: Callable[[], AbstractContextManager[Reporter]] = lambda: nullcontext(Silent()),
) -> Tune:
    """Train what is left of `tune`, stage after stage, each under a reporter that `reporting` makes; returns the
    tune, complete. A stopped stage's message says to continue the tune (which resumes the stage), not the stage."""
    while True:
        tune, todo = next_stage(tune)
        if todo is None:
            return tune
        sequential = _sequential(tune, todo)
        try:
            with reporting() as reporter:
                if sequential:
                    rounds(todo, sequential, dispatch, argv, reporter)
                else:
                    execute(todo, dispatch, argv, reporter)
        except BnbenchError as e:
            e.args = (str(e).replace(f"bnbench run --resume {todo.run_dir}", f"bnbench tune --resume {tune.dir}"),)
            raise


def _sequential(tune: Tune, todo: Plan) -> "Settings | bool":
    """How a stage trains: the --until-decided settings for a new tuned stage of a tune that asked for them, True
    for a sequential stage continued, False for a stage of fixed seeds."""
    if todo.kind == "new":
        asked = tune.spec.get("until_decided")
        return Settings(**asked) if asked is not None and todo.run_dir.name == "tuned" else False
    return is_sequential(todo.run_dir)


def _source(tune: Tune) -> Optional[Path]:
    return Path(tune.spec["source"]) if tune.spec["source"] else None


def _options(tune: Tune, stage: str) -> dict:
    """meta.json's `overrides` of a stage: the options that make its config from the source file as `bnbench run`
    would (so that `show` says them and a resume finds the file unchanged): the tune's --set, a variant's chosen
    setting as a --set of its overrides, the stage's seeds, and the grid as --sweep."""
    tuning = stage == "tuning"
    chosen = [
        f"variants.{i}.overrides={json.dumps(tune.choices[v['name']])}"
        for i, v in enumerate(tune.spec["config"]["variants"])
        if stage == "tuned"
    ]
    return {
        "set": tune.spec["set"] + chosen,
        "seeds": tune.spec["tune_seeds"] if tuning else final_seeds(tune),
        "device": tune.spec["device"],
        "sweep": tune.spec["grid_options"] if tuning else [],
    }


def _stage_config(tune: Tune, stage: str) -> Config:
    """The config a stage trains: tuning the grid as its sweep on the tuning seeds; tuned each variant with its
    chosen point as its overrides, and shared the config as given, both on the final seeds."""
    raw = dict(tune.spec["config"])
    if stage == "tuning":
        raw |= {"seeds": tune.spec["tune_seeds"], "sweep": tune.spec["grid"]}
    else:
        raw["seeds"] = final_seeds(tune)
    if stage == "tuned":
        raw["variants"] = [{**v, "overrides": tune.choices[v["name"]]} for v in raw["variants"]]
    return validate(raw, f"{tune.dir} ({stage})", new=True)
