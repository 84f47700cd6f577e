"""`bnbench compare`: read run folders once and measure every variant against the baseline, seed by seed.

Per trial (one variant, seed and sweep point), at the compared epoch E (the last epoch that every trial of the
sweep point that did not diverge has finished, so a partial run is compared on an equal budget; `epoch=N` picks
another):
  train_loss   mean per-batch training loss over epoch E, from batches.csv (the tutorial's number)
  test_loss, test_acc   epochs.csv at epoch E; accuracies in percent
  best_acc     the highest test accuracy over epochs 1..E; best_epoch: the first epoch that reached it
  seconds      wall seconds of the trial's epochs 1..E
Per variant: mean ± std over its seeds. Δ = mean of paired differences, seed s of the variant minus seed s of the
baseline (same initial weights, same batch order), with a 95% t-interval and the paired t-test's p-value
(scipy.stats.ttest_rel); "wins" counts the seeds where the variant is better (lower loss or seconds, higher
accuracy). With one pair there is no interval (NaN). A trial whose loss became NaN/inf within epochs 1..E is
left out of every statistic and named in `diverged`; a seed whose baseline diverged has no pair.

Steps to target: the training loss of each trial is smoothed by a trailing mean over `training.log_every`
batches (the batches of one epoch when log_every is 0), across epoch boundaries; the first `log_every - 1`
steps have no full window and never count. For seed s, the target is the baseline's final train loss for seed s
and the step is the first at which the smoothed loss is at or below it; speedup = the baseline's total steps
(through epoch E) for seed s ÷ that step. The baseline is measured the same way, against itself, which shows how
much the measure moves without any real difference. Per variant: the mean step and mean speedup over the seeds
that reached the target, and target_reached of target_pairs.

A comparison's table has one row per sweep point x variant: experiment, run, status, partial (not complete),
the sweep paths, variant, baseline (True on its row), seeds (that did not diverge), pairs (seeds paired with the
baseline), epoch (compared) and epochs (configured); per metric m: m_mean, m_std, m_delta, m_ci_low, m_ci_high,
m_p, m_wins; best_epoch (mean); steps (mean total), steps_to_target, speedup, target_reached, target_pairs,
smoothing (the window); diverged ("seed 1 diverged at step 312; ...") and missing (seeds without rows yet).

Grouping: each run is compared on its own. Runs of one experiment are listed together, newest first, but never
pooled: a trial's result depends only on its config and seed, so pooling two runs of one config counts the same
trials twice, and pooling runs with different configs mixes two experiments.
"""
import io
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from scipy import stats

from . import store
from .config import Config, validate
from .errors import BnbenchError

METRICS = {  # key: (label, higher is better)
    "train_loss": ("final train loss", False),
    "test_loss": ("final test loss", False),
    "test_acc": ("final test acc %", True),
    "best_acc": ("best test acc %", True),
    "seconds": ("seconds per trial", False),
}
STATS = ["mean", "std", "delta", "ci_low", "ci_high", "p", "wins"]  # columns f"{metric}_{stat}" of a table
STEPS_COLUMNS = ["steps", "steps_to_target", "speedup", "target_reached", "target_pairs", "smoothing"]
CONFIDENCE = 0.95
KEYS = ["variant", "seed"]
NAN_TEXT = ["nan", "NaN", "-nan"]  # how a diverged loss is written; an empty field is damage, not NaN
COUNTS = ["seeds", "pairs", "epoch", "epochs", "target_reached", "target_pairs", "smoothing",
          *(f"{m}_wins" for m in METRICS)]


@dataclass
class Results:
    """A run folder, each file read once."""
    dir: Path
    config: Config
    status: str  # complete, running or partial
    batches: pd.DataFrame  # sweep columns are kept as the text bnbench wrote
    epochs: pd.DataFrame


