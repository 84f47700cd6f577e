"""`bnbench compare`'s output: the glance (`glance`), or every statistic of every run as a text grid laid out
for the terminal (`layout`: boxed where it fits, records where it does not), or an export format (`exports`).
Nothing here computes results: the numbers are `analysis.summary`'s table, put into words and cells.
"""

from typing import Optional

import numpy as np
import pandas as pd

from bnbench.analysis import Comparison
from bnbench.analysis.columns import METRICS, SPEEDS, VALIDATION, col, of_measure
from bnbench.analysis.decisions import caveat
from bnbench.analysis.inference import ALPHA, format_p, format_size, p_is
from bnbench.analysis.outcomes import by_rank
from bnbench.analysis.per_seed import per_seed as per_seed_rows
from bnbench.analysis.sentences import MEASURABLE, speed_interval, speed_value
from bnbench.errors import BnbenchError
from bnbench.views.cells import number
from bnbench.views.exports import data, latex, markdown
from bnbench.views.glance import glance
from bnbench.views.layout import Grid, render
from bnbench.views.report_html import report

FORMATS = ["table", "markdown", "csv", "json", "latex", "html"]
SHOWN = ["train_loss", "test_loss", "test_acc", *VALIDATION, "best_acc", "steps", "steps_acc", "seconds"]  # --metric
# choices; VALIDATION's are shown for runs with a validation split (dataset.validation) alone


def comparison_output(
    comparisons: list[Comparison],
    fmt: str = "table",
    metrics: list[str] = (),
    windows: bool = False,
    width: Optional[int] = None,
    full: bool = False,
    per_seed: bool = False,
    every: bool = False,
) -> str:
    """What `bnbench compare` shows, as text: for "table", the answer at a glance (see `glance`: the newest run
    in full and a line per other run, or with `every` each run in full) or with `full` every statistic of every
    run, laid out for a terminal `width` columns wide (None: not a terminal, the glance at 80 columns, the full
    table unwrapped); else the text of that export format (html: one self-contained page, `report_html`);
    `per_seed` (csv, json): the numbers the summary is made from, a row per trial and measure (see
    `analysis.per_seed`).

    Every format shows the same numbers: csv and json at full precision, one row per variant (or per window
    with `windows`); the others rounded, with the same rows and columns, and the verdict lines on top.
    """
    if fmt not in FORMATS:
        raise BnbenchError(f"--format {fmt}: unknown format; choose one of {', '.join(FORMATS)}")
    for metric in metrics:
        if metric not in SHOWN:
            raise BnbenchError(f"--metric {metric}: unknown metric; choose from {', '.join(SHOWN)}")
    shown = [m for m in SHOWN if m in metrics] or SHOWN
    if metrics and comparisons and not any(measured(c, list(metrics)) for c in comparisons):  # val_* alone
        raise BnbenchError(
            f"--metric {metrics[0]}: no run compared has a validation split; make one with dataset.validation "
            f"(e.g. --set dataset.validation=0.1)"
        )
    if per_seed and (fmt not in ("csv", "json") or windows):
        raise BnbenchError(
            f"--per-seed: {'--windows' if windows else f'--format {fmt}'} has no rows per seed; use --format csv or "
            f"--format json without --windows"
        )
    if fmt in ("csv", "json"):
        return data(frame(comparisons, shown, per_seed, windows), fmt)
    if fmt == "html":
        if windows:
            raise BnbenchError("--windows: --format html has no windows table; use --format table or markdown")
        return report(comparisons, [_comparison_grid(c, shown) for c in comparisons], shown)
    if fmt == "table" and not (full or windows or metrics):
        return glance(comparisons, width, every)
    grids = [_windows_grid(c) if windows else _comparison_grid(c, shown) for c in comparisons]
    if fmt == "table":
        return "\n".join(render(g, width) for g in grids)
    return "\n".join(markdown(g) if fmt == "markdown" else latex(g) for g in grids)


