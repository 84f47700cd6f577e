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

Reading: each run is checked whole, and any mismatch between its files is damage, except while it is being
written (status running): then it is compared on what it has finished, each trial on the epochs that batches.csv,
epochs.csv and evals.csv all hold in full (see `_snapshot`). Rows are numbered by trial once (`Layout`) and
worked on as arrays, trial by trial, so that a folder of hundreds of runs compares in seconds
(benchmarks/compare_speed.py).

Grouping (see `_groups`, `pool`): runs of one experiment are listed together, newest first. Runs whose resolved
configs (config.yaml) differ only in `seeds` are pooled into one comparison: a trial's result depends only on its
config and seed, and pairing is per seed, so their trials are one experiment. Each seed's trials are taken whole
from the newest run that has finished all of them (every epoch, or diverged); a seed in several runs is taken
once, from the newest, and a note says so; a partial run adds only its finished seeds, and a note names the rest
(when no run of a group has finished a seed, each is compared on its own, on what it has finished).
Runs that differ in anything else are never pooled. `pool=False` compares every run on its own.

A baseline from another run (`VARIANT@RUN`, see `against`): the variants of every other run are paired, seed by
seed, with that run's VARIANT trials, on the seeds both have (a note lists them); the runs must use the same data
set, share a seed, and, if the baseline's run has a sweep, have the same sweep points.
"""
import io
import json
import multiprocessing
import os
import signal
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import yaml
from pandas.api.indexers import BaseIndexer

from . import store
from .config import Config, diff, validate
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
POOL_FROM = 16  # runs; fewer are compared in this process (starting workers would cost more than it saves)
NAN_TEXT = ["nan", "NaN", "-nan"]  # how a diverged loss is written; an empty field is damage, not NaN
PAIRED = [f"{m}_{s}" for m, (_, _, tested) in METRICS.items()
          for s in ["delta", *[s for s in TESTED if s not in ("p_holm", "tests")] * tested]]
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
    """A run folder, each file read once. Rows are sorted by trial (file order within one), with the trial's number
    (see Layout) in `trial`; the index is the row's position in its file."""
    dir: Path
    layout: "Layout"
    status: str  # complete, running or partial
    batches: pd.DataFrame  # sweep columns are kept as the text bnbench wrote
    epochs: pd.DataFrame
    evals: pd.DataFrame  # evals.csv; for runs made before it existed, the epoch ends from epochs.csv
    sources: tuple[Path, ...] = ()  # the run folders it was combined from (pooled, or a baseline's), newest first
    notes: tuple[str, ...] = ()  # what combining them did (seeds taken, left out, paired)
    label: str = ""  # how titles name a combined run ("runs A + B (pooled)"); "" for "run <run id>"

    @property
    def config(self) -> Config:
        return self.layout.config

    @property
    def runs(self) -> str:
        """The run folder, or the folders it was combined from."""
        return "; ".join(map(str, self.sources or [self.dir]))


@dataclass
class Comparison:
    """One run measured against its baseline."""
    results: Results
    baseline: str
    table: pd.DataFrame  # one row per sweep point x variant, columns as in the module docstring
    parts: list[tuple[dict, dict]]  # per sweep point, the columns of `trials` and of `curves`

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial: its own numbers; `ok` = finished epoch E without diverging. Made when first asked
        for: most comparisons are only printed."""
        return _joined([pd.DataFrame(trials) for trials, _ in self.parts])

    @cached_property
    def curves(self) -> pd.DataFrame:
        """The smoothed training loss of the `ok` trials, per step through epoch E."""
        return _joined([pd.DataFrame(curves) for _, curves in self.parts])

    @property
    def name(self) -> str:
        return self.results.config.name

    @property
    def title(self) -> str:
        results = self.results
        mark = "" if results.status == "complete" else f" [{results.status}]"
        return f"{self.name} · {describe(results.config)} · {results.label or f'run {results.dir.name}'}{mark}"

    @property
    def points(self) -> list[str]:
        return list(self.results.config.sweep)

    @cached_property
    def windows(self) -> pd.DataFrame:
        """The tutorial's "Loss after mini-batch N" lines for epoch E: per trial, the mean loss of each full
        window of `smoothing` batches; per variant and window, mean, std and count over the `ok` seeds."""
        ok = self.trials.loc[self.trials.ok, ["trial", "epoch", "smoothing"]]
        rows = self.results.batches.merge(ok, on=["trial", "epoch"])
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
        ok = self.trials.loc[self.trials.ok, ["trial", "epoch"]].rename(columns={"epoch": "last"})
        rows = self.results.evals.merge(ok, on="trial")
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


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def describe(config: Config) -> str:
    """'digits, mlp [64, 32]', 'cifar10, torchvision resnet18 width 64': the data set and model, for titles."""
    model = config.model
    layers = {"mlp": f"{model.hidden}", "cnn": f"{model.channels} + {model.hidden}",
              "torchvision": f"{model.name} width {model.width}", "factory": f"{model.factory}"}[model.kind]
    return f"{config.dataset.name}, {model.kind} {layers}"


# ---- many runs ---------------------------------------------------------------------------------------------------

def compare_runs(paths: list[Path], baseline: Optional[str] = None, epoch: Optional[int] = None,
                 pool: bool = True) -> tuple[list[Comparison], list[str]]:
    """Compare every run found under `paths`: grouped by experiment, newest run first, plus one warning per run
    that could not be compared. Runs whose configs differ only in seeds are pooled unless `pool` is False (see
    the module docstring). `baseline` is a variant name, or VARIANT@RUN: that variant of run RUN (a run folder or
    run id) as every run's baseline. Raises BnbenchError when there is nothing to compare."""
    for path in paths:
        if path.is_file():
            in_run = any((path.parent / marker).is_file() for marker in ("meta.json", "config.yaml"))
            raise BnbenchError(f"{path}: is a file; pass " + (f"its run folder, {path.parent}" if in_run else
                               "a results folder (e.g. results) or a run folder (results/<name>/<run id>)"))
    run_dirs = store.find_runs(paths)
    if not run_dirs:
        raise BnbenchError(f"{', '.join(map(str, paths))}: no bnbench runs found (no folder holds config.yaml "
                           f"or meta.json); pass a results folder or run folders")
    variant, _, at = (baseline or "").partition("@")
    reference, outcomes = None, []
    if at:
        reference = load_run(store.find_run(at, run_dirs))
        variant = variant or reference.config.baseline
        if reference.dir in run_dirs:  # its own variants against VARIANT, as usual
            outcomes.append([_compare_one(reference.dir, variant, epoch)])
        run_dirs = [d for d in run_dirs if d != reference.dir]
    groups = _groups(run_dirs) if pool else [[d] for d in run_dirs]
    if reference is not None:
        _check_pairs(reference, variant, groups)
    outcomes += _each_run(groups, partial(_compare_group, baseline=variant or None, epoch=epoch,
                                          reference=reference))
    outcomes = [outcome for group in outcomes for outcome in group]
    comparisons = [outcome for outcome in outcomes if isinstance(outcome, Comparison)]
    skipped = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if not comparisons:
        more = f" (and {len(skipped) - 1} more runs that cannot be compared)" if len(skipped) > 1 else ""
        raise BnbenchError(skipped[0].partition(": ")[2] + more)
    names = list(dict.fromkeys(c.name for c in comparisons))
    return sorted(comparisons, key=lambda c: names.index(c.name)), skipped