@dataclass
class Comparison:
    """One run measured against its baseline."""
    results: Results
    baseline: str
    table: pd.DataFrame  # one row per sweep point x variant, columns as in the module docstring
    trials: pd.DataFrame  # one row per trial: its own numbers; `ok` = finished epoch E without diverging
    curves: pd.DataFrame  # the smoothed training loss of the `ok` trials, per step through epoch E

    @property
    def name(self) -> str:
        return self.results.config.name

    @property
    def title(self) -> str:
        mark = "" if self.results.status == "complete" else f" [{self.results.status}]"
        return f"{self.name} · {describe(self.results.config)} · run {self.results.dir.name}{mark}"

    @property
    def points(self) -> list[str]:
        return list(self.results.config.sweep)

    @cached_property
    def windows(self) -> pd.DataFrame:
        """The tutorial's "Loss after mini-batch N" lines for epoch E: per trial, the mean loss of each full
        window of `smoothing` batches; per variant and window, mean, std and count over the `ok` seeds."""
        ok = self.trials.loc[self.trials.ok, self.points + KEYS + ["epoch", "smoothing"]]
        rows = self.results.batches.merge(ok, on=self.points + KEYS + ["epoch"])
        rows["window"] = (rows.batch - 1) // rows.smoothing + 1
        per_trial = rows.groupby(self.points + KEYS + ["epoch", "smoothing", "window"]).loss.agg(["mean", "size"])
        full = per_trial[per_trial["size"] == per_trial.index.get_level_values("smoothing")]
        out = (full.groupby(self.points + ["variant", "epoch", "smoothing", "window"])["mean"]
               .agg(loss_mean="mean", loss_std="std", seeds="size").reset_index())
        out.insert(len(self.points) + 3, "mini_batch", out.window * out.smoothing)
        return self._ordered(out.drop(columns="window"), ["mini_batch"])

    @cached_property
    def loss_curves(self) -> pd.DataFrame:
        """Smoothed training loss per step: mean and std over the `ok` seeds of each variant."""
        out = (self.curves.groupby(self.points + ["variant", "step"]).loss
               .agg(loss_mean="mean", loss_std="std", seeds="size").reset_index())
        return self._ordered(out, ["step"])

    @cached_property
    def accuracy_curves(self) -> pd.DataFrame:
        """Test accuracy (%) per epoch through epoch E: mean and std over the `ok` seeds of each variant."""
        ok = self.trials.loc[self.trials.ok, self.points + KEYS + ["epoch"]].rename(columns={"epoch": "last"})
        rows = self.results.epochs.merge(ok, on=self.points + KEYS)
        rows = rows[rows.epoch <= rows["last"]].assign(acc=lambda d: 100 * d.test_acc)
        out = (rows.groupby(self.points + ["variant", "epoch"]).acc
               .agg(acc_mean="mean", acc_std="std", seeds="size").reset_index())
        return self._ordered(out, ["epoch"])

    def _ordered(self, frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
        """Rows in the config's order of sweep points and variants (groupby sorts them by name)."""
        points = dict.fromkeys(self.table[self.points].itertuples(index=False, name=None))
        points = {point: i for i, point in enumerate(points)}
        variants = {name: i for i, name in enumerate(self.table.variant.unique())}
        frame = frame.assign(_point=[points[p] for p in frame[self.points].itertuples(index=False, name=None)],
                             _variant=frame.variant.map(variants))
        frame = frame.sort_values(["_point", "_variant", *by]).drop(columns=["_point", "_variant"])
        return frame.reset_index(drop=True)


def describe(config: Config) -> str:
    """'digits, mlp [64, 32]': the data set and model, for titles."""
    model = config.model
    layers = f"{model.channels} + {model.hidden}" if model.kind == "cnn" else f"{model.hidden}"
    return f"{config.dataset.name}, {model.kind} {layers}"


# ---- many runs ---------------------------------------------------------------------------------------------------

def compare_runs(paths: list[Path], baseline: Optional[str] = None,
                 epoch: Optional[int] = None) -> tuple[list[Comparison], list[str]]:
    """Compare every run found under `paths`: grouped by experiment, newest run first, plus one warning per run
    that could not be compared. Raises BnbenchError when there is nothing to compare."""
    run_dirs = store.find_runs(paths)
    if not run_dirs:
        raise BnbenchError(f"{', '.join(map(str, paths))}: no bnbench runs found (no folder holds config.yaml "
                           f"or meta.json); pass a results folder or run folders")
    comparisons, skipped = [], []
    for run_dir in run_dirs:
        try:
            comparisons.append(compare_run(load_run(run_dir), baseline, epoch))
        except BnbenchError as e:
            skipped.append(f"skipped {run_dir}: {e}")
    if not comparisons:
        more = f" (and {len(skipped) - 1} more runs that cannot be compared)" if len(skipped) > 1 else ""
        raise BnbenchError(skipped[0].partition(": ")[2] + more)
    names = list(dict.fromkeys(c.name for c in comparisons))
    return sorted(comparisons, key=lambda c: names.index(c.name)), skipped


# ---- reading one run ---------------------------------------------------------------------------------------------

def load_run(run_dir: Path) -> Results:
    """Read and check a run folder; any damage raises one BnbenchError naming the file and line."""
    config = validate(store.read_config(run_dir), str(run_dir / "config.yaml"))
    status = store.run_status(run_dir, store.read_meta(run_dir))
    labels = KEYS + list(config.sweep)
    batches = _read_csv(run_dir / "batches.csv", labels, ["epoch", "batch", "step"], ["loss"])
    epochs = _read_csv(run_dir / "epochs.csv", labels, ["epoch"], ["train_loss", "train_acc", "test_loss",
                                                                    "test_acc", "seconds"])
    _check_trials(run_dir / "batches.csv", batches, config)
    _check_trials(run_dir / "epochs.csv", epochs, config)
    _check_rows(run_dir, batches, epochs, labels)
    return Results(run_dir, config, status, batches, epochs)


def _read_csv(path: Path, labels: list[str], ints: list[str], floats: list[str]) -> pd.DataFrame:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BnbenchError(f"{path}: missing; the run has written no results") from None
    except OSError as e:
        raise BnbenchError(f"{path}: cannot read ({e.strerror or e})") from None
    expected = labels + ints + floats
    if not data.strip():
        raise BnbenchError(f"{path}: empty; expected the header line '{','.join(expected)}'")
    if not data.endswith(b"\n"):
        raise BnbenchError(f"{path}: the last line is cut off (truncated file?); restore the file or re-run")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={c: str for c in labels if c != "seed"}, keep_default_na=False,
                            na_values={c: NAN_TEXT for c in floats})
    except (pd.errors.ParserError, ValueError) as e:
        raise BnbenchError(f"{path}: not a valid CSV ({str(e).strip()}); restore the file or re-run") from None
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        what = f"missing column '{missing[0]}'" if missing else f"unexpected column '{extra[0]}'"
        raise BnbenchError(f"{path}: {what}; expected the columns {','.join(expected)} (from config.yaml)")
    for column in ["seed", *ints, *floats]:
        frame[column] = _numbers(path, frame[column], integer=column not in floats)
    return frame


