"""One `bnbench run` past its options: the --until-decided settings it was given, which way it goes on (a new or
continued sequential run, a plain run, or nothing to do), and the run itself up to the verdict lines it ends with."""

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable, Optional

from bnbench.backends.dispatch import Dispatch
from bnbench.errors import BnbenchError
from bnbench.rundir.log import finished
from bnbench.runner.closing import ClosingLines
from bnbench.runner.execute import Plan, execute
from bnbench.runner.state import Reporter
from bnbench.runner.until_decided import Settings, continued, is_sequential, pending
from bnbench.runner.until_decided import run as rounds


def asked_settings(
    until_decided: bool,
    max_seeds: Optional[int],
    metric: Optional[str],
    alpha: Optional[float],
    effect: Optional[float],
    spending: Optional[str],
) -> dict:
    """The --until-decided settings given (those not None); one given without --until-decided is refused, the
    first of them named."""
    settings = {"max_seeds": max_seeds, "metric": metric, "alpha": alpha, "effect": effect, "spending": spending}
    asked = {name: value for name, value in settings.items() if value is not None}
    if asked and not until_decided:
        raise BnbenchError(f"--{next(iter(asked)).replace('_', '-')}: only with --until-decided")
    return asked


def proceeding(todo: Plan, until_decided: bool, asked: dict) -> "Settings | bool | None":
    """How the run goes on: the settings of --until-decided for a new run, True for a sequential run continued,
    None for a plain run, False for nothing to do. A sequential run keeps its plan: `asked` is refused for it."""
    if todo.kind == "new":
        return Settings(**asked) if until_decided else None
    if not (until_decided or is_sequential(todo.run_dir)):
        return None if todo.kind != "nothing" else False
    continued(todo.run_dir, None if not asked else asked)
    if todo.kind == "grow":
        raise BnbenchError(
            f"{todo.run_dir}: a sequential run adds the seeds its plan says, round by round; continue it with: "
            f"bnbench run --resume {todo.run_dir}"
        )
    return True if todo.kind == "resume" or pending(todo.run_dir) else False


def train(
    todo: Plan,
    sequential: "Settings | bool | None",
    dispatch: Dispatch,
    argv: Optional[list[str]],
    reporting: Callable[[], AbstractContextManager[Reporter]],
) -> tuple[Path, list[str]]:
    """Carry out `todo` (round by round when `sequential`) under the reporter `reporting` makes; returns the run
    folder and the verdict lines it ends with (also written to its run.log). The lines are worked out by a process
    forked before the reporter starts (runner.closing)."""
    closing = ClosingLines()
    try:
        with reporting() as reporter:
            run_dir = (
                rounds(todo, sequential, dispatch, argv, reporter)
                if sequential
                else execute(todo, dispatch, argv, reporter)
            )
        lines = closing.lines(run_dir)
        finished(run_dir, lines)
    finally:
        closing.close()
    return run_dir, lines