def frame(comparisons: list[Comparison], shown: list[str], per_seed: bool = False, windows: bool = False):
    """The rows csv and json export (and the Python API returns): a row per run x sweep point x variant with the
    columns of the `shown` measures, or with `per_seed` a row per trial and measure, or with `windows` a row per
    loss window."""
    return pd.concat(
        [
            per_seed_rows(c, shown) if per_seed else _windows_frame(c) if windows else _columns(c.table, shown)
            for c in comparisons
        ],
        ignore_index=True,
    )


def _columns(table: pd.DataFrame, shown: list[str]) -> pd.DataFrame:
    """The table without the columns of the --metric choices not asked for."""
    hidden = {c for m in SHOWN if m not in shown for c in of_measure(m)}
    dropped = [c for c in table.columns if c in hidden]
    return table.drop(columns=dropped) if dropped else table  # a drop copies every column of a wide table


def _windows_frame(c: Comparison) -> pd.DataFrame:
    """The loss windows with the run's identity on every row, as the table has it."""
    return c.windows.assign(
        experiment=c.name, run=c.results.runs, status=c.results.status, notes="; ".join(c.results.notes)
    )[["experiment", "run", "status", "notes", *c.windows.columns]]


# ---- the grid: a row per variant (x sweep point), a cell of lines per measure ------------------------------------


def _short(x: float) -> str:
    """4.0 -> '4', 4.333 -> '4.3' (means of whole numbers)."""
    return f"{x:.1f}".removesuffix(".0")


def measured(c: Comparison, shown: list[str]) -> list[str]:
    """The `shown` measures `c` has: a run without a validation split has no val_loss, val_acc."""
    return [m for m in shown if m not in VALIDATION or col(m, "mean") in c.table]


def _comparison_grid(c: Comparison, shown: list[str]) -> Grid:
    """Every statistic of the `shown` measures, under the notes, decisions and verdict lines, above the caption."""
    shown = measured(c, shown)
    header = ["variant", *c.points, "seeds", *(_header(c, m) for m in shown)]
    rows, records = [], c.table.to_dict("records")  # slow on a wide table: once
    for row in records:
        cells = [_variant_cell(row), *([row[p]] for p in c.points), [str(row["seeds"])]]
        rows.append(cells + [_steps_cell(row, m) if m in SPEEDS else _metric_cell(row, m) for m in shown])
    lead = _notes(c) + c.decided + [f"note: {caveat()}"] * bool(c.decided)
    lead += c.verdicts
    return Grid(c.title, header, rows, _caption(c, shown, records), lead)


def _notes(c: Comparison) -> list[str]:
    """What combining runs did (pooled seeds, a baseline from another run), as lead paragraphs."""
    return [f"note: {note}" for note in c.results.notes]


def _header(c: Comparison, measure: str) -> str:
    return f"steps to {c.baseline}'s {SPEEDS[measure].label}" if measure in SPEEDS else METRICS[measure].label


def _variant_cell(row: dict) -> list[str]:
    lines = [row["variant"]] + ["(baseline)"] * bool(row["baseline"])
    if row["diverged_seeds"]:
        lines.append(f"diverged {row['diverged_seeds']}/{row['trials']} seeds")
        lines += row["diverged"].split("; ")
        if not row["baseline"] and not pd.isna(row["diverged_p"]):
            lines.append(f"vs baseline: exact p{p_is(row['diverged_p'])}, Holm {format_p(row['diverged_p_holm'])}")
    return lines + ([f"no results yet: seed {row['missing']}"] if row["missing"] else [])


def _p_line(row: dict, measure: str) -> list[str]:
    """'t p=0.0012, skew 0.0019, exact 0.031, Holm 0.0076 (8)': each test's p (Student's t, the skew-corrected t,
    the exact one), the adjusted p the decision uses, its family."""
    if pd.isna(row[col(measure, "p")]):
        return []
    t = "" if pd.isna(row[col(measure, "p_t")]) else f"t p{p_is(row[col(measure, 'p_t')])}, "
    if not pd.isna(row.get(col(measure, "p_skew"), np.nan)):
        t += f"skew {format_p(row[col(measure, 'p_skew')])}, "
    return [
        f"{t}exact p{p_is(row[col(measure, 'p_exact')])}, Holm {format_p(row[col(measure, 'p_holm')])} "
        f"({row[col(measure, 'tests')]})"
    ]


