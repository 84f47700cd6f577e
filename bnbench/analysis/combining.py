"""Combining runs: which runs are one experiment (pooled), and a baseline taken from another run (`VARIANT@RUN`).

Runs are pooled when nothing that can change a trial's numbers differs between them: their resolved configs
(config.yaml) differ only in `seeds` (and `training.checkpoints`), and meta.json records the same device, engine
and software (FINGERPRINT). A trial's result depends only on those and its seed, and pairing is per seed, so such
runs' trials are one experiment.
Each seed's trials are taken whole from the newest run that has finished all of them (every epoch, or diverged); a
seed in several runs is taken once, from the newest, and a note says so; a partial run adds only its finished seeds,
and a note names the rest. Runs of one config that differ in the fingerprint are kept apart, with a note saying in
what. `pool=False` compares every run on its own.

A baseline from another run: the variants of every other run are paired, seed by seed, with that run's VARIANT
trials, on the seeds both have (a note lists them); the runs must use the same data set, share a seed, and, if the
baseline's run has a sweep, have the same sweep points. Its batch size is kept (`Results.foreign`), so that steps to
a target can be counted in examples when the batch sizes differ.
"""

import json
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from bnbench.analysis.decisions import plan_of
from bnbench.analysis.reading import Results, TrialIndex, diverged_at, index_of
from bnbench.analysis.row_checks import by_trial, per_trial_max
from bnbench.errors import BnbenchError
from bnbench.experiment.config import diff
from bnbench.rundir.drift import edited
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta

FINGERPRINT = ["device", "device_name", "engine", "torch", "torchvision", "bnbench", "git_commit"]  # meta.json


def groups(run_dirs: list[Path]) -> tuple[list[list[Path]], dict[Path, str]]:
    """The runs (newest first) in groups that can be pooled, and for the first run of each group kept apart from
    another group of the same config, a note saying what separates them. A run whose config cannot be read is a
    group of its own (comparing it says why)."""
    found: dict = {}
    for run_dir in run_dirs:
        try:
            kept = {"seeds": True, "training": {"checkpoints"}}  # what a run keeps on disk changes none of its numbers
            config = json.dumps(index_of(run_dir).config.model_dump(mode="json", exclude=kept), sort_keys=True)
            key = (config, json.dumps(fingerprint(run_dir), sort_keys=True))
        except BnbenchError:
            key = (run_dir, "")
        found.setdefault(key, []).append(run_dir)
    notes = {}
    for (config, prints), members in found.items():
        others = [(m[0], json.loads(p)) for (c, p), m in found.items() if c == config and p != prints]
        if others:
            mine = json.loads(prints)
            notes[members[0]] = "not pooled with " + "; ".join(
                f"{run.name} ({_differences(mine, theirs)})" for run, theirs in others
            )
    return list(found.values()), notes


def _differences(mine: dict, theirs: dict) -> str:
    """'device cpu vs cuda:0, torch 2.14.1 vs 2.13.0'."""
    return ", ".join(f"{key} {mine[key]} vs {theirs[key]}" for key in mine if mine[key] != theirs[key])


def fingerprint(run_dir: Path) -> dict:
    """What meta.json records of the things besides the config that can change a trial's numbers, how its
    seeds were chosen (a run that added seeds until decided is not pooled with others: its seeds depend on its
    results), and whether its config.yaml was edited since it began (its rows are not of the config it says)."""
    try:
        meta = RunFolder(run_dir).meta()
    except BnbenchError:
        meta = Meta({})
    plan, changed = plan_of(meta), edited(meta, run_dir, index_of(run_dir).config)
    recorded = {key: getattr(meta.fields, key) for key in FINGERPRINT}
    return {
        **{key: value if isinstance(value, (str, int, type(None))) else str(value) for key, value in recorded.items()},
        "seeds chosen": "until decided" if plan else "in advance",
        "config.yaml": "edited since the run began" if changed else "as the run began",
    }


