"""Reading a run folder: config.yaml's numbering of trials, the three CSVs read once, typed and checked (their
columns: bnbench.rundir.schema).

Each run is checked whole, and any mismatch between its files is damage, except while it is being written (status
running): then it is read as a snapshot of what it has finished, each trial on the epochs that batches.csv,
epochs.csv and evals.csv all hold in full (see `_snapshot`). Rows are numbered by trial once (`TrialIndex`, the
runner's order: sweep point, seed, variant) and kept sorted by trial, so that the measures work on arrays, trial by
trial, and a folder of hundreds of runs compares in seconds (benchmarks/compare_speed.py).
"""

import io
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import yaml

from bnbench.analysis.row_checks import by_trial, check_rows, evals_checked
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand
from bnbench.rundir import digests
from bnbench.rundir.drift import edited
from bnbench.rundir.folder import CONFIG, RunFolder
from bnbench.rundir.meta import Meta
from bnbench.rundir.schema import BATCHES, CUT_FILES, EPOCHS, EVALS, NAN_TEXT, PROBES, ROW_FILES

KEYS = ["variant", "seed"]


@dataclass
class Results:
    """A run folder, each file read once. Rows are sorted by trial (file order within one), with the trial's number
    (see TrialIndex) in `trial`; the index is the row's position in its file."""

    dir: Path
    trials: "TrialIndex"
    status: str  # complete, running or partial
    batches: pd.DataFrame  # sweep columns are kept as the text bnbench wrote
    epochs: pd.DataFrame
    evals: pd.DataFrame  # evals.csv; for runs made before it existed, the epoch ends from epochs.csv
    sources: tuple[Path, ...] = ()  # the run folders it was combined from (pooled, or a baseline's), newest first
    notes: tuple[str, ...] = ()  # what combining them did (seeds taken, left out, paired)
    label: str = ""  # how titles name a combined run ("runs A + B (pooled)"); "" for "run <run id>"
    grown: tuple[int, ...] = ()  # its seed counts before each grow that added seeds, then now: (5, 7); () if none
    pooled: int = 0  # how many runs' seeds were pooled into it (0: one run's)
    foreign: dict = field(default_factory=dict)  # variant from another run -> its batch size per sweep point

    @property
    def config(self) -> Config:
        return self.trials.config

    def batch_size(self, variant: str, point: int) -> int:
        """The examples a step of `variant` takes at sweep point `point` (a baseline from another run may differ)."""
        return (
            self.foreign.get(variant, [])[point]
            if variant in self.foreign
            else self.trials.resolved[point].training.batch_size
        )

    @property
    def runs(self) -> str:
        """The run folder, or the folders it was combined from."""
        return "; ".join(map(str, self.sources or [self.dir]))


@dataclass(frozen=True)
class TrialIndex:
    """What config.yaml says about a run's rows, worked out once per distinct config (see `index_of`): the trials,
    numbered in the runner's order (sweep point, then seed, then variant), and each sweep point's config and
    values as the CSVs spell them."""

    config: Config
    points: list[dict[str, str]]
    resolved: list[Config]
    numbers: dict[tuple, int]  # (variant, seed, *sweep values as text) -> trial number

    @classmethod
    def of(cls, config: Config, resolved: Optional[list[Config]] = None) -> "TrialIndex":
        """`resolved`: each sweep point's config, when known (a combined run's, see `pooled` and `against`)."""
        resolved = resolved or [config.with_values(p) for p in config.sweep_points()]
        points = _point_texts(config, resolved)
        keys = [(v.name, s, *p.values()) for p in points for s in config.seeds for v in config.variants]
        return cls(config, points, resolved, {key: number for number, key in enumerate(keys)})

    def changed(self, **fields) -> "TrialIndex":
        """The trial index of this run's config with `fields` replaced (not validated again: a combined run's)."""
        return TrialIndex.of(
            self.config.model_copy(update=fields), [c.model_copy(update=fields) for c in self.resolved]
        )

    @property
    def labels(self) -> list[str]:
        return KEYS + list(self.config.sweep)

    @cached_property
    def keys(self) -> list[str]:
        """Each trial's key (checkpoint names, meta.json's records and digests), by trial number."""
        return [trial.key for trial in expand(self.config)]

    @property
    def per_point(self) -> int:
        return len(self.config.seeds) * len(self.config.variants)

    @property
    def size(self) -> int:
        return len(self.points) * self.per_point

    def point_trials(self, point: int) -> np.ndarray:
        """Sweep point `point`'s trial numbers, in the one trial order (the runner's: seed, then variant)."""
        return point * self.per_point + np.arange(self.per_point)

    @property
    def epochs_needed(self) -> np.ndarray:
        """Per trial, the epochs it trains to finish: its sweep point's training.epochs."""
        return np.repeat([c.training.epochs for c in self.resolved], self.per_point)

    def describe(self, number: int) -> str:
        """'trial plain seed 2 optimizer.lr=0.001', for messages."""
        point, rest = divmod(number, self.per_point)
        seed, variant = divmod(rest, len(self.config.variants))
        return trial_name(
            self.labels, (self.config.variants[variant].name, self.config.seeds[seed], *self.points[point].values())
        )