def _groups(run_dirs: list[Path]) -> list[list[Path]]:
    """The runs (newest first) in groups whose configs differ only in seeds; a run whose config cannot be read
    is a group of its own (comparing it says why)."""
    groups: dict = {}
    for run_dir in run_dirs:
        try:
            key = json.dumps(_layout(run_dir).config.model_dump(mode="json", exclude={"seeds"}), sort_keys=True)
        except BnbenchError:
            key = run_dir
        groups.setdefault(key, []).append(run_dir)
    return list(groups.values())


def _compare_group(run_dirs: list[Path], baseline: Optional[str], epoch: Optional[int],
                   reference: Optional[Results]) -> list:
    """The comparison of one group of runs (pooled when there are several), or of each run: Comparisons, and for
    each run that could not be compared, why."""
    if len(run_dirs) == 1 and reference is None:
        return [_compare_one(run_dirs[0], baseline, epoch)]
    loaded, skipped = [], []
    for run_dir in run_dirs:
        try:
            loaded.append(load_run(run_dir))
        except BnbenchError as e:
            skipped.append(f"skipped {run_dir}: {e}")
    if len(loaded) > 1 and not any(_finished_seeds(results) for results in loaded):
        runs = loaded  # nothing to pool: each run on what it has finished, as without pooling
    else:
        runs = [pooled(loaded)] if len(loaded) > 1 else loaded
    return [_compare_results(results, baseline, epoch, reference) for results in runs] + skipped


def _compare_results(results: Results, baseline: Optional[str], epoch: Optional[int],
                     reference: Optional[Results]) -> Comparison | str:
    """The comparison of a run (against `reference`'s variant `baseline`, if given), or why it was skipped."""
    try:
        if reference is not None:
            results, baseline = against(results, reference, baseline or reference.config.baseline), None
        return compare_run(results, baseline, epoch)
    except BnbenchError as e:
        return f"skipped {results.runs}: {e}"


def _compare_one(run_dir: Path, baseline: Optional[str], epoch: Optional[int]) -> Comparison | str:
    """The run's comparison, or why it was skipped."""
    try:
        return compare_run(load_run(run_dir), baseline, epoch)
    except BnbenchError as e:
        return f"skipped {run_dir}: {e}"


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
    store.RunLock.close_inherited()


# ---- reading one run ---------------------------------------------------------------------------------------------

ROWS = {  # file: its integer and float columns after the trial's labels, in the order the runner appends them
    "batches.csv": (["epoch", "batch", "step"], ["loss"]),
    "epochs.csv": (["epoch"], ["train_loss", "train_acc", "test_loss", "test_acc", "seconds"]),
    "evals.csv": (["epoch", "step"], ["test_loss", "test_acc"]),
}


@dataclass(frozen=True)
class Layout:
    """What config.yaml says about a run's rows, worked out once per distinct config (see `_layout`): the trials,
    numbered in the runner's order (sweep point, then seed, then variant), and each sweep point's config and
    values as the CSVs spell them."""
    config: Config
    points: list[dict[str, str]]
    resolved: list[Config]
    numbers: dict[tuple, int]  # (variant, seed, *sweep values as text) -> trial number

    @classmethod
    def of(cls, config: Config, resolved: Optional[list[Config]] = None) -> "Layout":
        """`resolved`: each sweep point's config, when known (a combined run's, see `pooled` and `against`)."""
        points = _point_texts(config)
        keys = [(v.name, s, *p.values()) for p in points for s in config.seeds for v in config.variants]
        return cls(config, points, resolved or [config.with_values(p) for p in config.sweep_points()],
                   {key: number for number, key in enumerate(keys)})

    def changed(self, **fields) -> "Layout":
        """The layout of this run's config with `fields` replaced (not validated again: a combined run's)."""
        return Layout.of(self.config.model_copy(update=fields), [c.model_copy(update=fields) for c in self.resolved])

    @property
    def labels(self) -> list[str]:
        return KEYS + list(self.config.sweep)

    @property
    def per_point(self) -> int:
        return len(self.config.seeds) * len(self.config.variants)

    @property
    def size(self) -> int:
        return len(self.points) * self.per_point

    def point_trials(self, point: int) -> np.ndarray:
        """Sweep point `point`'s trial numbers, variant by variant, seeds within: the order of compare's tables."""
        variants = np.arange(len(self.config.variants))[:, None]
        return point * self.per_point + (np.arange(len(self.config.seeds)) * len(variants) + variants).ravel()

    def describe(self, number: int) -> str:
        """'trial plain seed 2 optimizer.lr=0.001', for messages."""
        point, rest = divmod(number, self.per_point)
        seed, variant = divmod(rest, len(self.config.variants))
        return _trial(self.labels, (self.config.variants[variant].name, self.config.seeds[seed],
                                    *self.points[point].values()))