def pooled(runs: list[Results]) -> Results:
    """One run made of `runs` (newest first), whose configs differ only in seeds: each seed's trials from the newest
    run that finished all of them, with notes on what was taken from where and what was left out. At least one
    run must have finished a seed."""
    finished = {r.dir: finished_seeds(r) for r in runs}
    taken: dict[int, Results] = {}
    for results in runs:
        for seed in finished[results.dir]:
            taken.setdefault(seed, results)
    used = [r for r in runs if r in taken.values()]
    seeds = sorted(taken)
    trials = runs[0].trials.changed(seeds=seeds)
    parts = [
        (r, _mapping(r.trials, trials, lambda key, r=r: key if taken.get(key[1]) is r else None), {}) for r in used
    ]
    taken_from = "; ".join(
        f"seed{'s' * (len(own) > 1)} {_seed_list(own)} from {r.dir.name}"
        for r in used
        for own in [[s for s in seeds if taken[s] is r]]
    )
    notes = (
        [f"pooled {len(used)} runs of one config, device, engine and software (differing only in seeds): {taken_from}"]
        if len(used) > 1
        else []
    )
    for i, results in enumerate(runs):
        newer = [s for s in results.config.seeds if s in taken and taken[s] in runs[:i]]
        if newer:
            notes.append(
                f"seed{'s' * (len(newer) > 1)} {_seed_list(newer)} of {results.dir.name} also in a newer "
                f"run: taken from the newest"
            )
        unfinished = [s for s in results.config.seeds if s not in finished[results.dir] and s not in newer]
        if unfinished:
            notes.append(
                f"{results.dir.name} is {results.status}: its unfinished seed{'s' * (len(unfinished) > 1)} "
                f"{_seed_list(unfinished)} left out (pooling uses finished trials only)"
            )
    label = f"runs {' + '.join(r.dir.name for r in used)} (pooled)" if len(used) > 1 else f"run {used[0].dir.name}"
    return Results(
        used[0].dir,
        trials,
        "complete",
        *_frames(parts),
        sources=tuple(r.dir for r in used),
        notes=tuple(notes),
        label=label,
        grown=used[0].grown if len(used) == 1 else (),
        pooled=len(used) if len(used) > 1 else 0,
    )


def against(results: Results, reference: Results, variant: str) -> Results:
    """`results` with `reference`'s `variant` trials added as the baseline variant VARIANT@<run id>, on the seeds
    both have; a baseline run without a sweep pairs with every sweep point of `results`, one with a sweep with
    the same point of `results` (see `check_pairs`)."""
    name = f"{variant}@{reference.dir.name}"
    seeds = [s for s in results.config.seeds if s in set(reference.config.seeds)]
    base = next(v for v in reference.config.variants if v.name == variant).model_copy(update={"name": name})
    trials = results.trials.changed(seeds=seeds, variants=[*results.config.variants, base], baseline=name)
    parts = [(results, _mapping(results.trials, trials, lambda key: key), {})]

    def rename(key: tuple, point: tuple) -> Optional[tuple]:  # the reference's baseline trials of a sweep point
        same = not reference.config.sweep or tuple(key[2:]) == point
        return (name, key[1], *point) if key[0] == variant and same else None

    for point in results.trials.points:
        parts.append(
            (
                reference,
                _mapping(reference.trials, trials, partial(rename, point=tuple(point.values()))),
                {"variant": name, **point},
            )
        )
    left = [s for s in results.config.seeds if s not in seeds]
    notes = [
        f"baseline {name}: {variant} of {reference.runs}, paired on seed{'s' * (len(seeds) > 1)} "
        f"{_seed_list(seeds)}"
        + (
            f"; seed{'s' * (len(left) > 1)} {_seed_list(left)} of {results.dir.name} not "
            f"in {reference.dir.name}: left out"
            if left
            else ""
        )
    ]
    sizes = [
        reference.trials.resolved[i if reference.config.sweep else 0].training.batch_size
        for i in range(len(results.trials.points))
    ]
    statuses = {results.status, reference.status}
    status = "complete" if statuses == {"complete"} else "running" if "running" in statuses else "partial"
    return Results(
        results.dir,
        trials,
        status,
        *_frames(parts),
        sources=(*(results.sources or [results.dir]), reference.dir),
        notes=(*results.notes, *notes),
        label=f"{results.label or f'run {results.dir.name}'} vs {name}",
        foreign={**results.foreign, name: sizes},
        grown=results.grown,
        pooled=results.pooled,
    )


