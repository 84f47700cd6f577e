"""`bnbench compare`: read run folders once and measure every variant against the baseline, seed by seed.

Per trial (one variant, seed and sweep point), at the compared epoch E (the last epoch that every trial of the
sweep point that did not diverge has finished, so a partial run is compared on an equal budget; `epoch=N` picks
another):
  train_loss   mean per-batch training loss over epoch E, from batches.csv (the tutorial's number)
  test_loss, test_acc   epochs.csv at epoch E; accuracies in percent
  best_acc     the highest test accuracy over epochs 1..E; best_epoch: the first epoch that reached it. The epoch
               is chosen on the test set itself, so this number is optimistic (labelled so wherever it is shown)
  seconds      wall seconds of the trial's epochs 1..E
Per variant: mean ± std over its seeds. Δ = mean of paired differences, seed s of the variant minus seed s of the
baseline (same initial weights, same batch order), with a 95% t-interval and the paired t-test's p-value, and
the same p-values Holm-adjusted per metric across the run's variant x sweep-point comparisons (see `stats`);
"wins" counts the seeds where the variant is better. Wall seconds get Δ only: trials that share cores slow each
other, so their seconds are no paired measurement. A trial whose loss became NaN/inf within epochs 1..E is left
out of every statistic and counted (diverged_seeds); a seed whose baseline diverged has no pair.

Steps to target (the BN paper's "fewer steps to the same result"), two measures, each judged the same way for
the baseline and the variant of one seed (stats.first_reach, stats.speed_ratio):
  steps      target: the baseline's final train loss (epoch E's mean); curve: the per-batch training loss,
             smoothed by a trailing mean over `log_every` batches (one epoch's when 0), across epochs.
  steps_acc  target: the baseline's best test accuracy over its evaluations through epoch E (evals.csv: every
             `eval_every` steps and at epoch ends); curve: test accuracy in eval mode at those steps.
Speedup of seed s = T_baseline / T_variant, the steps at which each first met the target: the baseline's own is
exactly 1, a slower variant's is below 1; a crossing at a curve's first point and a variant that never reaches
the target give bounds, and across seeds the geometric mean comes with a t-interval on the log ratios (or is a
bound itself), with how many seeds reached the target.

A comparison's table has one row per sweep point x variant: experiment, run, status, partial, the sweep paths,
variant, baseline (True on its row), seeds (that did not diverge), pairs, trials (seeds with results),
diverged_seeds, epoch (compared), epochs (configured); per metric m: m_mean, m_std, m_delta and, for tested
metrics, m_ci_low, m_ci_high, m_p, m_p_holm, m_tests (how many p-values Holm adjusted for), m_wins, m_note (why
an interval is missing or unreliable); best_epoch; per steps measure t: t_at (mean step of the seeds that
crossed), t_speedup, t_bound ('' exact, '≥'/'≤' a bound, 'n/a'), t_ci_low, t_ci_high, t_p, t_p_holm, t_tests,
t_pairs, t_na, t_reached, t_note; steps_total, smoothing; diverged ("seed 1 diverged at step 312; ...") and
missing (seeds without rows yet); verdict (one quotable line, see `verdict`).

Grouping: each run is compared on its own. Runs of one experiment are listed together, newest first, but never
pooled: a trial's result depends only on its config and seed, so pooling two runs of one config counts the same
trials twice, and pooling runs with different configs mixes two experiments.
"""
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from . import store
from .config import Config, validate
from .errors import BnbenchError
from .stats import ADVISED_SEEDS, ALPHA, first_reach, geometric_speedup, holm, mean_interval, speed_ratio

METRICS = {  # key: (label, higher is better, paired test)
    "train_loss": ("final train loss", False, True),
    "test_loss": ("final test loss", False, True),
    "test_acc": ("final test acc %", True, True),
    "best_acc": ("best test acc % (optimistic)", True, True),
    "seconds": ("seconds per trial", False, False),
}
TARGETS = {  # steps measure: (what the target is, as "<baseline>'s ...")
    "steps": "final train loss",
    "steps_acc": "best test acc",
}
TESTED = ["ci_low", "ci_high", "p", "p_holm", "tests", "wins", "note"]
TARGET_STATS = ["at", "speedup", "bound", "ci_low", "ci_high", "p", "p_holm", "tests", "pairs", "na", "reached",
                "note"]
