"""`bnbench compare`: every run found under some folders, grouped by experiment (newest run first), pooled
where runs are one experiment (see `combining`), each measured against its baseline (see `summary`).

Large folders are shared out over forked worker processes; `compare` never imports torch.
"""

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Optional

from bnbench.analysis.combining import against, check_pairs, finished_seeds, groups, pooled
from bnbench.analysis.reading import Results, load_run
from bnbench.analysis.summary import Comparison, compare_run
from bnbench.errors import BnbenchError
from bnbench.rundir import search
from bnbench.rundir.lock import RunLock
from bnbench.rundir.tunes import is_tuning_stage

POOL_FROM = 16  # runs; fewer are compared in this process (starting workers would cost more than it saves)


def compare_runs(
    paths: list[Path],
    baseline: Optional[str] = None,
    epoch: Optional[int] = None,
    pool: bool = True,
    test: str = "t",
    effect: Optional[float] = None,
) -> tuple[list[Comparison], list[str]]:
    """Compare every run found under `paths`: grouped by experiment, newest run first, plus one warning per run
    that could not be compared. Runs that are one experiment are pooled unless `pool` is False (see
    `combining`). `baseline` is a variant name, or VARIANT@RUN: that variant of run RUN (a run folder or run id)
    as every run's baseline; `epoch`, `test`, `effect`: see `summary.compare_run`. Raises BnbenchError when there is
    nothing to compare."""
    for path in paths:
        if path.is_file():
            in_run = search.holds_run(path.parent)
            raise BnbenchError(
                f"{path}: is a file; pass "
                + (
                    f"its run folder, {path.parent}"
                    if in_run
                    else "a results folder (e.g. results) or a run folder (results/<name>/<run id>)"
                )
            )
    named = {p.resolve() for p in paths}
    run_dirs = [d for d in search.find_runs(paths) if not is_tuning_stage(d) or d.resolve() in named]
    if not run_dirs:
        raise BnbenchError(
            f"{', '.join(map(str, paths))}: no bnbench runs found (no folder holds config.yaml "
            f"or meta.json); pass a results folder or run folders"
        )
    measure = partial(compare_run, epoch=epoch, test=test, effect=effect)
    variant, _, at = (baseline or "").partition("@")
    reference, outcomes = None, []
    if at:
        reference = load_run(search.find_run(at, run_dirs))
        variant = variant or reference.config.baseline
        if reference.dir in run_dirs:  # its own variants against VARIANT, as usual
            outcomes.append([_compare_results(reference, variant, None, measure)])
        run_dirs = [d for d in run_dirs if d != reference.dir]
    found, apart = groups(run_dirs) if pool else ([[d] for d in run_dirs], {})
    if reference is not None:
        check_pairs(reference, variant, found)
    outcomes += _each_run(
        found, partial(_compare_group, baseline=variant or None, reference=reference, measure=measure, apart=apart)
    )
    outcomes = [outcome for group in outcomes for outcome in group]
    comparisons = [outcome for outcome in outcomes if isinstance(outcome, Comparison)]
    skipped = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if not comparisons:
        more = f" (and {len(skipped) - 1} more runs that cannot be compared)" if len(skipped) > 1 else ""
        raise BnbenchError(skipped[0].partition(": ")[2] + more)
    names = list(dict.fromkeys(c.name for c in comparisons))
    return sorted(comparisons, key=lambda c: names.index(c.name)), skipped


def _compare_group(
    run_dirs: list[Path], baseline: Optional[str], reference: Optional[Results], measure, apart: dict[Path, str]
) -> list:
    """The comparison of one group of runs (pooled when there are several), or of each run: Comparisons, and for
    each run that could not be compared, why. `apart`: notes on groups kept apart from others of one config."""
    loaded, skipped = [], []
    for run_dir in run_dirs:
        try:
            loaded.append(load_run(run_dir))
        except BnbenchError as e:
            skipped.append(f"skipped {run_dir}: {e}")
    if len(loaded) > 1 and not any(finished_seeds(results) for results in loaded):
        runs = loaded  # nothing to pool: each run on what it has finished, as without pooling
    else:
        runs = [pooled(loaded)] if len(loaded) > 1 else loaded
    note = apart.get(run_dirs[0])
    runs = [replace(r, notes=(*r.notes, note)) if note else r for r in runs]
    return [_compare_results(results, baseline, reference, measure) for results in runs] + skipped


def _compare_results(
    results: Results, baseline: Optional[str], reference: Optional[Results], measure
) -> Comparison | str:
    """The comparison of a run (against `reference`'s variant `baseline`, if given), or why it was skipped."""
    try:
        if reference is not None:
            results, baseline = against(results, reference, baseline or reference.config.baseline), None
        return measure(results, baseline)
    except BnbenchError as e:
        return f"skipped {results.runs}: {e}"


def _each_run(run_dirs: list, compare) -> list:
    """`compare` of each run (or group of runs), in order. From POOL_FROM on, shared out over the CPUs by forked
    worker processes: a run takes some 20 ms of pandas and scipy, which hold the GIL, so threads would not help. On
    Ctrl-C the main process stops them, dropping the runs not yet started."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if cpus < 2 or len(run_dirs) < POOL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return [compare(run_dir) for run_dir in run_dirs]
    workers = ProcessPoolExecutor(cpus, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker)
    try:
        return list(workers.map(compare, run_dirs, chunksize=8))
    finally:
        workers.shutdown(cancel_futures=True)


def _start_worker() -> None:
    """In a forked worker: Ctrl-C is for the main process to handle, and its run locks are not the worker's to
    keep (a lock stays held while any copy of its file is open)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    RunLock.close_inherited()
