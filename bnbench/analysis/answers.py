"""`bnbench list`'s verdict column: each complete run's answer in a few words, worked out by the code `compare`
uses (`Comparison.headline` of the run compared on its own), and remembered in the results folder.

Comparing a small run takes some 20-40 ms (reading its CSVs, then the statistics), so listing a folder of 300 runs
would take seconds every time. The answers are kept in RESULTS/.bnbench-answers.json, each with the size and
modification time of the files it was worked out from, bnbench's version and RULES: a run whose files changed
(grown, resumed, edited, damaged), an upgrade or new decision rules work it out again. The file is a cache:
unreadable, it is rebuilt; unwritable (a read-only folder), answers are worked out each time; never written into a
run folder (`list --results RUN`), whose files are the run's.
"""

import contextlib
import json
import os
from importlib.metadata import version
from pathlib import Path

from bnbench.analysis.compare import _each_run
from bnbench.analysis.reading import load_run
from bnbench.analysis.summary import compare_run
from bnbench.errors import BnbenchError
from bnbench.rundir import search
from bnbench.rundir.folder import CONFIG, META, RunFolder
from bnbench.rundir.schema import BATCHES, EPOCHS, EVALS
from bnbench.rundir.tunes import is_tuning_stage

CACHE = ".bnbench-answers.json"
READ = (META, CONFIG, BATCHES.file, EPOCHS.file, EVALS.file)  # what an answer is worked out from
NONE = "—"  # no answer: the run is not complete, or cannot be compared (`compare` says why)
TUNING = "chose on validation"  # a tune's tuning stage
RULES = 3  # the rules' revision (2: skew-corrected t-tests, divergence by rank; 3: no answer of a tuning stage)


def answers(results: Path, run_dirs: list[Path]) -> list[str]:
    """The answer of each complete run in `run_dirs` (folders under `results`): remembered where its files are
    unchanged, else worked out (shared out over the CPUs as `compare` shares out runs) and remembered."""
    path, current = results / CACHE, f"{version('bnbench')} rules {RULES}"
    known = _read(path, current)
    names = [run_dir.relative_to(results).as_posix() for run_dir in run_dirs]
    stamps = [_stamp(run_dir) for run_dir in run_dirs]
    todo = [i for i, (name, stamp) in enumerate(zip(names, stamps)) if known.get(name, {}).get("stamp") != stamp]
    for i, said in zip(todo, _each_run([run_dirs[i] for i in todo], answer)):
        known[names[i]] = {"stamp": stamps[i], "answer": said}
    if todo and not search.holds_run(results):  # not in a run
        _write(path, {"version": current, "runs": {k: v for k, v in known.items() if (results / k).is_dir()}})
    return [known[name]["answer"] for name in names]


def answer(run_dir: Path) -> str:
    """The run's answer as `compare` of it alone words it, or NONE where it cannot be compared; a tune's tuning
    stage has none on test (its choice, on validation, is the tune's: `bnbench tune --resume`)."""
    if is_tuning_stage(run_dir):
        return TUNING
    try:
        return compare_run(load_run(run_dir)).headline
    except BnbenchError:
        return NONE


def _stamp(run_dir: Path) -> list:
    """Size and modification time of each file an answer is read from (None: missing)."""
    stamps = []
    for name in READ:
        try:
            s = RunFolder(run_dir).file(name).stat()
            stamps.append([s.st_size, s.st_mtime_ns])
        except OSError:
            stamps.append(None)
    return stamps


def _read(path: Path, current: str) -> dict:
    """The remembered answers by run, or none (no cache, a damaged one, or one of another bnbench version)."""
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    runs = cache.get("runs") if isinstance(cache, dict) and cache.get("version") == current else None
    if not isinstance(runs, dict):
        return {}
    return {k: v for k, v in runs.items() if isinstance(v, dict) and isinstance(v.get("answer"), str)}


def _write(path: Path, cache: dict) -> None:
    """Replace the cache whole (a temporary file renamed over it: a reader never sees half of it); a folder that
    cannot be written keeps none."""
    written = path.with_name(f"{CACHE}.{os.getpid()}.tmp")
    try:
        written.write_text(json.dumps(cache))
        os.replace(written, path)
    except OSError:
        with contextlib.suppress(OSError):
            written.unlink()