def _layout(run_dir: Path) -> Layout:
    """config.yaml's layout, cached by the file's text: the runs of one experiment share one, and parsing YAML is
    a good part of reading a small run. A config that does not load takes the uncached path, whose error names
    the file."""
    path = run_dir / "config.yaml"
    try:
        return _layout_of(store.read_regular(path).decode())
    except (OSError, ValueError, yaml.YAMLError, BnbenchError):
        return Layout.of(validate(store.read_config(run_dir), str(path)))


@lru_cache(maxsize=64)
def _layout_of(text: str) -> Layout:
    return Layout.of(validate(yaml.safe_load(text), "config.yaml"))


def load_run(run_dir: Path) -> Results:
    """Read and check a run folder; any damage raises one BnbenchError naming the file and line.

    A run being written (status running) is read as a snapshot of what it has finished (see `_snapshot`); any
    other run must be whole, and a mismatch between its files is damage."""
    layout = _layout(run_dir)
    before = _status(run_dir)
    data = {name: _read_bytes(run_dir / name) for name in reversed(ROWS)}  # the reverse of the writing order
    status = before if before == "running" else _status(run_dir)  # a run resumed while we read is live too
    frames = {name: _parse(run_dir / name, data[name], layout, live=status == "running")
              for name in ROWS if data[name] is not None}
    if status == "running":
        _snapshot(frames)
    batches, epochs = _by_trial(frames["batches.csv"]), _by_trial(frames["epochs.csv"])
    _check_rows(run_dir, batches, epochs, layout)
    return Results(run_dir, layout, status, batches, epochs,
                   _evals(run_dir, frames.get("evals.csv"), batches, epochs, layout))


def _status(run_dir: Path) -> str:
    return store.run_status(run_dir, store.read_meta(run_dir))


def _read_bytes(path: Path) -> Optional[bytes]:
    """The file's bytes; None for a missing evals.csv (runs made before it existed)."""
    try:
        return store.read_regular(path)
    except FileNotFoundError:
        if path.name in store.OPTIONAL:
            return None
        raise BnbenchError(f"{path}: missing; the run has written no results") from None
    except OSError as e:
        raise BnbenchError(f"{path}: cannot read ({e.strerror or e})") from None


def _parse(path: Path, data: bytes, layout: Layout, live: bool) -> pd.DataFrame:
    """One CSV's rows in file order, typed and checked, with each row's trial number in `trial`. In a live run
    a last line without its newline is one still being written, and is left out."""
    ints, floats = ROWS[path.name]
    labels = layout.labels
    expected = labels + ints + floats
    if not data.strip():
        raise BnbenchError(f"{path}: empty; expected the header line '{','.join(expected)}'")
    if not data.endswith(b"\n"):
        if not live:
            raise BnbenchError(f"{path}: the last line is cut off (truncated file?); restore the file or re-run")
        data = data[:data.rfind(b"\n") + 1]
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={c: object for c in labels if c != "seed"},
                            keep_default_na=False, na_values={c: NAN_TEXT for c in floats})
    except (pd.errors.ParserError, ValueError) as e:
        raise BnbenchError(f"{path}: not a valid CSV ({str(e).strip()}); restore the file or re-run") from None
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        what = f"missing column '{missing[0]}'" if missing else f"unexpected column '{extra[0]}'"
        raise BnbenchError(f"{path}: {what}; expected the columns {','.join(expected)} (from config.yaml)")
    for column in ["seed", *ints, *floats]:
        frame[column] = _numbers(path, frame[column], integer=column not in floats)
    frame["trial"] = _trial_numbers(path, frame, layout)
    return frame


def _numbers(path: Path, column: pd.Series, integer: bool) -> pd.Series:
    if column.dtype == ("int64" if integer else "float64"):
        return column  # parsed cleanly: NaN only from NAN_TEXT
    if pd.api.types.is_integer_dtype(column) or (not integer and pd.api.types.is_float_dtype(column)):
        return column.astype("int64" if integer else "float64")
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


def _trial_numbers(path: Path, frame: pd.DataFrame, layout: Layout) -> np.ndarray:
    """Each row's trial number (see Layout); every row must belong to a trial of config.yaml. The labels are
    looked up once per distinct combination, not per row."""
    combined, uniques = np.zeros(len(frame), dtype=np.int64), []
    for column in layout.labels:
        codes, values = pd.factorize(frame[column].to_numpy())
        combined = combined * len(values) + codes
        uniques.append(values)
    keys, inverse = np.unique(combined, return_inverse=True)
    digits = []
    for values in reversed(uniques):  # each distinct combination's labels, back from its mixed-radix number
        keys, digit = np.divmod(keys, len(values))
        digits.insert(0, values[digit])
    numbers = np.array([layout.numbers.get(key, -1) for key in zip(*digits)], dtype=np.int64)[inverse.ravel()]
    if (numbers < 0).any():
        line = int(np.argmax(numbers < 0))
        trial = _trial(layout.labels, tuple(frame[layout.labels].iloc[line]))
        raise BnbenchError(f"{path}: line {line + 2}: {trial} is not in config.yaml; the file was edited or "
                           f"belongs to another run")
    return numbers


