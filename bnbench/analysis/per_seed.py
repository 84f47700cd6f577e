"""The numbers a comparison is made from, as long data: one row per run x sweep point x variant x seed x measure
(`compare --per-seed`), for the user's own analysis (pandas, R).

A row holds the trial's value at the compared epoch, whether the trial counts (`ok`: it finished that epoch
without diverging; the summary's means and spreads use only these), and, for the measures summarised as paired
differences, the same seed's baseline value and the difference: the summary's delta is the mean of these over the
pairs where both trials count. Steps to a target are the step by which the trial's curve met the run's target
(see `measures`); the summary compares them as ratios, so they carry the baseline's value and no difference.
"""

import numpy as np
import pandas as pd

from bnbench.analysis.columns import METRICS, SPEEDS
from bnbench.analysis.summary import Comparison

COLUMNS = ["variant", "seed", "measure", "value", "ok", "baseline_value", "delta"]


def per_seed(c: Comparison, measures: list[str]) -> pd.DataFrame:
    """`c`'s per-trial numbers of `measures` (names of METRICS and SPEEDS), trial by trial in the run's order
    (sweep point, seed, variant), a row per measure."""
    trials = c.trials.assign(_order=np.arange(len(c.trials)))
    keys = [*c.points, "seed"]
    values = {m: f"{m}_at" if m in SPEEDS else m for m in measures}
    values = {m: column for m, column in values.items() if column in trials}  # no val_* without the split
    base = trials.loc[trials.variant == c.baseline, [*keys, "ok", *values.values()]]
    paired = trials.merge(base, on=keys, how="left", suffixes=("", "_base"))
    frames = []
    for i, (measure, column) in enumerate(values.items()):
        both = paired.ok & paired.ok_base & (paired.variant != c.baseline)
        delta = paired[column] - paired[f"{column}_base"]
        frames.append(
            paired[["_order", *c.points, "variant", "seed", "ok"]].assign(
                _measure=i,
                measure=measure,
                value=paired[column].astype(float),
                baseline_value=paired[f"{column}_base"].astype(float),
                delta=delta.where(both).astype(float) if measure in METRICS else np.nan,
            )
        )
    long = pd.concat(frames, ignore_index=True).sort_values(["_order", "_measure"])
    return long.assign(experiment=c.name, run=c.results.runs)[["experiment", "run", *c.points, *COLUMNS]].reset_index(
        drop=True
    )