def index_of(run_dir: Path) -> TrialIndex:
    """config.yaml's trial index, cached by the file's text: the runs of one experiment share one, and parsing YAML
    is a good part of reading a small run. A config that does not load takes the uncached path, whose error names
    the file."""
    folder = RunFolder(run_dir)
    try:
        return _index_of(folder.read_bytes(CONFIG).decode())
    except (OSError, ValueError, yaml.YAMLError, BnbenchError):
        return TrialIndex.of(folder.config())


@lru_cache(maxsize=64)
def _index_of(text: str) -> TrialIndex:
    return TrialIndex.of(validate(yaml.safe_load(text), CONFIG))


def load_run(run_dir: Path) -> Results:
    """Read and check a run folder; any damage raises one BnbenchError naming the file and line.

    A run being written (status running) is read as a snapshot of what it has finished (see `_snapshot`); any
    other run must be whole, and a mismatch between its files is damage."""
    trials, folder = index_of(run_dir), RunFolder(run_dir)
    before = folder.status(folder.meta())
    data = {name: _read_bytes(folder, name) for name in reversed(ROW_FILES)}  # the reverse of writing
    meta = folder.meta()
    status = before if before == "running" else folder.status(meta)  # one resumed while read is live
    frames = {
        name: _parse(folder.file(name), data[name], trials, live=status == "running")
        for name in ROW_FILES
        if data[name] is not None
    }
    if status == "running":
        _snapshot(frames)
    else:
        _check_digests(run_dir, meta, {name: (data[name], frames.get(name)) for name in ROW_FILES}, trials)
    batches, epochs = by_trial(frames[BATCHES.file]), by_trial(frames[EPOCHS.file])
    check_rows(folder, batches, epochs, trials)
    evals = evals_checked(folder, frames.get(EVALS.file), batches, epochs, trials)
    return Results(
        run_dir,
        trials,
        status,
        batches,
        epochs,
        evals,
        notes=_edited(run_dir, meta, trials.config),
        grown=_grown(meta, trials.config),
    )


def _edited(run_dir: Path, meta: Meta, config: Config) -> tuple[str, ...]:
    """A note when config.yaml was edited since the run began: its rows are not those of the config it now says
    (`combining` does not pool it with runs of that config)."""
    changed = edited(meta, run_dir, config)
    return (
        f"config.yaml edited since the run began ({'; '.join(changed)}): its rows are of the config it began with",
    ) * bool(changed)


def _grown(meta: Meta, config: Config) -> tuple[int, ...]:
    """The run's seed counts before each grow that added seeds (`run --resume RUN --seeds ...`, recorded in
    meta.json's `grown`), then now: seeds added after the run was made, maybe after a look at its results, which
    fixed-n tests do not allow for. A hand-damaged record counts as no grow."""
    added = [
        len(change["seeds_added"])
        for change in meta.fields.grown
        if isinstance(change, dict) and isinstance(change.get("seeds_added"), list) and change["seeds_added"]
    ]
    counts = [len(config.seeds)]
    for n in reversed(added):
        counts.insert(0, counts[0] - n)
    return tuple(counts) if added and counts[0] > 0 else ()