def check_pairs(reference: Results, variant: str, groups: list[list[Path]]) -> None:
    """Refuse, in one line, a baseline from another run that some run cannot be paired with."""
    names = [v.name for v in reference.config.variants]
    if variant not in names:
        raise BnbenchError(
            f"--baseline {variant}@{reference.dir.name}: not a variant of {reference.dir} (its "
            f"variants: {', '.join(names)}); choose one of those"
        )
    for group in groups:
        try:
            indexes = [index_of(run_dir) for run_dir in group]
        except BnbenchError:
            continue  # comparing it says why
        config, seeds = indexes[0].config, sorted({s for index in indexes for s in index.config.seeds})
        where = f"--baseline {variant}@{reference.dir.name}: {group[0]}"
        data = diff(reference.config.dataset.model_dump(mode="json"), config.dataset.model_dump(mode="json"), "dataset")
        if data:
            raise BnbenchError(
                f"{where}: other data than the baseline's run ({'; '.join(data)}); compare runs on the same data set"
            )
        if not set(seeds) & set(reference.config.seeds):
            raise BnbenchError(
                f"{where}: no seed in common with the baseline's run (seeds {_seed_list(seeds)} vs "
                f"{_seed_list(reference.config.seeds)}), so nothing pairs; run the same seeds"
            )
        if reference.config.sweep and reference.trials.points != indexes[0].points:
            raise BnbenchError(
                f"{where}: the baseline's run sweeps {', '.join(reference.config.sweep)}, this run "
                f"has other sweep points; use a baseline from a run without a sweep or with the same"
            )


def finished_seeds(results: Results) -> list[int]:
    """The seeds all of whose trials (every variant and sweep point) ran every epoch or diverged."""
    trials = results.trials
    b = results.batches
    diverged = ~np.isnan(diverged_at({c: b[c].to_numpy() for c in ("trial", "step", "loss")}, trials.size))
    done = (per_trial_max(results.epochs, "epoch", trials.size) >= trials.epochs_needed) | diverged
    per_seed = done.reshape(len(trials.points), len(trials.config.seeds), -1).all(axis=(0, 2))
    return [seed for seed, ok in zip(trials.config.seeds, per_seed) if ok]


def _mapping(own: TrialIndex, combined: TrialIndex, rename) -> np.ndarray:
    """Each trial number of `own` -> the number in `combined` of its key `rename(key)` (-1: None or not there)."""
    numbers = np.full(own.size, -1)
    for key, number in own.numbers.items():
        numbers[number] = combined.numbers.get(rename(key), -1)
    return numbers


def _frames(parts: list[tuple]) -> list[pd.DataFrame]:
    """Batches, epochs and evals of a combined run from (results, mapping, labels) parts: each part's trials that
    the mapping keeps, renumbered, their label columns set to `labels`, sorted by trial."""
    out = []
    for name in ("batches", "epochs", "evals"):
        frames = []
        for results, numbers, labels in parts:
            frame = getattr(results, name)
            trial = numbers[frame.trial.to_numpy()]
            frames.append(frame[trial >= 0].assign(trial=trial[trial >= 0], **labels))
        out.append(by_trial(pd.concat(frames, ignore_index=True)))
    return out


def _seed_list(seeds) -> str:
    return ", ".join(map(str, seeds))
