"""Per-trial measures of one sweep point, as arrays shaped [seed, variant] (the runner's order within a point).

At the compared epoch E (the last epoch every trial of the point that did not diverge has finished, so a partial
run is compared on an equal budget; `epoch=N` picks another):
  train_loss   mean per-batch training loss over epoch E (the tutorial's number)
  test_loss, test_acc   epochs.csv at epoch E; accuracies in percent
  val_loss, val_acc     the same on the validation split, in a run that holds one (dataset.validation)
  best_acc     the highest test accuracy over epochs 1..E (chosen on the test set itself: optimistic)
  seconds      wall seconds of the trial's epochs 1..E
  diverged     the step at which the loss became NaN/inf (NaN: never); `ok` = finished epoch E without diverging

Steps to a target (see `speeds`): the target is the level the baseline's curves have at half their run (the mean
over its seeds), so that the baseline meets it about half-way and a variant as fast as the baseline meets it with
half a run to spare. Target and crossing are read off the same curve kind: the training loss smoothed by an exact
trailing mean of `smoothing` batches, or the test accuracy at each evaluation. A crossing is known between two
measured steps (after < T ≤ at): exact for the loss curve, measured every step once its window is full; an
interval between two evaluations for accuracy. A trial that does not reach the target is censored at its own
last step.
"""

import math
from typing import Optional

import numpy as np
import pandas as pd

from bnbench.analysis.columns import VALIDATION
from bnbench.analysis.curves import NEVER, UNDEFINED, first_crossing, level_at, trailing_mean
from bnbench.analysis.reading import Results, diverged_at
from bnbench.errors import BnbenchError

TARGET_AT = 0.5  # the target is the baseline's level at this fraction of its run