KEYS = ["variant", "seed"]
NAN_TEXT = ["nan", "NaN", "-nan"]  # how a diverged loss is written; an empty field is damage, not NaN
COUNTS = ["seeds", "pairs", "trials", "diverged_seeds", "epoch", "epochs", "smoothing",
          *(f"{m}_{s}" for m, (_, _, tested) in METRICS.items() if tested for s in ("wins", "tests")),
          *(f"{t}_{s}" for t in TARGETS for s in ("tests", "pairs", "na", "reached"))]


def metric_columns(metric: str) -> list[str]:
    """The table's columns of one --metric choice."""
    if metric in TARGETS:
        return [f"{metric}_{s}" for s in TARGET_STATS]
    tested = METRICS[metric][2]
    return [f"{metric}_{s}" for s in ["mean", "std", "delta", *TESTED * tested]] + ["best_epoch"] * (
        metric == "best_acc")


@dataclass
class Results:
    """A run folder, each file read once."""
    dir: Path
    config: Config
    status: str  # complete, running or partial
    batches: pd.DataFrame  # sweep columns are kept as the text bnbench wrote
    epochs: pd.DataFrame
    evals: pd.DataFrame  # evals.csv; for runs made before it existed, the epoch ends from epochs.csv


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
        """Test accuracy (%) at each evaluation step through epoch E: mean and std over the `ok` seeds of each
        variant."""
        ok = self.trials.loc[self.trials.ok, self.points + KEYS + ["epoch"]].rename(columns={"epoch": "last"})
        rows = self.results.evals.merge(ok, on=self.points + KEYS)
        rows = rows[rows.epoch <= rows["last"]].assign(acc=lambda d: 100 * d.test_acc)
        out = (rows.groupby(self.points + ["variant", "step"]).acc
               .agg(acc_mean="mean", acc_std="std", seeds="size").reset_index())
        return self._ordered(out, ["step"])

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
    return Results(run_dir, config, status, batches, epochs, _evals(run_dir, config, batches, epochs, labels))