def _metric_cell(row: dict, measure: str) -> list[str]:
    metric = METRICS[measure]
    n, digits = row["seeds"], metric.digits
    if not n:
        return ["all seeds diverged" if row["diverged"] else "no results"]
    lines = [
        number(row[col(measure, "mean")], digits) + (f" ± {number(row[col(measure, 'std')], digits)}" if n >= 2 else "")
    ]
    if measure == "best_acc":
        lines.append(f"at epoch {_short(row['best_epoch'])}")
    pairs, ranked = row["pairs"], by_rank(row, measure)
    if row["baseline"]:
        return lines
    if not pairs:
        return lines + ["Δ: no paired seed"] + (_ranked_lines(row, measure) if ranked else [])
    lines.append(f"Δ {number(row[col(measure, 'delta')], digits, sign=True)} ({pairs} pair{'s' * (pairs != 1)})")
    if not metric.tested:
        return lines
    if not pd.isna(row[col(measure, "ci_low")]):
        low, high = (number(row[col(measure, end)], digits, sign=True) for end in ("ci_low", "ci_high"))
        lines.append(f"[{low}, {high}]")
    if ranked:
        lines += _ranked_lines(row, measure)
    else:
        lines += [*_p_line(row, measure), f"wins {row[col(measure, 'wins')]}/{pairs}"]
    detectable = row[col(measure, "detectable")]
    if not pd.isna(detectable) and not row[col(measure, "p_holm")] < ALPHA:
        if np.isinf(detectable):
            lines.append("exact test cannot decide")
        elif detectable > metric.scale:
            lines.append(f"detects no difference within 0–{metric.scale:g}")
        else:
            lines.append(f"could detect ≥ {format_size(detectable, digits)}")
    if not pd.isna(row.get(col(measure, "needed"), np.nan)):
        lines.append(f"--effect needs ~{row[col(measure, 'needed')]} seeds")
    return lines + ([row[col(measure, "note")]] if row[col(measure, "note")] else [])


def _ranked_lines(row: dict, measure: str) -> list[str]:
    """Where a diverged trial made the measure a rank comparison over every pair (see `outcomes`): its sign test
    and wins, in place of the paired tests of the pairs where neither diverged."""
    return [
        f"sign test p{p_is(row[col(measure, 'p')])}, Holm {format_p(row[col(measure, 'p_holm')])} "
        f"({row[col(measure, 'tests')]})",
        f"wins {row[col(measure, 'ranked_wins')]}/{row[col(measure, 'ranked')]}, a diverged trial the worst",
    ]


def _speed_value(row: dict, measure: str) -> str:
    return speed_value(row[col(measure, "speedup")], row[col(measure, "speedup_high")], row[col(measure, "estimator")])


def _steps_cell(row: dict, measure: str) -> list[str]:
    pairs = row[col(measure, "pairs")]
    note = [row[col(measure, "note")]] if row[col(measure, "note")] else []
    if not pairs:
        return ["n/a", *note]
    at = [] if pd.isna(row[col(measure, "at")]) else [f"step {_short(row[col(measure, 'at')])}"]
    if row["baseline"]:
        return ["1.00× (reference)", *at, *note]
    if pd.isna(row[col(measure, "speedup")]):
        return ["n/a", *note]
    interval = speed_interval(row, measure)  # '' where it would say nothing
    lines = [_speed_value(row, measure), *([interval] if interval else [])]
    lines += _p_line(row, measure)
    lines.append(f"reached {row[col(measure, 'reached')]}/{pairs}")
    if row[col(measure, "unit")] == "examples":
        lines.append("in examples seen")
    return lines + at + note