def _numbers(path: Path, column: pd.Series, integer: bool) -> pd.Series:
    if pd.api.types.is_integer_dtype(column) or (not integer and pd.api.types.is_float_dtype(column)):
        return column.astype("int64" if integer else "float64")  # parsed cleanly: NaN only from NAN_TEXT
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() | (values % 1 != 0) if integer else values.isna() & column.notna()  # NaN: read from NAN_TEXT
    if bad.any():
        line = int(np.argmax(bad.to_numpy())) + 2
        raise BnbenchError(f"{path}: line {line}: {column.name} is {column[bad].iloc[0]!r}, not "
                           f"{'an integer' if integer else 'a number'}; the file was edited or damaged")
    return values.astype("int64" if integer else "float64")


def _point_texts(config: Config) -> list[dict[str, str]]:
    """Each sweep point's values as the CSVs spell them (how csv.writer writes the typed values)."""
    def text(value):
        return "" if value is None else str(value)
    return [{path: text(config.with_values(point).get(path)) for path in point} for point in config.sweep_points()]


def _check_trials(path: Path, frame: pd.DataFrame, config: Config) -> None:
    """Every row must belong to a trial of config.yaml."""
    labels = KEYS + list(config.sweep)
    expected = pd.DataFrame([{"variant": v.name, "seed": s, **p} for p in _point_texts(config)
                             for s in config.seeds for v in config.variants], columns=labels)
    known = frame[labels].merge(expected.assign(_known=True), on=labels, how="left")["_known"].notna().to_numpy()
    if not known.all():
        line = int(np.argmax(~known))
        trial = _trial(labels, tuple(frame[labels].iloc[line]))
        raise BnbenchError(f"{path}: line {line + 2}: {trial} is not in config.yaml; the file was edited or "
                           f"belongs to another run")


