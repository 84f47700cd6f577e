"""The whole command that continues a run, in `bnbench run`'s errors.

The library's messages that say how to continue a run end with 'bnbench run --resume RUN'; `run` ends them with
the whole command instead: the options that say where and how loudly the run trains (--jobs, --backend, -q, ...)
as they were given. Those that made the run (CONFIG, --set, --seeds, --sweep, --device, --tag, --note, --out) are in
its folder, and --resume refuses most of them. A stopped run's ('Resume with:') is on a line of its own, to be
copied whole (a terminal wraps it if it must); a refused option's stays the error's one line.
"""

import shlex
from contextlib import contextmanager
from typing import Optional

from bnbench.errors import BnbenchError

RESUME = "bnbench run --resume "  # how the library's messages end that say how to continue a run


def resume_flags(
    jobs: int, backend: str, address: Optional[str], gpus_per_trial: Optional[float], quiet: bool, verbose: int
) -> list[str]:
    """The options of `bnbench run` that a resume takes again, as given (those left at their defaults left out)."""
    given = {"--jobs": jobs != 1, "--backend": backend != "local", "--address": address is not None}
    given |= {"--gpus-per-trial": gpus_per_trial is not None}
    values = {"--jobs": jobs, "--backend": backend, "--address": address, "--gpus-per-trial": gpus_per_trial}
    flags = [str(part) for option, asked in given.items() if asked for part in (option, values[option])]
    return flags + ["-q"] * quiet + ["-" + "v" * verbose] * (verbose > 0)


@contextmanager
def resume_in_full(flags: list[str]):
    """A BnbenchError raised inside whose message ends with 'bnbench run --resume RUN' ends with RUN and `flags`."""
    try:
        yield
    except BnbenchError as e:
        head, found, run_dir = str(e).rpartition(RESUME)
        if found:
            own_line = head.rstrip().lower().endswith("resume with:")
            whole = RESUME + shlex.join([run_dir, *flags])
            e.args = (f"{head.rstrip()}\n  {whole}" if own_line else head + whole,)
        raise