def point_measures(results: Results, point: int, spans: dict, baseline: str, epoch: Optional[int]) -> tuple[dict, dict]:
    """Each trial's numbers at sweep point `point`, as {name: array [seed, variant]}, and the smoothed training
    loss of its `ok` trials as long columns (for plots)."""
    trials = results.trials
    config, first, count = trials.resolved[point], point * trials.per_point, trials.per_point
    shape = (len(config.seeds), len(config.variants))
    names = [v.name for v in config.variants]
    b = _rows(results.batches, spans["batches"], first, count, ["epoch", "batch", "step", "loss"])
    val = [c for c in VALIDATION if c in results.epochs]  # a run with a validation split
    e = _rows(results.epochs, spans["epochs"], first, count, ["epoch", "test_loss", "test_acc", "seconds", *val])
    v = _rows(results.evals, spans["evals"], first, count, ["epoch", "step", "test_acc"])
    last = _compared_epoch(results, b, e, first, epoch)
    b, e, v = _until(b, last), _until(e, last), _until(v, last)
    window = config.training.log_every or int(b["batch"].max())
    t = _own_numbers(b, e, last, count, window)
    t["batch_size"] = np.tile([results.batch_size(name, point) for name in names], shape[0]).astype(float)
    smooth = trailing_mean(b["loss"], b["trial"], window)
    base = np.arange(count) // shape[1] * shape[1] + names.index(baseline)  # the same seed's baseline trial
    t |= speeds("steps", _curves(b["trial"], b["step"], smooth, count), t, base, higher=False)
    t |= speeds("steps_acc", _curves(v["trial"], v["step"], 100 * v["test_acc"], count), t, base, higher=True)
    keep = t["ok"][b["trial"]] & ~np.isnan(smooth)  # ok trials, full windows
    kept = b["trial"][keep]
    curves = {
        "variant": np.array(names, dtype=object)[kept % shape[1]],
        "seed": np.array(config.seeds)[kept // shape[1]],
        "step": b["step"][keep],
        "loss": smooth[keep],
        **trials.points[point],
    }
    return {name: values.reshape(shape) for name, values in t.items()}, curves


def speeds(measure: str, curves: dict, t: dict, base: np.ndarray, higher: bool) -> dict:
    """When each `ok` trial first met the point's target (trials as in `t`, `base[k]` the baseline trial of k's
    seed): `{measure}_target` (the level), `_ref` (the baseline's step it was read at), `_after` and `_at` (the
    crossing lies in (after, at]; `at` NaN: not reached, or no target) and `_why` (why there is no target).

    The target is the mean over the baseline's seeds of the level each one's curve has at half its run: one level
    for every seed, so that a seed's baseline trial meets it as a variant trial would, no sooner by construction
    (a per-seed target read off the baseline's own noisy curve would let the baseline cross it early, and make an
    equal variant look slower)."""
    count = len(base)
    out = {f"{measure}_{k}": np.full(count, np.nan) for k in ("target", "ref", "after", "at")}
    why = np.full(count, "", dtype=object)
    levels = [
        level_at(*curves[b], math.ceil(TARGET_AT * t["steps"][b]))
        for b in sorted(set(base))
        if t["ok"][b] and b in curves
    ]
    levels = [(step, level) for step, level in levels if not np.isnan(level)]
    target = np.mean([level for _, level in levels]) if levels else np.nan
    for k in range(count):
        if not t["ok"][k]:
            why[k] = "no result" if np.isnan(t["steps"][k]) else "diverged"
        elif not t["ok"][base[k]]:
            why[k] = "the baseline diverged" if not np.isnan(t["steps"][base[k]]) else "no baseline result"
        elif np.isnan(target):
            why[k] = "no point of the baseline's curves in the first half of their run"
        else:
            after, at = first_crossing(*curves[k], target, higher)
            if at == UNDEFINED:
                why[k] = "no point of its curve"
                continue
            out[f"{measure}_target"][k], out[f"{measure}_ref"][k] = target, np.mean([s for s, _ in levels])
            out[f"{measure}_after"][k] = after
            out[f"{measure}_at"][k] = np.nan if at == NEVER else at
    return out | {f"{measure}_why": why}


def _rows(frame: pd.DataFrame, spans: np.ndarray, first: int, count: int, columns: list[str]) -> dict:
    """Columns of trials first..first+count-1 (rows sorted by trial), as arrays; `trial` counts from 0."""
    lo, hi = spans[first], spans[first + count]
    return {"trial": frame.trial.to_numpy()[lo:hi] - first, **{c: frame[c].to_numpy()[lo:hi] for c in columns}}


def _until(rows: dict, epoch: int) -> dict:
    keep = rows["epoch"] <= epoch
    return {name: values[keep] for name, values in rows.items()}


def _compared_epoch(results: Results, b: dict, e: dict, first: int, epoch: Optional[int]) -> int:
    """`epoch`, or the last epoch every trial that did not diverge has finished; a trial short of it is an error."""
    count = results.trials.per_point
    diverged = ~np.isnan(diverged_at(b, count))
    reached = np.bincount(e["trial"], minlength=count)  # epochs run 1..n
    steady = (reached > 0) & ~diverged
    last = epoch or int(reached[steady].min() if steady.any() else reached.max())
    behind = np.flatnonzero(steady & (reached < last))
    if len(behind):
        done = int(reached[behind[0]])
        raise BnbenchError(
            f"--epoch {last}: {results.dir}: {results.trials.describe(first + behind[0])} has only "
            f"{done} epoch{'s' * (done != 1)}"
        )
    return last


def _own_numbers(b: dict, e: dict, last: int, count: int, window: int) -> dict:
    """Each trial's numbers through epoch `last` (rows already cut there), NaN for a trial without rows."""
    final = b["epoch"] == last
    steps = np.zeros(count)
    np.maximum.at(steps, b["trial"], b["step"])
    t = {
        "epoch": np.full(count, last),
        "train_loss": _mean_per_trial(b["loss"][final], b["trial"][final], count),
        "steps": np.where(steps > 0, steps, np.nan),
        "diverged_step": diverged_at(b, count),
    }
    at_last = e["epoch"] == last
    for column in ("test_loss", "test_acc", *(c for c in VALIDATION if c in e)):
        scale = 100 if column.endswith("_acc") else 1
        t[column] = np.full(count, np.nan)
        t[column][e["trial"][at_last]] = scale * e[column][at_last]
    best = np.lexsort((e["epoch"], -e["test_acc"], e["trial"]))  # per trial: highest accuracy, earliest epoch
    best = best[np.append(True, e["trial"][best][1:] != e["trial"][best][:-1])] if len(best) else best
    t["best_acc"], t["best_epoch"] = np.full(count, np.nan), np.full(count, np.nan)
    t["best_acc"][e["trial"][best]] = 100 * e["test_acc"][best]
    t["best_epoch"][e["trial"][best]] = e["epoch"][best]
    t["seconds"] = _sum_per_trial(e["seconds"], e["trial"], count)
    t["ok"] = ~np.isnan(t["steps"]) & np.isnan(t["diverged_step"])
    t["smoothing"] = np.full(count, window)
    return t


def _mean_per_trial(values: np.ndarray, trials: np.ndarray, count: int) -> np.ndarray:
    """Per trial 0..count-1, the mean of `values`, NaN skipped (NaN for a trial without any)."""
    return pd.Series(values).groupby(trials).mean().reindex(np.arange(count)).to_numpy(dtype=float)


def _sum_per_trial(values: np.ndarray, trials: np.ndarray, count: int) -> np.ndarray:
    """Per trial 0..count-1, the sum of `values`, NaN skipped (NaN for a trial without rows)."""
    sums = np.bincount(trials, weights=np.where(np.isnan(values), 0, values), minlength=count)
    return np.where(np.bincount(trials, minlength=count) > 0, sums, np.nan)


def _curves(trials: np.ndarray, steps: np.ndarray, values: np.ndarray, count: int) -> dict:
    """{trial: (steps, values)} for the trials with rows (rows sorted by trial)."""
    at = np.searchsorted(trials, np.arange(count + 1))
    return {k: (steps[at[k] : at[k + 1]], values[at[k] : at[k + 1]]) for k in range(count) if at[k + 1] > at[k]}