def _evals(run_dir: Path, config: Config, batches: pd.DataFrame, epochs: pd.DataFrame,
           labels: list[str]) -> pd.DataFrame:
    """evals.csv, checked against epochs.csv (same epochs per trial, steps increasing); without it (older runs),
    one evaluation per epoch end: epochs.csv's test numbers at the epoch's last step."""
    path = run_dir / "evals.csv"
    if not path.exists():
        ends = batches.groupby(labels + ["epoch"], sort=False).step.max().reset_index()
        return ends.merge(epochs[labels + ["epoch", "test_loss", "test_acc"]], on=labels + ["epoch"])
    evals = _read_csv(path, labels, ["epoch", "step"], ["test_loss", "test_acc"])
    _check_trials(path, evals, config)
    by_trial = evals.groupby(labels, sort=False)
    backwards = (by_trial.step.diff() <= 0).to_numpy()
    if backwards.any():
        line = int(np.argmax(backwards))
        raise BnbenchError(f"{path}: line {line + 2}: step {evals.step.iloc[line]} does not follow the step before "
                           f"it; rows were deleted, repeated or reordered")
    have = by_trial.epoch.max().reindex(epochs.groupby(labels, sort=False).epoch.max().index).fillna(0).astype(int)
    want = epochs.groupby(labels, sort=False).epoch.max()
    differ = have != want
    if differ.any():
        trial = differ.idxmax()
        raise BnbenchError(f"{path}: {_trial(labels, trial)} has {have[trial]} epochs here but {want[trial]} in "
                           f"epochs.csv; one of the files was truncated or edited")
    return evals


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
        t, c = _trials(results, resolved, text, rows, _select(results.epochs, text), _select(results.evals, text),
                       baseline, epoch)
        tables += _summarise(t, resolved, baseline, text)
        trials.append(t.reset_index().assign(**text))
        curves.append(c.assign(**text))
    if not tables:
        raise BnbenchError(f"{results.dir / 'batches.csv'}: no finished epochs yet; wait for the run or resume it")
    table = pd.DataFrame(tables)
    for metric, (_, _, tested) in METRICS.items():  # a run of one variant has no paired columns yet
        for stat in ["delta", *[s for s in TESTED if s not in ("p_holm", "tests")] * tested]:
            if f"{metric}_{stat}" not in table:
                table[f"{metric}_{stat}"] = "" if stat == "note" else np.nan
    _adjust(table)
    table = table.astype({c: "Int64" for c in COUNTS})
    table["verdict"] = [None if row["baseline"] else verdict(row, baseline, list(config.sweep))
                        for row in table.to_dict("records")]
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
            epochs: pd.DataFrame, evals: pd.DataFrame, baseline: str,
            epoch: Optional[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    batches, epochs, evals = (f[f.epoch <= last] for f in (batches, epochs, evals))
    window = config.training.log_every or int(batches.batch.max())
    rows = batches.assign(final=batches.loss.where(batches.epoch == last),
                          bad=batches.step.where(~np.isfinite(batches.loss)))
    by_trial = rows.groupby(KEYS, sort=False)  # one grouping, reused: its groups are numbered in this order
    found = by_trial.agg(train_loss=("final", "mean"), steps=("step", "max"), diverged_step=("bad", "min"))
    smooth = by_trial.loss.rolling(window, min_periods=window).mean().droplevel(KEYS).reindex(rows.index).to_numpy()

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

    steps = rows.step.to_numpy()
    loss_curves = {key: (steps[i], smooth[i]) for key, i in by_trial.indices.items()}
    eval_steps, accuracy = evals.step.to_numpy(), 100 * evals.test_acc.to_numpy()
    acc_curves = {key: (eval_steps[i], accuracy[i]) for key, i in evals.groupby(KEYS).indices.items()}
    base = trials.loc[baseline]
    _steps_to_target(trials, baseline, "steps", loss_curves, base.train_loss.where(base.ok), higher=False)
    best_eval = pd.Series({seed: np.nanmax(values) for (variant, seed), (_, values) in acc_curves.items()
                           if variant == baseline}, dtype=float)
    _steps_to_target(trials, baseline, "steps_acc", acc_curves, best_eval.reindex(base.index).where(base.ok),
                     higher=True)

    group = by_trial.ngroup().to_numpy()
    keep = trials.ok.reindex(found.index).to_numpy()[group] & ~np.isnan(smooth)  # ok trials, full windows
    curves = rows.loc[keep, KEYS + ["step"]].assign(loss=smooth[keep])
    return trials, curves


def _steps_to_target(trials: pd.DataFrame, baseline: str, measure: str, curves: dict, targets: pd.Series,
                     higher: bool) -> None:
    """Columns `{measure}_reach`/`_step` (when each trial first met its seed's target, see stats.first_reach) and
    `_relation`/`_ratio`/`_why` (the baseline's step / the trial's, see stats.speed_ratio, and why there is none),
    for one target measure.
    A trial is judged on its curve through the compared epoch, up to a divergence; the budget is the baseline's
    total steps."""
    reach = {key: first_reach(*curves[key], targets.get(key[1], np.nan), higher) if key in curves else None
             for key in trials.index}
    trials[f"{measure}_reach"] = [r[0] if r else None for r in reach.values()]
    trials[f"{measure}_step"] = [r[1] if r else np.nan for r in reach.values()]
    ratios, why = [], []
    for (variant, seed), r in reach.items():
        base, budget = reach.get((baseline, seed)), trials.steps.get((baseline, seed))
        if r is None or base is None or not trials.ok.get((baseline, seed)):
            ratios.append(("n/a", np.nan))
        elif variant == baseline:
            ratios.append(("n/a", np.nan) if base[0] in ("never", "undefined") else ("=", 1.0))
        else:
            ratios.append(speed_ratio(base, r, int(budget)))
        why.append("" if ratios[-1][0] != "n/a" else "no results" if r is None else
                   f"{baseline} diverged" if base is None or not trials.ok.get((baseline, seed)) else
                   "no full smoothing window" if "undefined" in (base[0], r[0]) else
                   f"{baseline} never met its own target" if base[0] == "never" else
                   "both met it at their first measured point")
    trials[f"{measure}_relation"] = [kind for kind, _ in ratios]
    trials[f"{measure}_ratio"] = [value for _, value in ratios]
    trials[f"{measure}_why"] = why  # why a seed has no ratio


def _summarise(trials: pd.DataFrame, config: Config, baseline: str, point: dict[str, str]) -> list[dict]:
    """One row per variant: mean/std over its `ok` seeds, paired Δ against the baseline, divergence counts, and
    steps to target across seeds."""
    base = trials.loc[baseline]
    base_ok = base.index[base.ok]
    rows = []
    for variant in (v.name for v in config.variants):
        own = trials.loc[variant]
        ok = own[own.ok]
        pairs = ok.index.intersection(base_ok)
        ran = own.index[own.steps.notna()]
        row = {**point, "variant": variant, "baseline": variant == baseline, "seeds": len(ok),
               "pairs": None if variant == baseline else len(pairs), "epoch": int(own.epoch.iloc[0]),
               "epochs": config.training.epochs, "trials": len(ran),
               "diverged_seeds": int(own.diverged_step.notna().sum())}
        for metric, (_, higher, tested) in METRICS.items():
            row[f"{metric}_mean"], row[f"{metric}_std"] = ok[metric].mean(), ok[metric].std()
            if variant != baseline:
                row.update(_paired(metric, own.loc[pairs, metric], base.loc[pairs, metric], higher, tested))
        row["best_epoch"] = ok.best_epoch.mean()
        row.update(steps_total=ok.steps.mean(), smoothing=int(own.smoothing.iloc[0]))
        for measure in TARGETS:
            row.update(_speedup(measure, own.loc[ran], variant == baseline))
        row["diverged"] = "; ".join(f"seed {seed} diverged at step {int(step)}"
                                    for seed, step in own.diverged_step.dropna().items())
        row["missing"] = ", ".join(str(s) for s in own.index[own.steps.isna()])
        rows.append(row)
    return rows


def _paired(metric: str, variant: pd.Series, baseline: pd.Series, higher: bool, tested: bool) -> dict:
    """Mean paired difference, with (for tested metrics) its t-interval, p-value, the note on them, and wins."""
    d = (variant - baseline).to_numpy()
    summary = mean_interval(d)
    if not tested:
        return {f"{metric}_delta": summary["mean"]}
    wins = int(np.sum(d > 0 if higher else d < 0)) if len(d) else None
    return {f"{metric}_delta": summary["mean"], f"{metric}_ci_low": summary["ci_low"],
            f"{metric}_ci_high": summary["ci_high"], f"{metric}_p": summary["p"], f"{metric}_wins": wins,
            f"{metric}_note": summary["note"]}


def _speedup(measure: str, own: pd.DataFrame, baseline: bool) -> dict:
    """A variant's steps to target across its seeds: the geometric mean speedup (or a bound), interval, p, how
    many seeds reached the target, and the mean step of those that crossed it after their first point. The
    baseline is 1 by definition, on the seeds where it met its own target."""
    summary = geometric_speedup(list(zip(own[f"{measure}_relation"], own[f"{measure}_ratio"])))
    summary["reached"] = int(own[f"{measure}_reach"].isin(["at", "within"]).sum())  # with or without a ratio
    if baseline and summary["pairs"]:
        summary.update(speedup=1.0, ci_low=np.nan, ci_high=np.nan, p=np.nan, note="")
    if summary["na"]:
        reasons = own.loc[own[f"{measure}_relation"] == "n/a", f"{measure}_why"].value_counts()
        na = "n/a on " + ", ".join(f"{n} seed{'s' * (n != 1)}: {why}" for why, n in reasons.items())
        summary["note"] = f"{summary['note']}; {na}" if summary["pairs"] and summary["note"] else na
    exact = own.loc[own[f"{measure}_reach"] == "at", f"{measure}_step"]
    return {f"{measure}_at": exact.mean() if len(exact) else np.nan,
            **{f"{measure}_{k}": v for k, v in summary.items()}}


def _adjust(table: pd.DataFrame) -> None:
    """Holm-adjusted p-values per metric, across the run's variant x sweep-point comparisons; the count of tests
    each was adjusted for."""
    for name in [m for m, (_, _, tested) in METRICS.items() if tested] + list(TARGETS):
        column = f"{name}_p"
        adjusted, tests = holm(table[column].to_numpy(dtype=float))
        table[f"{name}_p_holm"] = adjusted
        table[f"{name}_tests"] = tests


# ---- the verdict -------------------------------------------------------------------------------------------------

def verdict(row: dict, baseline: str, points: list[str]) -> str:
    """One line a person can quote for a variant (x sweep point) against the baseline: test accuracy's Δ with its
    interval, raw and Holm-adjusted p, wins; the speedups to both targets; and the conclusion, which follows the
    Holm-adjusted p-values ("better"/"worse"/"faster"/"slower" only below ALPHA after adjustment)."""
    where = "".join(f" @ {path}={row[path]}" for path in points)
    parts = [f"{row['variant']}{where} vs {baseline}:"]
    if not row["pairs"]:
        reason = f"{row['diverged_seeds']}/{row['trials']} seeds diverged" if row["diverged_seeds"] else \
            "no seed paired with the baseline"
        return " ".join(parts + [f"nothing to compare ({reason})"])
    claims = [_accuracy_claim(row)] + [_speed_claim(row, t, f"{baseline}'s {what}") for t, what in TARGETS.items()]
    claims = [c for c in claims if c]
    diverged = [f"{row['variant']} diverged on {row['diverged_seeds']}/{row['trials']} seeds"] * bool(
        row["diverged_seeds"])
    return " ".join(parts) + " " + "; ".join(claims + diverged + [_conclusion(row)])


def _accuracy_claim(row: dict) -> str:
    d = row["test_acc_delta"]
    text = f"test acc {d:+.2f} pts"
    if not np.isnan(row["test_acc_ci_low"]):
        text += f" [{row['test_acc_ci_low']:+.2f}, {row['test_acc_ci_high']:+.2f}] 95% CI"
    if not np.isnan(row["test_acc_p"]):
        text += (f", p={row['test_acc_p']:.2g} (Holm p={row['test_acc_p_holm']:.2g}, "
                 f"{row['test_acc_tests']} test{'s' * (row['test_acc_tests'] != 1)})")
    text += f", wins {row['test_acc_wins']}/{row['pairs']}"
    return text + (f" ({row['test_acc_note']})" if row["test_acc_note"] else "")


def _speed_claim(row: dict, measure: str, target: str) -> str:
    speedup, bound = row[f"{measure}_speedup"], row[f"{measure}_bound"]
    reached = f"{row[f'{measure}_reached']}/{row[f'{measure}_pairs'] + row[f'{measure}_na']} seeds reached it"
    if bound == "n/a" or np.isnan(speedup):
        return f"speedup to {target}: n/a ({row[f'{measure}_note']}; {reached})"
    text = f"speedup {bound}{speedup:.2f}×"
    if not np.isnan(row[f"{measure}_ci_low"]):
        text += f" [{row[f'{measure}_ci_low']:.2f}, {row[f'{measure}_ci_high']:.2f}]"
    return f"{text} to {target} ({reached})"


def _conclusion(row: dict) -> str:
    """What the Holm-adjusted p-values support, and whether more seeds are needed."""
    found = []
    if row["test_acc_p_holm"] < ALPHA:
        found.append("better test acc" if row["test_acc_delta"] > 0 else "worse test acc")
    for measure, target in (("steps", "the target loss"), ("steps_acc", "the target acc")):
        if row[f"{measure}_p_holm"] < ALPHA:
            found.append(f"{'faster' if row[f'{measure}_speedup'] > 1 else 'slower'} to {target}")
    text = ", ".join(found) + f" (Holm p < {ALPHA:g})" if found else "no difference shown after Holm"
    if row["pairs"] < ADVISED_SEEDS:
        text += f"; only {row['pairs']} pair{'s' * (row['pairs'] != 1)}: run ≥ {ADVISED_SEEDS} seeds"
    return text