def _caption(c: Comparison, shown: list[str], records: list[dict]) -> str:
    t, base = c.table, c.baseline
    epochs = c.epochs_compared
    window = ", ".join(dict.fromkeys(str(w) for w in t.smoothing))
    every = c.results.config.training.eval_every
    text = (
        f"Mean ± std over seeds at epoch {epochs}. Δ = variant − {base} on the same seed (n pairs: seeds where "
        f"neither diverged), its 95% interval (the hull of the t-interval and the skew-corrected one), the paired "
        f"t-test p (assumes normal differences), the skew-corrected t-test p (Hall 1992), the exact sign-flip p "
        f"(assumes symmetric differences; above 16 pairs estimated from 2¹⁶ random sign flips), and the "
        f"Holm-adjusted p the decision uses (under --test t the larger of the two t-tests'; family size in brackets: "
        f"test acc, both speedups and divergence form one family over the run's comparisons, each other "
        f"metric its own), seeds won; where no difference is shown, the difference these pairs could detect "
        f"with 80% power."
    )
    if "test_acc" in shown and any(by_rank(row, "test_acc") for row in records):
        text += (
            " Test acc where a seed diverged: decided over every pair where both trials ended by the sign test, a "
            "diverged trial ranking below every finished one and two diverged trials tying (wins over those pairs)."
        )
    text += _unadjusted(t, shown)
    if "best_acc" in shown:
        text += " Best test acc: its epoch is chosen on the test set, so it is optimistic."
    if "seconds" in shown:
        text += " Seconds: Δ only (trials that share cores are no paired measurement)."
    if any(m in SPEEDS for m in shown):
        text += (
            f" Steps to target: the target is the mean level of {base}'s curves at half their run "
            f"(training loss: mean of the last {window} batches; test acc: evaluated every "
            f"{f'{every} steps' if every else 'epoch'} in eval mode); speedup = {base}'s steps ÷ the "
            f"variant's. When every seed reached it: the geometric mean with a t-interval on log ratios (a range "
            f"where crossings are known only between two evaluations, tested on the end least favourable to "
            f"the claim); when some did not within their own run: the median with a distribution-free "
            f"interval and the sign test; step = mean step of the seeds that reached it. A speedup the measured "
            f"points bound only within more than {MEASURABLE:g}× is written by its end that holds (≥, ≤), or as not "
            f"measurable, and its interval is left out, as is one spanning more than {MEASURABLE**2:g}×."
        )
    return text


def _unadjusted(table: pd.DataFrame, shown: list[str]) -> str:
    """Where a shown interval stands beside a decision Holm-adjusted over several tests, that it is not adjusted:
    it can exclude 0 where the decision shows no difference (as the verdicts, csv and json say: `ci_unadjusted`)."""
    flags = [f"{m}_ci_unadjusted" for m in shown if f"{m}_ci_unadjusted" in table.columns]
    if not any(table[flag].eq(True).any() for flag in flags):
        return ""
    return (
        " Intervals are 95% each, unadjusted for the Holm family: one can exclude 0 (1 for a speedup) beside "
        "no difference shown."
    )


def _windows_grid(c: Comparison) -> Grid:
    w, t = c.windows, c.table
    columns = list(t[c.points + ["variant"]].itertuples(index=False, name=None))
    cells = {
        (*(row[p] for p in c.points), row["variant"], row["mini_batch"]): [
            number(row["loss_mean"], 4) + (f" ± {number(row['loss_std'], 4)}" if row["seeds"] >= 2 else "")
        ]
        for row in w.to_dict("records")
    }
    header = ["mini-batch", *(", ".join([col[-1], *(f"{p}={v}" for p, v in zip(c.points, col))]) for col in columns)]
    rows = [[[str(b)], *(cells.get((*col, b), [""]) for col in columns)] for b in sorted(w.mini_batch.unique())]
    epochs = ", ".join(dict.fromkeys(str(e) for e in t.epoch))
    window = ", ".join(dict.fromkeys(str(s) for s in t.smoothing))
    left_out = [f"{v} {d}" for v, ds in zip(t.variant, t.diverged) for d in ds.split("; ") if ds]
    caption = (
        f"Mean loss of each {window} mini-batches of epoch {epochs} (the tutorial's \"Loss after mini-batch "
        f'N" lines), mean ± std over seeds.'
        + (f" Left out: {'; '.join(left_out)}." if left_out else "")
        + ("" if rows else f" No full window of {window} batches in epoch {epochs}.")
    )
    return Grid(f"{c.title} · epoch {epochs}", header, rows, caption, _notes(c))
