"""`bnbench.run`: train an experiment from Python as `bnbench run` trains it from a shell. The options are the
CLI's, as Python values, handed to the CLI's own steps (runner.execute.plan, runner.session), so that a config is
checked the same way, fails with the same one line (a BnbenchError), and trains the same rows. Nothing is printed
unless `progress=True` asks for the CLI's display (rich draws it in Jupyter too)."""

import itertools
import json
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Optional, Union

from bnbench.api.runs import PathLike, Run
from bnbench.errors import BnbenchError
from bnbench.experiment.config import MAX_TRIALS
from bnbench.runner.seeds import seed_list

Options = Union[str, Iterable[str], Mapping[str, Any], None]


def run(
    config: Union[PathLike, Mapping[str, Any]],
    *,
    seeds: Union[str, Iterable[int], None] = None,
    set: Options = None,  # the CLI's --set
    sweep: Options = None,
    out: PathLike = "results",
    jobs: int = 1,
    backend: str = "local",
    device: Optional[str] = None,
    progress: bool = False,
    resume: bool = False,
    tags: Union[str, Iterable[str]] = (),
    note: Optional[str] = None,
    address: Optional[str] = None,
    gpus_per_trial: Optional[float] = None,
    until_decided: bool = False,
    max_seeds: Optional[int] = None,
    metric: Optional[str] = None,
    alpha: Optional[float] = None,
    effect: Optional[float] = None,
    spending: Optional[str] = None,
) -> Run:
    """`bnbench run CONFIG` from Python; returns the run folder as a `Run`.

    `config`: a config file, a shipped config's name ("quick"), or a dict of config fields as a YAML file holds
    them; with `resume=True`, a run folder to continue (or grow, by `seeds` and `set={"training.epochs": N}`).
    `seeds`: "0-4,7" as --seeds takes it, or integers (`range(5)`). `set`, `sweep`: 'PATH=VALUE' and
    'PATH=V1,V2' texts as the CLI takes them (one or a list), or a dict ({"training.epochs": 1},
    {"optimizer.lr": [1e-3, 3e-3]}). The other options are `bnbench run`'s of the same names (`tags` its --tag).
    A run with nothing left to do returns its folder untouched."""
    from bnbench.backends.dispatch import Dispatch  # here: torch takes seconds to import, and compare needs none
    from bnbench.runner.execute import plan
    from bnbench.runner.session import asked_settings, proceeding, train

    seed_numbers = _seeds(seeds)  # checked in the CLI's order, so that the first mistake is the one named
    dispatch = Dispatch(backend, jobs, address, gpus_per_trial, quiet=not progress)
    asked = asked_settings(until_decided, max_seeds, metric, alpha, effect, spending)
    todo = plan(
        _config(config),
        resume=resume,
        set_=_options(set, _json),
        seeds=seed_numbers,
        device=device,
        out=Path(out),
        sweeps=_options(sweep, lambda values: _json(list(values))[1:-1]),
        tags=(tags,) if isinstance(tags, str) else tuple(tags),
        note=note,
    )
    sequential = proceeding(todo, until_decided, asked)
    if sequential is False:
        return Run(todo.run_dir)
    console = _console() if progress else None
    run_dir, lines = train(todo, sequential, dispatch, None, lambda: _reporter(console))
    for line in lines if console else ():
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    return Run(run_dir)


def _config(config) -> Union[str, dict]:
    """The CONFIG that `plan` takes: a path or name as text, or a plain dict of fields (a copy)."""
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, (str, Path)):
        return str(config)
    raise BnbenchError(
        f"config: expected a config file, a shipped config's name or a dict of config fields, got "
        f"{type(config).__name__}"
    )


def _seeds(seeds) -> Optional[list[int]]:
    """--seeds' text by its rules, or an iterable of integers; a huge iterable is refused before it is listed, as
    --seeds refuses a huge range (each seed makes a trial)."""
    if seeds is None or isinstance(seeds, str):
        return seed_list(seeds)
    listed = list(itertools.islice(seeds, MAX_TRIALS + 1))
    if len(listed) > MAX_TRIALS:
        raise BnbenchError(
            f"seeds: more than the {MAX_TRIALS:,} trials one run may hold; run fewer seeds, or split them into "
            f"several runs (compare pools them)"
        )
    return listed


def _options(given: Options, text: Callable[[Any], str]) -> tuple[str, ...]:
    """--set or --sweep options as the CLI's texts: one text, several, or a dict whose values are written as
    as the CLI's texts by `text`."""
    if given is None:
        return ()
    if isinstance(given, str):
        return (given,)
    if isinstance(given, Mapping):
        return tuple(f"{path}={text(value)}" for path, value in given.items())
    return tuple(given)


def _json(value) -> str:
    """A value as the CLI's text of it: JSON is YAML, and without spaces a list reads as one typed ('[64,32]')."""
    return json.dumps(value, separators=(",", ":"))


def _console():
    """rich's console, made when progress is asked for (rich draws into Jupyter as into a terminal)."""
    from rich.console import Console

    return Console()


def _reporter(console):
    """The CLI's display of a run's progress on `console`; nothing without one."""
    from bnbench.runner.state import Silent

    if console is None:
        return nullcontext(Silent())
    from bnbench.rundir.log import TRIAL
    from bnbench.views.progress import RichReporter

    return RichReporter(console, TRIAL)