def _check_rows(run_dir: Path, batches: pd.DataFrame, epochs: pd.DataFrame, labels: list[str]) -> None:
    """Steps and epochs run 1, 2, 3, ... per trial, only a trial's last loss may be NaN/inf, and both files
    hold the same epochs of each trial."""
    trials = {"batches.csv": batches.groupby(labels, sort=False), "epochs.csv": epochs.groupby(labels, sort=False)}
    for (name, by_trial), column in zip(trials.items(), ("step", "epoch")):
        order = by_trial.cumcount().to_numpy() + 1
        wrong = by_trial.obj[column].to_numpy() != order
        if wrong.any():
            line = int(np.argmax(wrong))
            raise BnbenchError(f"{run_dir / name}: line {line + 2}: {column} {by_trial.obj[column].iloc[line]} "
                               f"should be {order[line]}; rows were deleted, repeated or reordered")
    last = trials["batches.csv"].step.transform("max").to_numpy()
    early = ~np.isfinite(batches.loss.to_numpy()) & (batches.step.to_numpy() != last)
    if early.any():
        line = int(np.argmax(early))
        raise BnbenchError(f"{run_dir / 'batches.csv'}: line {line + 2}: the loss is not finite but the trial goes "
                           f"on; the file was edited")
    both = pd.concat({"batches": trials["batches.csv"].epoch.max(), "epochs": trials["epochs.csv"].epoch.max()},
                     axis=1).fillna(0).astype(int)
    differ = both["batches"] != both["epochs"]
    if differ.any():
        trial = differ.idxmax()
        raise BnbenchError(f"{run_dir / 'epochs.csv'}: {_trial(labels, trial)} has {both.epochs[trial]} epochs here "
                           f"but {both.batches[trial]} in batches.csv; one of the files was truncated or edited")


def _trial(labels: list[str], values: tuple) -> str:
    """'trial plain seed 2' (with its sweep values), for messages."""
    return "trial " + " ".join([str(values[0]), "seed", str(values[1]), *(f"{k}={v}" for k, v in
                                                                       zip(labels[2:], values[2:]))])


# ---- comparing one run -------------------------------------------------------------------------------------------

def compare_run(results: Results, baseline: Optional[str] = None, epoch: Optional[int] = None) -> Comparison:
    """Measure every variant of one run against `baseline` (default: the run's), at `epoch` (default: the last)."""
    config = results.config
    baseline = baseline or config.baseline
    names = [v.name for v in config.variants]
    if baseline not in names:
        raise BnbenchError(f"--baseline {baseline}: not a variant of {results.dir} (its variants: "
                           f"{', '.join(names)}); choose one of those")
    tables, trials, curves = [], [], []
    for point, text in zip(config.sweep_points(), _point_texts(config)):
        rows = _select(results.batches, text)
        if rows.empty:
            continue  # a partial run that never reached this sweep point
        resolved = config.with_values(point)
        t, c = _trials(results, resolved, text, rows, _select(results.epochs, text), baseline, epoch)
        tables += _summarise(t, resolved, baseline, text)
        trials.append(t.reset_index().assign(**text))
        curves.append(c.assign(**text))
    if not tables:
        raise BnbenchError(f"{results.dir / 'batches.csv'}: no finished epochs yet; wait for the run or resume it")
    table = pd.DataFrame(tables).astype({c: "Int64" for c in COUNTS})
    table.insert(0, "experiment", config.name)
    table.insert(1, "run", str(results.dir))
    table.insert(2, "status", results.status)
    table.insert(3, "partial", results.status != "complete")
    return Comparison(results, baseline, table, pd.concat(trials, ignore_index=True),
                      pd.concat(curves, ignore_index=True))


def _select(frame: pd.DataFrame, point: dict[str, str]) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for path, value in point.items():
        mask &= (frame[path] == value).to_numpy()
    return frame[mask] if point else frame


