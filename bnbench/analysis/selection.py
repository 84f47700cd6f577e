"""Which runs `bnbench compare` reads, and which run its --baseline VARIANT@RUN names: the PATHs given or the
results folder, the newest run alone with --latest, and a RUN given as a run id looked up under the results folder
when it is not among the compared runs."""

from pathlib import Path
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.rundir import search
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.tunes import COMPARED, is_tune


def compared(paths: list[Path], results: Path, latest: bool) -> list[Path]:
    """The folders compared: the PATHs, else the results folder; with `latest`, the newest run under them."""
    if not paths and not results.is_dir():
        raise BnbenchError(
            f"--results {results}: no such folder; pass a results folder or run folder, or train a run first: "
            f"bnbench run quick"
        )
    paths = [stage for path in paths or [results] for stage in _tuned(path)]
    if not latest:
        return paths
    found = search.find_runs(paths)
    if not found:
        raise BnbenchError(f"--latest: no runs under {', '.join(map(str, paths))}; train one: bnbench run quick")
    return found[:1]


def _tuned(path: Path) -> list[Path]:
    """A `bnbench tune` folder is compared by its final and shared stages (each variant at its own setting, and
    all at the config's), on test; its tuning stage chose on validation, and its test numbers are not the answer.
    Any other path is itself."""
    if not is_tune(path):
        return [path]
    return [path / stage for stage in COMPARED if (path / stage).is_dir()] or [path / "tuning"]


def reference(baseline: Optional[str], paths: list[Path], results: Path) -> Optional[str]:
    """--baseline as the comparison reads it: VARIANT@RUN with RUN a run id that is not among the compared runs
    becomes VARIANT@<the folder of the run of that id under `results`>; anything else is kept as given."""
    variant, at, ref = (baseline or "").partition("@")
    if not at or RunFolder(Path(ref)).has_meta() or not results.is_dir():
        return baseline
    try:
        search.find_run(ref, search.find_runs(paths))
        return baseline
    except BnbenchError:
        return f"{variant}@{search.find_run(ref, search.find_runs([results]))}"
