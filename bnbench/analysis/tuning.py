"""Choosing each variant's own setting from `bnbench tune`'s tuning stage, and how sensitive each variant is to it:
pure functions on DataFrames that read validation metrics only (the test set is the final stage's alone).

The frames, in the order they are made (rliable's habit: every shape stated):
- rows (the caller's): one row per tuning trial and epoch: `variant`, `seed`, `point` (the grid point's position
  in the grid's listed order), `epoch`, `train_loss`, and the validation metric (`val_acc` or `val_loss`), and no
  test column (refused: `final_values`).
- finals (`final_values`): one row per tuning trial: `variant`, `seed`, `point`, `value` (the metric at the
  configured final epoch; the worst value, WORST, where the trial diverged), `diverged` (bool: it stopped before its
  final epoch, or its loss or metric there is not finite).
- scores (`scores`): one row per variant and grid point: `variant`, `point`, `seeds`, `diverged` (how many seeds),
  `mean` (over tuning seeds, diverged seeds counted at WORST), `ci_low`, `ci_high` (Student's t 95% interval over
  seeds: seeds independent, values near normal; with 3 seeds it is wide and rests on that normality; NaN below 2
  seeds or where a value is infinite), `best` (bool: the chosen point), `good` (bool: no seed diverged and the
  mean is within the margin of the variant's best mean).
- choices (`choices`): one row per variant: `variant`, `point`, `mean`, `diverged`, `edges` (the grid axes whose
  first or last value the choice sits on: the best may lie outside the grid).

The rule: per variant, the point with no diverged seed and the best mean (highest accuracy, lowest loss); a point
where any seed diverged ranks below every point where none did (all points diverging: the best mean with diverged
seeds at WORST); exact ties go to the point listed first in the grid.
"""

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bnbench.errors import BnbenchError
from bnbench.experiment.fields import brief
from bnbench.rundir.tunes import Tune

WORST = {"val_acc": 0.0, "val_loss": math.inf}  # a diverged trial's value: no accuracy, an infinite loss
HIGHER_IS_BETTER = {"val_acc": True, "val_loss": False}
SCALE = {"val_acc": 100.0, "val_loss": 1.0}  # a margin's units per metric unit: accuracy margins are in points
LEVEL = 0.95


def final_values(rows: pd.DataFrame, metric: str, epochs: int) -> pd.DataFrame:
    """finals (module docstring) from the tuning stage's rows, which must hold no test column: a tuning decision
    that could read the test set is refused before it is made."""
    tested = [c for c in rows.columns if str(c).startswith("test_")]
    if tested:
        raise ValueError(f"tuning reads validation metrics only; drop {', '.join(tested)} before choosing")
    last = rows[rows.epoch == epochs].drop_duplicates(["variant", "seed", "point"], keep="last")
    trials = rows[["variant", "seed", "point"]].drop_duplicates()
    out = trials.merge(last[["variant", "seed", "point", "train_loss", metric]], how="left")
    finite = np.isfinite(out[metric].astype(float)) & np.isfinite(out["train_loss"].astype(float))
    out["diverged"] = ~finite.to_numpy()
    out["value"] = out[metric].astype(float).where(finite, WORST[metric])
    return out[["variant", "seed", "point", "value", "diverged"]].reset_index(drop=True)


def scores(finals: pd.DataFrame, metric: str, margin: float) -> pd.DataFrame:
    """scores (module docstring): per variant and grid point, the mean over tuning seeds with its interval, which
    point is chosen, and which lie within `margin` (accuracy points, or loss units) of the chosen one's mean."""
    grouped = finals.groupby(["variant", "point"], sort=False)
    out = grouped.agg(seeds=("value", "size"), diverged=("diverged", "sum"), mean=("value", "mean"))
    spread = grouped["value"].std(ddof=1)
    half = stats.t.ppf(0.5 + LEVEL / 2, out.seeds - 1) * spread / np.sqrt(out.seeds)
    half = half.where(np.isfinite(out["mean"]) & (out.seeds > 1))
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    out = out.reset_index()
    best = {variant: _best(part, metric) for variant, part in out.groupby("variant", sort=False)}
    out["best"] = [best[v] == p for v, p in zip(out.variant, out.point)]
    top = out[out.best].set_index("variant")["mean"]
    gap = (out["mean"] - out.variant.map(top)).abs() * SCALE[metric]
    out["good"] = (out.diverged == 0) & (gap <= margin + 1e-9)
    return out


