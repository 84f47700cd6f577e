"""One run measured against its baseline: per variant (x sweep point), its numbers over seeds, the paired
comparison with the baseline, and the verdict line; the table's columns are declared in `columns`.

Pairing is per seed (same initial weights, same batch order): for a measure x shaped [seed, variant], the
differences are `x[:, v] - x[:, base]` on the seeds where neither trial diverged. Each tested difference gets its
mean, a 95% t-interval, the paired t-test p (which assumes normal differences) and the exact sign-flip p (which
assumes the differences symmetric about 0 under no difference; with 5 pairs it cannot go below 0.0625); the
decision uses the t-test's (`test="t"`, the default: at 5 seeds an exact test could never decide) or the exact
one (`test="exact"`), and the verdict says when the two disagree. A constant difference has no t-interval; its
exact p stands. What the pairs could have detected (80% power, the observed spread) comes with every "no
difference shown".

Divergence is an outcome of its own: k of n seeds per variant, the baseline included, tested against the
baseline's by McNemar's exact test on the pairs; where some pair has a diverged trial, the primary measure is
decided on every pair by rank, a diverged trial the worst (see `outcomes`). Steps to a target (see `measures`)
give per seed a speedup T_baseline / T_variant, known exactly or within bounds (an evaluation grid, a crossing at a
curve's first point): when every pair reached the target, the geometric mean with a t-interval on log speedups, a
range when crossings are bounded, tested on the end least favourable to the claim; when a trial of some pair (the
variant's or the baseline's) never reached it within its own steps (censored), the median, which the bounds may
leave known between two values, with a distribution-free interval and the sign test.
Steps are counted in examples seen when the batch sizes of the two differ.

Families: the tests a verdict line uses (test accuracy, the two speedups, divergence) form one Holm family over
all the run's variant x sweep-point comparisons, its size fixed by the design (a test that cannot be made counts
as p = 1); every other tested metric is adjusted across the comparisons on its own.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np
import pandas as pd

from bnbench.analysis import decisions, inference, outcomes
from bnbench.analysis.columns import COLUMNS, COUNTS, METRICS, PRIMARY, SPEEDS, VERDICT, col, of_validation
from bnbench.analysis.measures import point_measures
from bnbench.analysis.paired import mean, paired, speed
from bnbench.analysis.reading import KEYS, Results
from bnbench.analysis.row_checks import spans
from bnbench.analysis.sentences import added_seeds, headline, outcome, verdict
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config, describe_model
from bnbench.rundir.folder import RunFolder

TESTS = ["t", "exact"]


@dataclass
class Comparison:
    """One run measured against its baseline."""

    results: Results
    baseline: str
    table: pd.DataFrame  # one row per sweep point x variant, columns as in the module docstring
    parts: list[tuple[dict, dict]]  # per sweep point, the columns of `trials` and of `curves`
    sequential: Optional[tuple[dict, dict]] = None  # a run made with --until-decided: its plan and looks

    @property
    def decided(self) -> list[str]:
        """A sequential run's decisions, in words (none for other runs)."""
        return [] if self.sequential is None else decisions.lines(*self.sequential, self.results.config.baseline)

    @property
    def verdicts(self) -> list[str]:
        """The table's verdict lines, a line per compared variant (the baseline's row has none)."""
        return [v for v in self.table.verdict if isinstance(v, str)]

    @property
    def epochs_compared(self) -> str:
        """'5 of 5': the epoch compared of the epochs configured, once per distinct pair ('1 of 1, 3 of 3')."""
        return ", ".join(dict.fromkeys(f"{e} of {n}" for e, n in zip(self.table.epoch, self.table.epochs)))

    @property
    def headline(self) -> str:
        """The run's answer in a few words (see `sentences.headline`): a sequential run's decisions, else each
        verdict line's conclusion on the primary measure."""
        if self.sequential is not None:
            return headline([(c["variant"], c["decision"]) for c in self.sequential[1]["comparisons"]]) or "undecided"
        read = ["variant", "pairs", col(PRIMARY, "delta"), col(PRIMARY, "p_holm")]  # all of the table is slow to read
        read += [col(PRIMARY, s) for s in ("rule", "ranked", "ranked_wins", "ranked_losses")]
        rows = self.table.loc[~self.table.baseline.astype(bool), read].to_dict("records")
        return headline([(row["variant"], outcome(row)) for row in rows])

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
        out = (
            full.groupby(self.points + ["variant", "epoch", "smoothing", "window"])["mean"]
            .agg(loss_mean="mean", loss_std="std", seeds="size")
            .reset_index()
        )
        out.insert(len(self.points) + 3, "mini_batch", out.window * out.smoothing)
        return self._ordered(out.drop(columns="window"), ["mini_batch"])

    @cached_property
    def loss_curves(self) -> pd.DataFrame:
        """Smoothed training loss per step: mean and std over the `ok` seeds of each variant."""
        out = (
            self.curves.groupby(self.points + ["variant", "step"])
            .loss.agg(loss_mean="mean", loss_std="std", seeds="size")
            .reset_index()
        )
        return self._ordered(out, ["step"])

    @cached_property
    def accuracy_curves(self) -> pd.DataFrame:
        """Test accuracy (%) at each evaluation step through epoch E: mean and std over the `ok` seeds of each
        variant."""
        ok = self.trials.loc[self.trials.ok, ["trial", "epoch"]].rename(columns={"epoch": "last"})
        rows = self.results.evals.merge(ok, on="trial")
        rows = rows[rows.epoch <= rows["last"]].assign(acc=lambda d: 100 * d.test_acc)
        out = (
            rows.groupby(self.points + ["variant", "step"])
            .acc.agg(acc_mean="mean", acc_std="std", seeds="size")
            .reset_index()
        )
        return self._ordered(out, ["step"])

    def _ordered(self, frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
        """Rows in the config's order of sweep points and variants (groupby sorts them by name)."""
        points = dict.fromkeys(self.table[self.points].itertuples(index=False, name=None))
        points = {point: i for i, point in enumerate(points)}
        variants = {name: i for i, name in enumerate(self.table.variant.unique())}
        frame = frame.assign(
            _point=[points[p] for p in frame[self.points].itertuples(index=False, name=None)],
            _variant=frame.variant.map(variants),
        )
        frame = frame.sort_values(["_point", "_variant", *by]).drop(columns=["_point", "_variant"])
        return frame.reset_index(drop=True)


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def describe(config: Config) -> str:
    """'digits, mlp [64, 32]', 'cifar10, resnet18 (torchvision) width 64': the data set and model, for titles."""
    return f"{config.dataset.name}, {describe_model(config)}"


def compare_run(
    results: Results,
    baseline: Optional[str] = None,
    epoch: Optional[int] = None,
    test: str = "t",
    effect: Optional[float] = None,
) -> Comparison:
    """Measure every variant of one run against `baseline` (default: the run's), at `epoch` (default: the last);
    `test` decides ("t" or "exact"), `effect`: the difference in the primary measure to size seeds for."""
    config, index = results.config, results.trials
    baseline = baseline or config.baseline
    names = [v.name for v in config.variants]
    if baseline not in names:
        raise BnbenchError(
            f"--baseline {baseline}: not a variant of {results.dir} (its variants: "
            f"{', '.join(names)}); choose one of those"
        )
    if test not in TESTS:
        raise BnbenchError(f"--test {test}: unknown test; choose t or exact")
    where = {name: spans(getattr(results, name), index.size) for name in ("batches", "epochs", "evals")}
    points = [
        p
        for p in range(len(index.points))
        if (where["batches"][index.point_trials(p) + 1] - where["batches"][index.point_trials(p)]).any()
    ]
    if not points:
        raise BnbenchError(f"{results.dir / 'batches.csv'}: no finished epochs yet; wait for the run or resume it")
    rows, parts = [], []
    for point in points:  # a partial run may not have reached every sweep point
        m, curves = point_measures(results, point, where, baseline, epoch)
        rows += [_row(m, v, names.index(baseline), results, point, test) for v in range(len(names))]
        trials = {
            "trial": index.point_trials(point),
            "variant": np.tile(names, m["ok"].shape[0]),
            "seed": np.repeat(index.resolved[point].seeds, len(names)),
        }
        parts.append(({**trials, **{k: a.ravel() for k, a in m.items()}, **index.points[point]}, curves))
    sequential = _sequential(results)  # its own decisions allow for the looks; the table's caveat() says so
    caveat = "" if sequential else added_seeds(results.grown, results.pooled)
    return Comparison(results, baseline, _table(results, rows, baseline, effect, caveat), parts, sequential)


def _sequential(results: Results) -> Optional[tuple[dict, dict]]:
    """The plan of a run made with --until-decided and its looks worked out from its rows (None: another run)."""
    plan = None if results.sources else decisions.plan_of(RunFolder(results.dir).meta(), results.dir)
    return None if plan is None else (plan, decisions.record(results, plan))


def _row(m: dict, v: int, b: int, results: Results, point: int, test: str) -> dict:
    """Variant v's row at one sweep point: its numbers over seeds and, unless it is the baseline b, the paired
    comparison."""
    config = results.trials.resolved[point]
    ran, ok, diverged = ~np.isnan(m["steps"]), m["ok"], ~np.isnan(m["diverged_step"])
    pairs = ok[:, v] & ok[:, b]
    is_base = v == b
    seeds = np.array(config.seeds)
    row = {
        **results.trials.points[point],
        "variant": config.variants[v].name,
        "baseline": is_base,
        "test": test,
        "seeds": int(ok[:, v].sum()),
        "pairs": None if is_base else int(pairs.sum()),
        "trials": int(ran[:, v].sum()),
        "diverged_seeds": int(diverged[:, v].sum()),
        "epoch": int(m["epoch"][0, v]),
        "epochs": config.training.epochs,
        "smoothing": int(m["smoothing"][0, v]),
        "steps_total": mean(m["steps"][ok[:, v], v]),
        "best_epoch": mean(m["best_epoch"][ok[:, v], v]),
    }
    for name, metric in METRICS.items():
        if name not in m:  # a validation metric of a run without the split
            continue
        own = m[name][ok[:, v], v]
        row[col(name, "mean")], row[col(name, "std")] = mean(own), (own.std(ddof=1) if len(own) > 1 else np.nan)
        if not is_base:
            row.update(paired(name, m[name][pairs, v], m[name][pairs, b], metric.higher, metric.tested, test))
    for measure in SPEEDS:
        row.update(speed(measure, m, v, b, pairs, test))
    level = outcomes.chance(config.dataset.name)
    row["learned_nothing"] = outcomes.learned_nothing(m["test_acc"][ok[:, v], v], row["trials"], level)
    if not is_base:
        row.update(outcomes.ranked(PRIMARY, m, v, b, METRICS[PRIMARY].higher))
        both = ran[:, v] & ran[:, b]
        more = int((diverged[:, v] & ~diverged[:, b] & both).sum())
        fewer = int((~diverged[:, v] & diverged[:, b] & both).sum())
        row[col("diverged", "p")] = inference.sign_test_p(more, fewer) if both.any() else np.nan
    row["diverged"] = "; ".join(
        f"seed {s} diverged at step {int(step)}"
        for s, step in zip(seeds, m["diverged_step"][:, v])
        if not np.isnan(step)
    )
    row["missing"] = ", ".join(str(s) for s in seeds[~ran[:, v]])
    return row


def _table(results: Results, rows: list[dict], baseline: str, effect: Optional[float], caveat: str) -> pd.DataFrame:
    """The table from its rows: Holm-adjusted p-values by family, the detectable effects and seeds needed at each
    family's level, the verdicts (each with `caveat`, also a note, where seeds were added after the run was made),
    counts as nullable integers."""
    compared = [i for i, row in enumerate(rows) if not row["baseline"]]
    measured = [name for name in METRICS if any(col(name, "mean") in row for row in rows)]
    families = [VERDICT] + [[name] for name in measured if METRICS[name].tested and name not in VERDICT]
    for family in families:
        members = [(name, i) for name in family for i in compared]
        adjusted = inference.holm(np.array([rows[i].get(col(name, "p"), np.nan) for name, i in members], dtype=float))
        other = inference.holm(np.array([_other_p(rows[i], name) for name, i in members], dtype=float))
        for j, (name, i) in enumerate(members):
            rows[i][col(name, "p_holm")], rows[i][col(name, "tests")] = adjusted[j], len(members)
            rows[i][f"_other_{name}"] = other[j]
            rows[i] |= _level(rows[i], name, len(members))
    for i in compared:
        row = rows[i]
        for name in measured:
            if METRICS[name].tested:
                level = inference.ALPHA / row[col(name, "tests")]
                sd = row.pop(f"_{name}_sd")
                ranked = name == PRIMARY and outcomes.by_rank(row, PRIMARY)  # no effect size: a rank rule decided
                row[col(name, "detectable")] = np.nan if ranked else _detectable(row["pairs"], sd, level, row["test"])
                row[col(name, "needed")] = (
                    inference.seeds_needed(effect, sd, level, exact=row["test"] == "exact")
                    if effect is not None and name == "test_acc" and not ranked
                    else None
                )
    per_point, base = len(results.config.variants), [v.name for v in results.config.variants].index(baseline)
    points = list(results.config.sweep)
    val = "val_acc" in measured  # a run without a validation split has no columns of it
    names = [c for c in [*points, *COLUMNS] if c not in _FRAME and c != "verdict" and (val or not of_validation(c))]
    rows = [
        {c: row.get(c, _EMPTY.get(c, np.nan)) for c in names} | {k: v for k, v in row.items() if k[0] == "_"}
        for row in rows
    ]
    for i, row in enumerate(rows):
        line = None if row["baseline"] else verdict(row, rows[i // per_point * per_point + base], baseline, points)
        row["verdict"] = f"{line}; {caveat}" if line and caveat else line
    columns = {c: [row[c] for row in rows] for c in [*names, "verdict"]}
    return pd.DataFrame(
        {
            "experiment": results.config.name,
            "run": results.runs,
            "status": results.status,
            "partial": results.status != "complete",
            "notes": "; ".join(filter(None, (*results.notes, caveat))),
            **{c: _typed(c, v) for c, v in columns.items()},
        }
    )


_FRAME = ["experiment", "run", "status", "partial", "notes"]  # the same for every row
_EMPTY = {c: "" for c in COLUMNS if c.endswith(("_note", "_estimator", "_unit", "_rule"))}
_EMPTY |= {"diverged": "", "missing": ""}


def _detectable(pairs: int, sd: float, level: float, test: str) -> float:
    """The difference `pairs` pairs detect with 80% power at `level` (t-test power, from the observed spread):
    NaN without a spread (a constant difference: the t-test is undefined), inf where the exact test decides and
    cannot reach `level` at all with this many pairs (its smallest p is 2 / 2^pairs)."""
    if test == "exact" and 2.0 / 2**pairs > level:
        return np.inf
    return inference.detectable(pairs, sd, level) if sd > 0 else np.nan


def _level(row: dict, measure: str, tests: int) -> dict:
    """Where a measure has an interval: its level, CONFIDENCE for it alone, and whether the decision beside it is
    adjusted over more tests than that (Holm over the family): such an interval can exclude 0 beside "no difference
    shown", so every format labels it unadjusted."""
    if f"{measure}_ci_level" not in COLUMNS or np.isnan(row.get(col(measure, "ci_low"), np.nan)):
        return {}
    return {col(measure, "ci_level"): inference.CONFIDENCE, col(measure, "ci_unadjusted"): tests > 1}


def _other_p(row: dict, measure: str) -> float:
    """The p of the test the decision does not use (NaN where there is none): the exact one under "t", the t-test's
    under "exact"."""
    if measure == "diverged" or (measure == PRIMARY and outcomes.by_rank(row, PRIMARY)):  # no other test there
        return np.nan
    return row.get(col(measure, "p_exact" if row["test"] == "t" else "p_t"), np.nan)


def _typed(column: str, values: list):
    """A table column as an array of its type: pandas' own inference from lists is much of a table's cost."""
    if column in COUNTS:
        missing = np.array([v is None or v != v for v in values])
        return pd.arrays.IntegerArray(
            np.array([0 if m else v for v, m in zip(values, missing)], dtype=np.int64), missing
        )
    if all(isinstance(v, (float, np.floating)) for v in values):
        return np.array(values, dtype=float)
    return values