def _trials(results: Results, config: Config, point: dict[str, str], batches: pd.DataFrame,
            epochs: pd.DataFrame, baseline: str, epoch: Optional[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-trial numbers of one sweep point (indexed by variant, seed) and the `ok` trials' smoothed losses."""
    finite = np.isfinite(batches.loss.to_numpy())
    reached = epochs.groupby(KEYS).epoch.max()
    diverged = batches.loc[~finite, KEYS].set_index(KEYS).index
    steady = reached.drop(diverged, errors="ignore")
    last = epoch or int(steady.min() if len(steady) else reached.max())
    behind = steady[steady < last]
    if len(behind):
        trial, done = _trial(KEYS + list(point), (*behind.index[0], *point.values())), int(behind.iloc[0])
        raise BnbenchError(f"--epoch {last}: {results.dir}: {trial} has only {done} epoch{'s' * (done != 1)}")
    batches, epochs = batches[batches.epoch <= last], epochs[epochs.epoch <= last]
    window = config.training.log_every or int(batches.batch.max())
    rows = batches.assign(final=batches.loss.where(batches.epoch == last),
                          bad=batches.step.where(~np.isfinite(batches.loss)))
    by_trial = rows.groupby(KEYS, sort=False)  # one grouping, reused: its groups are numbered in this order
    found = by_trial.agg(train_loss=("final", "mean"), steps=("step", "max"), diverged_step=("bad", "min"))
    smooth = by_trial.loss.rolling(window, min_periods=window).mean().droplevel(KEYS).reindex(rows.index).to_numpy()
    group = by_trial.ngroup().to_numpy()

    trials = found.reindex(pd.MultiIndex.from_product([[v.name for v in config.variants], config.seeds], names=KEYS))
    trials.insert(0, "epoch", last)
    final = epochs[epochs.epoch == last].set_index(KEYS)
    trials["test_loss"] = final.test_loss
    trials["test_acc"] = 100 * final.test_acc
    best = epochs.sort_values(["test_acc", "epoch"], ascending=[False, True]).drop_duplicates(KEYS).set_index(KEYS)
    trials["best_acc"] = 100 * best.test_acc
    trials["best_epoch"] = best.epoch
    trials["seconds"] = epochs.groupby(KEYS).seconds.sum()
    trials["ok"] = trials.steps.notna() & trials.diverged_step.isna()
    trials["smoothing"] = window

    base = trials.loc[baseline]
    target = rows.seed.map(base.train_loss.where(base.ok)).to_numpy()
    reached = pd.Series(np.where(smooth <= target, rows.step, np.nan)).groupby(group).min().to_numpy()
    trials["steps_to_target"] = pd.Series(reached, index=found.index).where(trials.ok)
    trials["speedup"] = trials.index.get_level_values("seed").map(base.steps.where(base.ok)) / trials.steps_to_target

    keep = trials.ok.reindex(found.index).to_numpy()[group] & ~np.isnan(smooth)  # ok trials, full windows
    curves = rows.loc[keep, KEYS + ["step"]].assign(loss=smooth[keep])
    return trials, curves


def _summarise(trials: pd.DataFrame, config: Config, baseline: str, point: dict[str, str]) -> list[dict]:
    """One row per variant: mean/std over its `ok` seeds, paired Δ against the baseline, steps to target."""
    base = trials.loc[baseline]
    base_ok = base.index[base.ok]
    rows = []
    for variant in (v.name for v in config.variants):
        own = trials.loc[variant]
        ok = own[own.ok]
        pairs = ok.index.intersection(base_ok)
        row = {**point, "variant": variant, "baseline": variant == baseline, "seeds": len(ok),
               "pairs": None if variant == baseline else len(pairs), "epoch": int(own.epoch.iloc[0]),
               "epochs": config.training.epochs}
        for metric, (_, higher) in METRICS.items():
            row[f"{metric}_mean"], row[f"{metric}_std"] = ok[metric].mean(), ok[metric].std()
            if variant != baseline:
                row.update(_paired(metric, own.loc[pairs, metric], base.loc[pairs, metric], higher))
        row["best_epoch"] = ok.best_epoch.mean()
        reached = own.loc[pairs, "steps_to_target"].dropna()
        row.update(steps=ok.steps.mean(), steps_to_target=reached.mean(),
                   speedup=own.loc[reached.index, "speedup"].mean(), target_reached=len(reached),
                   target_pairs=len(pairs), smoothing=int(own.smoothing.iloc[0]))
        row["diverged"] = "; ".join(f"seed {seed} diverged at step {int(step)}"
                                    for seed, step in own.diverged_step.dropna().items())
        row["missing"] = ", ".join(str(s) for s in own.index[own.steps.isna()])
        rows.append(row)
    return rows


def _paired(metric: str, variant: pd.Series, baseline: pd.Series, higher: bool) -> dict:
    """Mean paired difference, its t-interval and paired t-test p-value (NaN below two pairs), and wins."""
    d = (variant - baseline).to_numpy()
    low = high = p = np.nan
    if len(d) >= 2 and not np.any(d):
        low = high = 0.0
        p = 1.0  # identical results: no evidence of a difference (scipy's t is 0/0 here)
    elif len(d) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # near-constant differences: scipy warns, result holds
            test = stats.ttest_rel(variant.to_numpy(), baseline.to_numpy())
        interval = test.confidence_interval(CONFIDENCE)
        low, high, p = float(interval.low), float(interval.high), float(test.pvalue)
    wins = int(np.sum(d > 0 if higher else d < 0)) if len(d) else None
    return {f"{metric}_delta": d.mean() if len(d) else np.nan, f"{metric}_ci_low": low, f"{metric}_ci_high": high,
            f"{metric}_p": p, f"{metric}_wins": wins}