def _snapshot(frames: dict[str, pd.DataFrame]) -> None:
    """Keep, per trial of a live run, the epochs that every file holds in full: what the run has finished.

    The runner appends a trial's epoch to batches.csv, then epochs.csv, then evals.csv, and a reader may see any
    prefix of each. load_run reads them in the reverse order, so an epoch in epochs.csv is whole in batches.csv,
    read later. evals.csv, read first, may hold part of an epoch: its last evaluation is at the epoch's last
    step, so the epoch is whole there once that row is. An epoch not yet in every file waits for the next read."""
    def keys(frame: pd.DataFrame) -> np.ndarray:
        return frame.trial.to_numpy() * 2 ** 32 + frame.epoch.to_numpy()

    batches, epochs, evals = (frames.get(name) for name in ROWS)
    whole = np.intersect1d(keys(batches), keys(epochs))
    if evals is not None:
        ends = batches.groupby(["trial", "epoch"]).step.max().rename("end")
        ended = evals.join(ends, on=["trial", "epoch"]).end.to_numpy() == evals.step.to_numpy()
        whole = np.intersect1d(whole, keys(evals)[ended])
    for name, frame in frames.items():
        frames[name] = frame[np.isin(keys(frame), whole)]


def _by_trial(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by trial, file order within one; the index stays each row's position in the file. A finished
    run's files are in trial order already."""
    trial = frame.trial.to_numpy()
    return frame if (trial[1:] >= trial[:-1]).all() else frame.iloc[np.argsort(trial, kind="stable")]


def _spans(frame: pd.DataFrame, trials: int) -> np.ndarray:
    """Where each trial's rows start in a frame sorted by trial: trial i's are rows spans[i]:spans[i + 1]."""
    return np.searchsorted(frame.trial.to_numpy(), np.arange(trials + 1))


def _first(frame: pd.DataFrame, mask: np.ndarray) -> int:
    """The position (in `frame`) of the earliest row in the file among those in `mask`."""
    rows = np.flatnonzero(mask)
    return int(rows[np.argmin(frame.index.to_numpy()[rows])])


def _per_trial_max(frame: pd.DataFrame, column: str, trials: int) -> np.ndarray:
    out = np.zeros(trials, dtype=np.int64)
    np.maximum.at(out, frame.trial.to_numpy(), frame[column].to_numpy())
    return out


def _check_numbering(path: Path, frame: pd.DataFrame, column: str, trials: int) -> None:
    """`column` runs 1, 2, 3, ... within each trial."""
    values = frame[column].to_numpy()
    order = np.arange(len(frame)) - _spans(frame, trials)[frame.trial.to_numpy()] + 1
    wrong = values != order
    if wrong.any():
        i = _first(frame, wrong)
        raise BnbenchError(f"{path}: line {frame.index[i] + 2}: {column} {values[i]} should be {order[i]}; rows "
                           f"were deleted, repeated or reordered")


def _check_rows(run_dir: Path, batches: pd.DataFrame, epochs: pd.DataFrame, layout: Layout) -> None:
    """Steps and epochs run 1, 2, 3, ... per trial, only a trial's last loss may be NaN/inf, and both files
    hold the same epochs of each trial."""
    _check_numbering(run_dir / "batches.csv", batches, "step", layout.size)
    _check_numbering(run_dir / "epochs.csv", epochs, "epoch", layout.size)
    last = np.diff(_spans(batches, layout.size))[batches.trial.to_numpy()]  # steps are 1..n: the last is n
    early = ~np.isfinite(batches.loss.to_numpy()) & (batches.step.to_numpy() != last)
    if early.any():
        raise BnbenchError(f"{run_dir / 'batches.csv'}: line {batches.index[_first(batches, early)] + 2}: the loss "
                           f"is not finite but the trial goes on; the file was edited")
    ran, done = _per_trial_max(batches, "epoch", layout.size), _per_trial_max(epochs, "epoch", layout.size)
    differ = ran != done
    if differ.any():
        trial = int(np.argmax(differ))
        raise BnbenchError(f"{run_dir / 'epochs.csv'}: {layout.describe(trial)} has {done[trial]} epochs here but "
                           f"{ran[trial]} in batches.csv; one of the files was truncated or edited")


def _evals(run_dir: Path, evals: Optional[pd.DataFrame], batches: pd.DataFrame, epochs: pd.DataFrame,
           layout: Layout) -> pd.DataFrame:
    """evals.csv, checked against epochs.csv (same epochs per trial, steps increasing); without it (older runs),
    one evaluation per epoch end: epochs.csv's test numbers at the epoch's last step."""
    if evals is None:
        ends = batches.groupby(["trial", "epoch"]).step.max().reset_index()
        return ends.merge(epochs[layout.labels + ["trial", "epoch", "test_loss", "test_acc"]], on=["trial", "epoch"])
    path = run_dir / "evals.csv"
    evals = _by_trial(evals)
    trial, step = evals.trial.to_numpy(), evals.step.to_numpy()
    backwards = np.append(False, (trial[1:] == trial[:-1]) & (step[1:] <= step[:-1]))
    if backwards.any():
        i = _first(evals, backwards)
        raise BnbenchError(f"{path}: line {evals.index[i] + 2}: step {step[i]} does not follow the step before it; "
                           f"rows were deleted, repeated or reordered")
    have, want = _per_trial_max(evals, "epoch", layout.size), _per_trial_max(epochs, "epoch", layout.size)
    differ = (want > 0) & (have != want)
    if differ.any():
        trial = int(np.argmax(differ))
        raise BnbenchError(f"{path}: {layout.describe(trial)} has {have[trial]} epochs here but {want[trial]} in "
                           f"epochs.csv; one of the files was truncated or edited")
    return evals


def _trial(labels: list[str], values: tuple) -> str:
    """'trial plain seed 2' (with its sweep values), for messages."""
    return "trial " + " ".join([str(values[0]), "seed", str(values[1]), *(f"{k}={v}" for k, v in
                                                                       zip(labels[2:], values[2:]))])


# ---- runs combined ------------------------------------------------------------------------------------------------

def pooled(runs: list[Results]) -> Results:
    """One run made of `runs` (newest first), whose configs differ only in seeds: each seed's trials from the newest
    run that finished all of them, with notes on what was taken from where and what was left out. At least one
    run must have finished a seed."""
    finished = {r.dir: _finished_seeds(r) for r in runs}
    taken: dict[int, Results] = {}
    for results in runs:
        for seed in finished[results.dir]:
            taken.setdefault(seed, results)
    used = [r for r in runs if r in taken.values()]
    seeds = sorted(taken)
    layout = runs[0].layout.changed(seeds=seeds)
    parts = [(r, _mapping(r.layout, layout, lambda key, r=r: key if taken.get(key[1]) is r else None), {})
             for r in used]
    notes = [f"pooled {len(used)} runs whose configs differ only in seeds: " + "; ".join(
        f"seed{'s' * (len(own) > 1)} {_seed_list(own)} from {r.dir.name}"
        for r in used for own in [[s for s in seeds if taken[s] is r]])]
    for i, results in enumerate(runs):
        newer = [s for s in results.config.seeds if s in taken and taken[s] in runs[:i]]
        if newer:
            notes.append(f"seed{'s' * (len(newer) > 1)} {_seed_list(newer)} of {results.dir.name} also in a newer "
                         f"run: taken from the newest")
        unfinished = [s for s in results.config.seeds if s not in finished[results.dir] and s not in newer]
        if unfinished:
            notes.append(f"{results.dir.name} is {results.status}: its unfinished seed{'s' * (len(unfinished) > 1)} "
                         f"{_seed_list(unfinished)} left out (pooling uses finished trials only)")
    return Results(used[0].dir, layout, "complete", *_frames(parts), sources=tuple(r.dir for r in used),
                   notes=tuple(notes), label=f"runs {' + '.join(r.dir.name for r in used)} (pooled)")


def against(results: Results, reference: Results, variant: str) -> Results:
    """`results` with `reference`'s `variant` trials added as the baseline variant VARIANT@<run id>, on the seeds
    both have; a baseline run without a sweep pairs with every sweep point of `results`, one with a sweep with
    the same point of `results` (see `_check_pairs`)."""
    name = f"{variant}@{reference.dir.name}"
    seeds = [s for s in results.config.seeds if s in set(reference.config.seeds)]
    base = next(v for v in reference.config.variants if v.name == variant).model_copy(update={"name": name})
    layout = results.layout.changed(seeds=seeds, variants=[*results.config.variants, base], baseline=name)
    parts = [(results, _mapping(results.layout, layout, lambda key: key), {})]

    def rename(key: tuple, point: tuple) -> Optional[tuple]:  # the reference's baseline trials of a sweep point
        same = not reference.config.sweep or tuple(key[2:]) == point
        return (name, key[1], *point) if key[0] == variant and same else None

    for point in results.layout.points:
        parts.append((reference, _mapping(reference.layout, layout, partial(rename, point=tuple(point.values()))),
                      {"variant": name, **point}))
    left = [s for s in results.config.seeds if s not in seeds]
    notes = [f"baseline {name}: {variant} of {reference.runs}, paired on seed{'s' * (len(seeds) > 1)} "
             f"{_seed_list(seeds)}" + (f"; seed{'s' * (len(left) > 1)} {_seed_list(left)} of {results.dir.name} not "
                                       f"in {reference.dir.name}: left out" if left else "")]
    statuses = {results.status, reference.status}
    status = "complete" if statuses == {"complete"} else "running" if "running" in statuses else "partial"
    return Results(results.dir, layout, status, *_frames(parts), sources=(*(results.sources or [results.dir]),
                   reference.dir), notes=(*results.notes, *notes),
                   label=f"{results.label or f'run {results.dir.name}'} vs {name}")


def _check_pairs(reference: Results, variant: str, groups: list[list[Path]]) -> None:
    """Refuse, in one line, a baseline from another run that some run cannot be paired with."""
    names = [v.name for v in reference.config.variants]
    if variant not in names:
        raise BnbenchError(f"--baseline {variant}@{reference.dir.name}: not a variant of {reference.dir} (its "
                           f"variants: {', '.join(names)}); choose one of those")
    for group in groups:
        try:
            layouts = [_layout(run_dir) for run_dir in group]
        except BnbenchError:
            continue  # comparing it says why
        config, seeds = layouts[0].config, sorted({s for layout in layouts for s in layout.config.seeds})
        where = f"--baseline {variant}@{reference.dir.name}: {group[0]}"
        data = diff(reference.config.dataset.model_dump(mode="json"), config.dataset.model_dump(mode="json"),
                    "dataset")
        if data:
            raise BnbenchError(f"{where}: other data than the baseline's run ({'; '.join(data)}); compare runs on "
                               f"the same data set")
        if not set(seeds) & set(reference.config.seeds):
            raise BnbenchError(f"{where}: no seed in common with the baseline's run (seeds {_seed_list(seeds)} vs "
                               f"{_seed_list(reference.config.seeds)}), so nothing pairs; run the same seeds")
        if reference.config.sweep and reference.layout.points != layouts[0].points:
            raise BnbenchError(f"{where}: the baseline's run sweeps {', '.join(reference.config.sweep)}, this run "
                               f"has other sweep points; use a baseline from a run without a sweep or with the same")


def _finished_seeds(results: Results) -> list[int]:
    """The seeds all of whose trials (every variant and sweep point) ran every epoch or diverged."""
    layout = results.layout
    spans = _spans(results.batches, layout.size)
    last_loss = results.batches.loss.to_numpy()[np.maximum(spans[1:] - 1, 0)] if len(results.batches) else \
        np.zeros(layout.size)
    diverged = (spans[1:] > spans[:-1]) & ~np.isfinite(last_loss)
    needed = np.repeat([c.training.epochs for c in layout.resolved], layout.per_point)
    done = (_per_trial_max(results.epochs, "epoch", layout.size) >= needed) | diverged
    per_seed = done.reshape(len(layout.points), len(layout.config.seeds), -1).all(axis=(0, 2))
    return [seed for seed, ok in zip(layout.config.seeds, per_seed) if ok]


def _mapping(own: Layout, combined: Layout, rename) -> np.ndarray:
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
        out.append(_by_trial(pd.concat(frames, ignore_index=True)))
    return out


def _seed_list(seeds) -> str:
    return ", ".join(map(str, seeds))


# ---- comparing one run -------------------------------------------------------------------------------------------

def compare_run(results: Results, baseline: Optional[str] = None, epoch: Optional[int] = None) -> Comparison:
    """Measure every variant of one run against `baseline` (default: the run's), at `epoch` (default: the last)."""
    config, layout = results.config, results.layout
    baseline = baseline or config.baseline
    names = [v.name for v in config.variants]
    if baseline not in names:
        raise BnbenchError(f"--baseline {baseline}: not a variant of {results.dir} (its variants: "
                           f"{', '.join(names)}); choose one of those")
    spans = {name: _spans(getattr(results, name), layout.size) for name in ("batches", "epochs", "evals")}
    tables, parts = [], []
    for point, text in enumerate(layout.points):
        numbers = layout.point_trials(point)
        if not (spans["batches"][numbers + 1] - spans["batches"][numbers]).any():
            continue  # a partial run that never reached this sweep point
        t, curves = _trials(results, point, spans, baseline, epoch)
        tables += _summarise(t, layout.resolved[point], baseline, text)
        parts.append(({**t, **text, "trial": numbers}, curves))
    if not tables:
        raise BnbenchError(f"{results.dir / 'batches.csv'}: no finished epochs yet; wait for the run or resume it")
    return Comparison(results, baseline, _table(results, tables, baseline), parts)



def _table(results: Results, rows: list[dict], baseline: str) -> pd.DataFrame:
    """The table from its rows (columns in the order they first appear): the paired columns that a run of one
    variant lacks, Holm-adjusted p-values, verdicts, counts as nullable integers. Built column by column: this
    is a good part of the time per run."""
    columns = {c: [row.get(c, np.nan) for row in rows] for c in dict.fromkeys(k for row in rows for k in row)}
    for column in PAIRED:  # a run of one variant has no paired columns yet
        columns.setdefault(column, ["" if column.endswith("_note") else np.nan] * len(rows))
    for name in [m for m, (_, _, tested) in METRICS.items() if tested] + list(TARGETS):
        adjusted, tests = holm(np.array(columns[f"{name}_p"], dtype=float))  # per metric, across the run's rows
        columns[f"{name}_p_holm"], columns[f"{name}_tests"] = list(adjusted), [tests] * len(rows)
    points = list(results.config.sweep)
    columns["verdict"] = [None if row["baseline"] else verdict(dict(zip(columns, values)), baseline, points)
                          for row, values in zip(rows, zip(*columns.values()))]
    return pd.DataFrame({"experiment": results.config.name, "run": results.runs, "status": results.status,
                         "partial": results.status != "complete", "notes": "; ".join(results.notes),
                         **{c: _typed(c, v) for c, v in columns.items()}})


def _typed(column: str, values: list):
    """A table column as an array of its type: pandas' own inference from lists is much of a table's cost."""
    if column in COUNTS:
        return _counts(values)
    if all(isinstance(v, (float, np.floating)) for v in values):
        return np.array(values, dtype=float)
    return values


def _counts(values: list) -> pd.api.extensions.ExtensionArray:
    """Whole numbers, None or NaN where there is none, as pandas' nullable Int64 (far quicker than pd.array)."""
    missing = np.array([v is None or v != v for v in values])
    return pd.arrays.IntegerArray(np.array([0 if m else v for v, m in zip(values, missing)], dtype=np.int64), missing)


class _Trailing(BaseIndexer):
    """Windows of the last `window_size` rows that stop at the first row of each row's trial (`first`): one
    rolling mean over many trials gives each trial's own trailing means."""

    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        end = np.arange(1, num_values + 1, dtype=np.int64)
        return np.maximum(end - self.window_size, self.first).astype(np.int64), end


def _rows(frame: pd.DataFrame, spans: np.ndarray, first: int, count: int, columns: list[str]) -> dict:
    """Columns of trials first..first+count-1 (rows sorted by trial), as arrays; `trial` counts from 0."""
    lo, hi = spans[first], spans[first + count]
    return {"trial": frame.trial.to_numpy()[lo:hi] - first, **{c: frame[c].to_numpy()[lo:hi] for c in columns}}


def _until(rows: dict, epoch: int) -> dict:
    keep = rows["epoch"] <= epoch
    return {name: values[keep] for name, values in rows.items()}


def _mean_per_trial(values: np.ndarray, trials: np.ndarray, count: int) -> np.ndarray:
    """Per trial 0..count-1, the mean of `values`, NaN skipped (NaN for a trial without any). pandas' compensated
    sum: a curve of equal losses then meets its own mean exactly, as the rolling mean gives it."""
    return pd.Series(values).groupby(trials).mean().reindex(np.arange(count)).to_numpy(dtype=float)


def _sum_per_trial(values: np.ndarray, trials: np.ndarray, count: int) -> np.ndarray:
    """Per trial 0..count-1, the sum of `values`, NaN skipped (NaN for a trial without rows)."""
    sums = np.bincount(trials, weights=np.where(np.isnan(values), 0, values), minlength=count)
    return np.where(np.bincount(trials, minlength=count) > 0, sums, np.nan)


def _trials(results: Results, point: int, spans: dict, baseline: str,
            epoch: Optional[int]) -> tuple[dict, dict]:
    """Per-trial numbers of one sweep point, as columns in the table's order (variant by variant, seeds within),
    and the `ok` trials' smoothed losses. Here trials are numbered s * variants + v, the runner's order."""
    layout = results.layout
    config, first, count = layout.resolved[point], point * layout.per_point, layout.per_point
    seeds, names = np.array(config.seeds), np.array([v.name for v in config.variants], dtype=object)
    b = _rows(results.batches, spans["batches"], first, count, ["epoch", "batch", "step", "loss"])
    e = _rows(results.epochs, spans["epochs"], first, count, ["epoch", "test_loss", "test_acc", "seconds"])
    v = _rows(results.evals, spans["evals"], first, count, ["epoch", "step", "test_acc"])
    order = layout.point_trials(point) - first
    last = _compared_epoch(results, b, e, order, first, epoch)
    b, e, v = _until(b, last), _until(e, last), _until(v, last)
    window = config.training.log_every or int(b["batch"].max())
    t = _own_numbers(b, e, last, count, window)
    smooth = pd.Series(b["loss"]).rolling(_Trailing(window_size=window, first=np.searchsorted(b["trial"], b["trial"])),
                                          min_periods=window).mean().to_numpy()
    loss_curves = _curves(b["trial"], b["step"], smooth, count)
    acc_curves = _curves(v["trial"], v["step"], 100 * v["test_acc"], count)
    base = np.arange(count) // len(names) * len(names) + list(names).index(baseline)  # the same seed's baseline
    best_eval = np.array([np.nanmax(acc_curves[k][1]) if k in acc_curves else np.nan for k in range(count)])
    _steps_to_target(t, "steps", loss_curves, np.where(t["ok"][base], t["train_loss"][base], np.nan), base,
                     baseline, higher=False)
    _steps_to_target(t, "steps_acc", acc_curves, np.where(t["ok"][base], best_eval[base], np.nan), base, baseline,
                     higher=True)
    keep = t["ok"][b["trial"]] & ~np.isnan(smooth)  # ok trials, full windows
    kept = b["trial"][keep]
    curves = {"variant": names[kept % len(names)], "seed": seeds[kept // len(names)], "step": b["step"][keep],
              "loss": smooth[keep], **layout.points[point]}
    return {"variant": names[order % len(names)], "seed": seeds[order // len(names)],
            **{name: values[order] for name, values in t.items()}}, curves


def _compared_epoch(results: Results, b: dict, e: dict, order: np.ndarray, first: int,
                    epoch: Optional[int]) -> int:
    """`epoch`, or the last epoch every trial that did not diverge has finished; a trial short of it is an error."""
    count = len(order)
    rows = np.bincount(b["trial"], minlength=count)
    diverged = (rows > 0) & ~np.isfinite(b["loss"][np.maximum(np.cumsum(rows) - 1, 0)])  # only a last loss may be
    reached = np.bincount(e["trial"], minlength=count)  # epochs run 1..n
    steady = (reached > 0) & ~diverged
    last = epoch or int(reached[steady].min() if steady.any() else reached.max())
    behind = [k for k in order if steady[k] and reached[k] < last]
    if behind:
        done = int(reached[behind[0]])
        raise BnbenchError(f"--epoch {last}: {results.dir}: {results.layout.describe(first + behind[0])} has only "
                           f"{done} epoch{'s' * (done != 1)}")
    return last


def _own_numbers(b: dict, e: dict, last: int, count: int, window: int) -> dict:
    """Each trial's numbers through epoch `last` (rows already cut there), NaN for a trial without rows."""
    finite, final = np.isfinite(b["loss"]), b["epoch"] == last
    steps, stopped = np.zeros(count), np.full(count, np.inf)
    np.maximum.at(steps, b["trial"], b["step"])
    np.minimum.at(stopped, b["trial"][~finite], b["step"][~finite])
    t = {"epoch": np.full(count, last), "train_loss": _mean_per_trial(b["loss"][final], b["trial"][final], count),
         "steps": np.where(steps > 0, steps, np.nan), "diverged_step": np.where(np.isinf(stopped), np.nan, stopped)}
    at_last = e["epoch"] == last
    for column, scale in (("test_loss", 1), ("test_acc", 100)):
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


def _curves(trials: np.ndarray, steps: np.ndarray, values: np.ndarray, count: int) -> dict:
    """{trial: (steps, values)} for the trials with rows (rows sorted by trial)."""
    at = np.searchsorted(trials, np.arange(count + 1))
    return {k: (steps[at[k]:at[k + 1]], values[at[k]:at[k + 1]]) for k in range(count) if at[k + 1] > at[k]}


def _steps_to_target(t: dict, measure: str, curves: dict, targets: np.ndarray, base: np.ndarray, baseline: str,
                     higher: bool) -> None:
    """Columns `{measure}_reach`/`_step` (when each trial first met its seed's target, see stats.first_reach) and
    `_relation`/`_ratio`/`_why` (the baseline's step / the trial's, see stats.speed_ratio, and why there is none),
    for one target measure; `base[k]` is trial k's baseline trial (same seed).
    A trial is judged on its curve through the compared epoch, up to a divergence; the budget is the baseline's
    total steps."""
    reach = [first_reach(*curves[k], targets[k], higher) if k in curves else None for k in range(len(targets))]
    ratios, why = [], []
    for k, r in enumerate(reach):
        own_base, base_ok = reach[base[k]], t["ok"][base[k]]
        if r is None or own_base is None or not base_ok:
            ratios.append(("n/a", np.nan))
        elif base[k] == k:
            ratios.append(("n/a", np.nan) if own_base[0] in ("never", "undefined") else ("=", 1.0))
        else:
            ratios.append(speed_ratio(own_base, r, int(t["steps"][base[k]])))
        why.append("" if ratios[-1][0] != "n/a" else "no results" if r is None else
                   f"{baseline} diverged" if own_base is None or not base_ok else
                   "no full smoothing window" if "undefined" in (own_base[0], r[0]) else
                   f"{baseline} never met its own target" if own_base[0] == "never" else
                   "both met it at their first measured point")
    t[f"{measure}_reach"] = np.array([r[0] if r else None for r in reach], dtype=object)
    t[f"{measure}_step"] = np.array([r[1] if r else np.nan for r in reach], dtype=float)
    t[f"{measure}_relation"] = np.array([kind for kind, _ in ratios], dtype=object)
    t[f"{measure}_ratio"] = np.array([value for _, value in ratios], dtype=float)
    t[f"{measure}_why"] = np.array(why, dtype=object)  # why a seed has no ratio


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std, NaN left out (as pandas does); NaN where there are too few values."""
    values = values[~np.isnan(values)]
    return (values.mean() if len(values) else np.nan), (values.std(ddof=1) if len(values) > 1 else np.nan)


def _summarise(t: dict, config: Config, baseline: str, point: dict[str, str]) -> list[dict]:
    """One row per variant: mean/std over its `ok` seeds, paired Δ against the baseline, divergence counts, and
    steps to target across seeds. `t` holds each trial's numbers, variant by variant, seeds within."""
    n, names = len(config.seeds), [v.name for v in config.variants]
    base = slice(names.index(baseline) * n, (names.index(baseline) + 1) * n)
    rows = []
    for i, variant in enumerate(names):
        own = {name: values[i * n:(i + 1) * n] for name, values in t.items()}
        ok, ran = own["ok"], ~np.isnan(own["steps"])
        pairs = ok & t["ok"][base]
        row = {**point, "variant": variant, "baseline": variant == baseline, "seeds": int(ok.sum()),
               "pairs": None if variant == baseline else int(pairs.sum()), "epoch": int(own["epoch"][0]),
               "epochs": config.training.epochs, "trials": int(ran.sum()),
               "diverged_seeds": int((~np.isnan(own["diverged_step"])).sum())}
        for metric, (_, higher, tested) in METRICS.items():
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std(own[metric][ok])
            if variant != baseline:
                row.update(_paired(metric, own[metric][pairs], t[metric][base][pairs], higher, tested))
        row["best_epoch"] = _mean_std(own["best_epoch"][ok])[0]
        row.update(steps_total=_mean_std(own["steps"][ok])[0], smoothing=int(own["smoothing"][0]))
        for measure in TARGETS:
            row.update(_speedup(measure, {name: values[ran] for name, values in own.items()}, variant == baseline))
        row["diverged"] = "; ".join(f"seed {seed} diverged at step {int(step)}"
                                    for seed, step in zip(own["seed"], own["diverged_step"]) if not np.isnan(step))
        row["missing"] = ", ".join(str(seed) for seed in own["seed"][~ran])
        rows.append(row)
    return rows


def _paired(metric: str, variant: np.ndarray, baseline: np.ndarray, higher: bool, tested: bool) -> dict:
    """Mean paired difference, with (for tested metrics) its t-interval, p-value, the note on them, and wins."""
    d = variant - baseline
    if not tested:
        return {f"{metric}_delta": d.mean() if len(d) else np.nan}
    summary = mean_interval(d)
    wins = int(np.sum(d > 0 if higher else d < 0)) if len(d) else None
    return {f"{metric}_delta": summary["mean"], f"{metric}_ci_low": summary["ci_low"],
            f"{metric}_ci_high": summary["ci_high"], f"{metric}_p": summary["p"], f"{metric}_wins": wins,
            f"{metric}_note": summary["note"]}


def _speedup(measure: str, own: dict, baseline: bool) -> dict:
    """A variant's steps to target across its seeds: the geometric mean speedup (or a bound), interval, p, how
    many seeds reached the target, and the mean step of those that crossed it after their first point. The
    baseline is 1 by definition, on the seeds where it met its own target."""
    relation, reach = own[f"{measure}_relation"], own[f"{measure}_reach"]
    summary = geometric_speedup(list(zip(relation, own[f"{measure}_ratio"])))
    summary["reached"] = sum(r in ("at", "within") for r in reach)  # with or without a ratio
    if baseline and summary["pairs"]:
        summary.update(speedup=1.0, ci_low=np.nan, ci_high=np.nan, p=np.nan, note="")
    if summary["na"]:
        reasons = Counter(own[f"{measure}_why"][relation == "n/a"]).most_common()
        na = "n/a on " + ", ".join(f"{n} seed{'s' * (n != 1)}: {why}" for why, n in reasons)
        summary["note"] = f"{summary['note']}; {na}" if summary["pairs"] and summary["note"] else na
    exact = own[f"{measure}_step"][reach == "at"]
    return {f"{measure}_at": exact.mean() if len(exact) else np.nan,
            **{f"{measure}_{k}": v for k, v in summary.items()}}


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