def read_probes(run_dir: Path) -> pd.DataFrame:
    """probes.csv, typed and checked as the other row files are (every row one of config.yaml's trials), and, for
    a finished run, against the digests of its trials' rows (a row deleted, a value edited or a NaN written would
    change the means silently)."""
    trials, folder = index_of(run_dir), RunFolder(run_dir)
    path = folder.file(PROBES.file)
    data = _read_bytes(folder, PROBES.file)
    meta = folder.meta()
    status = folder.status(meta)
    frame = None if data is None else _parse(path, data, trials, live=status == "running")
    if status != "running":
        _check_digests(run_dir, meta, {PROBES.file: (data, frame)}, trials)
    if frame is None:
        raise BnbenchError(f"{path}: missing; the run has no probes (run with --set training.probe_every=N)")
    return frame


def probe_damage(run_dir: Path) -> Optional[str]:
    """Why a finished run's probes.csv is not what its trials wrote (None: it is, or no digest records it)."""
    if not any(PROBES.file in entry for entry in digests.recorded(RunFolder(run_dir).meta()).values()):
        return None
    try:
        read_probes(run_dir)
    except BnbenchError as e:
        return str(e)
    return None


def _check_digests(
    run_dir: Path, meta: Meta, files: dict[str, tuple[Optional[bytes], Optional[pd.DataFrame]]], trials: TrialIndex
) -> None:
    """A finished run's rows against the digests its trials recorded when they finished (bnbench.rundir.digests): any
    difference is damage, named with its repair (resuming trains the damaged trial again). `files`: per row file,
    its bytes and rows as `_parse` read them (None, None: missing). A run made before digests has none."""
    recorded = digests.recorded(meta)
    own = [(number, key) for number, key in enumerate(trials.keys) if key in recorded] if recorded else []
    for name, (data, frame) in files.items():
        if not any(name in recorded[key] for _, key in own):
            continue
        path = RunFolder(run_dir).file(name)
        lines = None if data is None else _lines_by_trial(path, data, frame, trials.size)
        for number, key in own:
            problem = digests.rows_damage(path, key, recorded[key], None if lines is None else lines[number])
            if problem:
                raise BnbenchError(f"{problem}; {digests.repair(run_dir)}")


def _lines_by_trial(path: Path, data: bytes, frame: pd.DataFrame, trials: int) -> list[list[bytes]]:
    """Each trial's lines of a row file, in file order (`frame`: its rows as `_parse` read them, in file order)."""
    lines = data.split(b"\n")[1:-1]
    if len(lines) != len(frame):
        raise BnbenchError(f"{path}: holds lines that are not rows (blank lines?); {digests.repair(path.parent)}")
    number = frame.trial.to_numpy()
    order = np.argsort(number, kind="stable")
    bounds = np.searchsorted(number[order], np.arange(trials + 1))
    return [[lines[i] for i in order[bounds[k] : bounds[k + 1]]] for k in range(trials)]


def _read_bytes(folder: RunFolder, name: str) -> Optional[bytes]:
    """The file's bytes; None for a missing evals.csv (runs made before it existed) or probes.csv."""
    path = folder.file(name)
    try:
        return folder.read_bytes(name)
    except FileNotFoundError:
        if CUT_FILES[name].optional:
            return None
        raise BnbenchError(f"{path}: missing; the run has written no results") from None
    except OSError as e:
        raise BnbenchError(f"{path}: cannot read ({e.strerror or e})") from None


def _parse(path: Path, data: bytes, trials: TrialIndex, live: bool) -> pd.DataFrame:
    """One CSV's rows in file order, typed and checked, with each row's trial number in `trial`. In a live run
    a last line without its newline is one still being written, and is left out."""
    columns = CUT_FILES[path.name].of(trials.config)
    ints, floats = columns.ints, columns.floats
    labels = trials.labels
    expected = labels + columns.names
    texts = [c for c in columns.names if c not in ints + floats]  # probes.csv's layer and measure
    if not data.strip():
        raise BnbenchError(f"{path}: empty; expected the header line '{','.join(expected)}'")
    if not data.endswith(b"\n"):
        if not live:
            raise BnbenchError(f"{path}: the last line is cut off (truncated file?); restore the file or re-run")
        data = data[: data.rfind(b"\n") + 1]
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype={c: object for c in [*labels, *texts] if c != "seed"},
            keep_default_na=False,
            na_values={c: NAN_TEXT for c in floats},
        )
    except (pd.errors.ParserError, ValueError) as e:
        raise BnbenchError(f"{path}: not a valid CSV ({str(e).strip()}); restore the file or re-run") from None
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        what = f"missing column '{missing[0]}'" if missing else f"unexpected column '{extra[0]}'"
        raise BnbenchError(f"{path}: {what}; expected the columns {','.join(expected)} (from config.yaml)")
    for column in ["seed", *ints, *floats]:
        frame[column] = _numbers(path, frame[column], integer=column not in floats)
    frame["trial"] = _trial_numbers(path, frame, trials)
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
        raise BnbenchError(
            f"{path}: line {line}: {column.name} is {column[bad].iloc[0]!r}, not "
            f"{'an integer' if integer else 'a number'}; the file was edited or damaged"
        )
    return values.astype("int64" if integer else "float64")