def _best(part: pd.DataFrame, metric: str) -> int:
    """The chosen point of one variant's scores (the rule in the module docstring)."""
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    ranked = sorted(zip(part.diverged > 0, sign * part["mean"], part.point))
    return int(ranked[0][2])


def choices(scored: pd.DataFrame, grid: dict[str, list]) -> pd.DataFrame:
    """choices (module docstring) from scores, with `grid` ({path: values}, in the order the points were made,
    the last path varying fastest) to say where each choice sits."""
    listed, order = points(grid), {v: i for i, v in enumerate(dict.fromkeys(scored.variant))}
    best = scored[scored.best].sort_values("variant", key=lambda v: v.map(order))  # in the variants' order
    rows = [
        {
            "variant": row.variant,
            "point": row.point,
            "mean": row.mean,
            "diverged": row.diverged,
            "edges": edges(listed[row.point], grid),
        }
        for row in best.itertuples()
    ]
    return pd.DataFrame(rows, columns=["variant", "point", "mean", "diverged", "edges"])


def points(grid: dict[str, list]) -> list[dict]:
    """The grid's points as `Config.sweep_points` lists them (the product, last path fastest)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def edges(point: dict, grid: dict[str, list]) -> list[str]:
    """'optimizer.lr at the grid's largest' for each numeric axis whose smallest or largest value `point` has: the
    best may lie beyond it, so the grid should be widened there."""
    out = []
    for path, values in grid.items():
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) < 2 or len(numbers) != len(values):
            continue
        if point[path] == max(numbers):
            out.append(f"{path} at the grid's largest")
        elif point[path] == min(numbers):
            out.append(f"{path} at the grid's smallest")
    return out


# ---- a tune folder's tuning stage ----------------------------------------------------------------------------------


def chosen(tune: Tune) -> dict[str, dict[str, Any]]:
    """Each variant's chosen grid point, {variant: {path: value}}, from the complete tuning stage's validation
    rows (the rows' test columns are never handed over)."""
    picked = choices(tune_scores(tune), tune.grid)
    listed = points(tune.grid)
    return {row.variant: listed[row.point] for row in picked.itertuples()}


def tune_scores(tune: Tune) -> pd.DataFrame:
    """The tuning stage's scores frame: per variant and grid point, the validation metric's mean and interval
    over tuning seeds, the chosen point, those within the margin."""
    return scores(tuning_finals(tune), tune.spec["metric"], tune.spec["margin"])


def tuning_finals(tune: Tune) -> pd.DataFrame:
    """The tuning stage's finals frame: its epochs rows, validation columns only."""
    from bnbench.analysis.reading import load_run

    metric = tune.spec["metric"]
    results = load_run(tune.stage_dir("tuning"))
    rows = results.epochs
    if metric not in rows.columns:
        raise BnbenchError(f"{tune.stage_dir('tuning')}: its rows hold no {metric}; start the tune again")
    index = results.trials
    rows = rows[["variant", "seed", "epoch", "train_loss", metric]].assign(point=rows.trial // index.per_point)
    return final_values(rows, metric, index.resolved[0].training.epochs)  # the grid is optimizer fields


def describe(values: dict[str, Any]) -> str:
    """'optimizer.lr=0.003' (', '-joined for several paths)."""
    return ", ".join(f"{path}={brief(value)}" for path, value in values.items())
