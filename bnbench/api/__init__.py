"""bnbench from Python, for notebooks: `run` an experiment, `load` a run folder, list the `runs` of a results
folder, `compare` runs; each returns objects that hold DataFrames and print nothing (`run` shows progress if
asked). The same library functions as the CLI's, so the numbers are the CLI's (tests/api checks them against
`bnbench compare --format json`). A mistake the user can make raises `BnbenchError` with the CLI's one line."""

from bnbench.api.comparing import Comparison, compare
from bnbench.api.runs import Run, init, load, runs
from bnbench.api.training import run
from bnbench.api.tuning import Tuned, tune

__all__ = ["Comparison", "Run", "Tuned", "compare", "init", "load", "run", "runs", "tune"]