def _point_texts(config: Config, resolved: list[Config]) -> list[dict[str, str]]:
    """Each sweep point's values as the CSVs spell them (how csv.writer writes the typed values), from the points'
    configs (a combined run's are not validated again: its baseline VARIANT@RUN is no file name)."""

    def text(value):
        return "" if value is None else str(value)

    return [{path: text(r.get(path)) for path in point} for point, r in zip(config.sweep_points(), resolved)]


def _trial_numbers(path: Path, frame: pd.DataFrame, trials: TrialIndex) -> np.ndarray:
    """Each row's trial number (see TrialIndex); every row must belong to a trial of config.yaml. The labels are
    looked up once per distinct combination, not per row."""
    combined, uniques = np.zeros(len(frame), dtype=np.int64), []
    for column in trials.labels:
        codes, values = pd.factorize(frame[column].to_numpy())
        combined = combined * len(values) + codes
        uniques.append(values)
    keys, inverse = np.unique(combined, return_inverse=True)
    digits = []
    for values in reversed(uniques):  # each distinct combination's labels, back from its mixed-radix number
        keys, digit = np.divmod(keys, len(values))
        digits.insert(0, values[digit])
    numbers = np.array([trials.numbers.get(key, -1) for key in zip(*digits)], dtype=np.int64)[inverse.ravel()]
    if (numbers < 0).any():
        line = int(np.argmax(numbers < 0))
        trial = trial_name(trials.labels, tuple(frame[trials.labels].iloc[line]))
        raise BnbenchError(
            f"{path}: line {line + 2}: {trial} is not in config.yaml; the file was edited or belongs to another run"
        )
    return numbers


def _snapshot(frames: dict[str, pd.DataFrame]) -> None:
    """Keep, per trial of a live run, the epochs that every file holds in full: what the run has finished.

    The runner appends a trial's epoch to batches.csv, then epochs.csv, then evals.csv, and a reader may see any
    prefix of each. load_run reads them in the reverse order, so an epoch in epochs.csv is whole in batches.csv,
    read later. evals.csv, read first, may hold part of an epoch: its last evaluation is at the epoch's last
    step, so the epoch is whole there once that row is. An epoch not yet in every file waits for the next read."""

    def keys(frame: pd.DataFrame) -> np.ndarray:
        return frame.trial.to_numpy() * 2**32 + frame.epoch.to_numpy()

    batches, epochs, evals = (frames.get(name) for name in ROW_FILES)
    whole = np.intersect1d(keys(batches), keys(epochs))
    if evals is not None:
        ends = batches.groupby(["trial", "epoch"]).step.max().rename("end")
        ended = evals.join(ends, on=["trial", "epoch"]).end.to_numpy() == evals.step.to_numpy()
        whole = np.intersect1d(whole, keys(evals)[ended])
    for name, frame in frames.items():
        frames[name] = frame[np.isin(keys(frame), whole)]


def trial_name(labels: list[str], values: tuple) -> str:
    """'trial plain seed 2' (with its sweep values), for messages."""
    return "trial " + " ".join(
        [str(values[0]), "seed", str(values[1]), *(f"{k}={v}" for k, v in zip(labels[2:], values[2:]))]
    )


def diverged_at(b: dict, count: int) -> np.ndarray:
    """Per trial 0..count-1, the first step whose loss is not finite (NaN: none). The one definition of "this
    trial diverged": the runner stops a trial there, and only a trial's last loss may be NaN/inf."""
    finite = np.isfinite(b["loss"])
    stopped = np.full(count, np.inf)
    np.minimum.at(stopped, b["trial"][~finite], b["step"][~finite])
    return np.where(np.isinf(stopped), np.nan, stopped)
