"""Rendering: text tables for `list` and `compare`, and the export formats. Nothing here computes results.

Text tables go through `layout`: a boxed table where it fits the terminal, records where it does not, never a
number or name split across lines, nothing wrapped when the output is not a terminal (width None).
"""

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from bnbench.analysis import Comparison
from bnbench.analysis.answers import NONE, answers
from bnbench.analysis.catalog import config_rows, run_rows
from bnbench.analysis.columns import METRICS, SPEEDS, col, of_measure
from bnbench.analysis.decisions import caveat
from bnbench.analysis.inference import ALPHA, format_p, p_is
from bnbench.analysis.per_seed import per_seed as per_seed_rows
from bnbench.analysis.sentences import MEASURABLE, speed_interval, speed_value
from bnbench.errors import BnbenchError
from bnbench.views.glance import glance
from bnbench.views.layout import Grid, columns, laid_out, render, wrap


def configs_table(folder: Optional[Path], width: int) -> str:
    """A config a line: file, name, data, model, seeds, epochs, sweep, trials, variants (the least needed left out
    in a narrow terminal, the variants cut at its edge); a config that does not load, its error."""
    found = config_rows(folder)
    rows = [
        [
            r["file"].removesuffix(".yaml"),
            r["name"],
            r["dataset"],
            r["model"],
            seed_ranges(r["seeds"]),
            str(r["epochs"]),
            r["sweep"],
            str(r["trials"]),
            r["variants"],
        ]
        for r in found
        if "error" not in r
    ]
    header = ["config", "name", "data", "model", "seeds", "epochs", "sweep", "trials", "variants"]
    drop = [["name"], ["name", "sweep"], ["name", "sweep", "seeds"], ["name", "sweep", "seeds", "epochs"]]
    lines = columns(header, rows, width, drop, {"epochs", "trials"}, cut=True) if rows else ["(none)"]
    return "\n".join(["Configs", *lines, *_errors(found, "file", width)]) + "\n"


def runs_table(results: Path, width: int, tags: tuple[str, ...] = ()) -> str:
    """A run a line: experiment/run id, status, trials done, seeds, epochs, its verdict in a few words, started,
    device, its tags (a column only where some run has tags), and the options it was started with; in a narrow
    terminal, started, device, options, then trials and seeds are left out, and a line says so (`bnbench show
    RUN` has them), and the last column is cut at the terminal's edge; a run that cannot be read, why. `tags`:
    only the runs tagged with all of them."""
    found = _answered(results, run_rows(results, tags))
    rows = [
        [
            f"{r['name']}/{r['run']}",
            r["status"],
            r["trials"],
            seed_ranges(r["seeds"]),
            str(r["epochs"]),
            r["verdict"],
            _short_time(r["started"]),
            r["device"].split(" (")[0],
            ",".join(r["tags"]),
            r["overrides"],
        ]
        for r in found
        if "error" not in r
    ]
    header = ["run", "status", "trials", "seeds", "epochs", "verdict", "started", "device", "tags", "options"]
    if not any(row[-2] for row in rows):  # no run has tags: no empty column
        header, rows = header[:-2] + header[-1:], [row[:-2] + row[-1:] for row in rows]
    drop = [["started"], ["started", "device"], ["started", "device", "options"]]
    drop += [drop[-1] + ["trials"], drop[-1] + ["trials", "seeds"]]  # the verdict is worth more
    none = f"(no runs tagged {', '.join(tags)})" if tags else "(no runs yet)"
    lines, shown = laid_out(header, rows, width, drop, {"trials", "epochs"}, cut=True) if rows else ([none], header)
    left = [name for name in header if name not in shown]
    lines += wrap(f"Left out at this width: {', '.join(left)} (see bnbench show RUN).", width) if left else []
    return "\n".join([*wrap(f"Runs under {results}", width), *lines, *_errors(found, "run", width)]) + "\n"


def _answered(results: Path, rows: list[dict]) -> list[dict]:
    """The rows of `run_rows`, each readable one with its verdict: the answer of a complete run in a few words
    (`analysis.answers`, the words `compare` uses), "—" for a run not complete."""
    done = [Path(r["path"]) for r in rows if "error" not in r and r["status"] == "complete"]
    said = dict(zip(done, answers(results, done)))
    return [r if "error" in r else r | {"verdict": said.get(Path(r["path"]), NONE)} for r in rows]


def _errors(rows: list[dict], name: str, width: int) -> list[str]:
    """The entries that could not be read, each with why, under the list."""
    return [line for r in rows if "error" in r for line in wrap(f"{r[name]}: {r['error']}", width, "", "  ")]


def seed_ranges(seeds: str) -> str:
    """'0, 1, 2, 3, 5' -> '0-3,5', as --seeds takes them."""
    try:
        numbers = [int(s) for s in seeds.split(", ")]
    except ValueError:
        return seeds
    runs, start = [], 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            first, last = numbers[start], numbers[i - 1]
            runs.append(str(first) if first == last else f"{first}-{last}" if last > first + 1 else f"{first},{last}")
            start = i
    return ",".join(runs)


def _short_time(stamp: str) -> str:
    """'2026-11-29T02:53:42+0000' -> '11-29 02:53'."""
    return f"{stamp[5:10]} {stamp[11:16]}" if len(stamp) >= 16 and stamp[10] == "T" else stamp


def list_output(configs: Optional[Path], results: Path, fmt: str, width: int, tags: tuple[str, ...] = ()) -> str:
    """What `bnbench list` shows: the two lists, or (json) {"configs": [...], "runs": [...]} with every field;
    `tags`: only the runs tagged with all of them."""
    if fmt == "json":
        runs = _answered(results, run_rows(results, tags))
        return json.dumps({"configs": config_rows(configs), "runs": runs}, indent=2) + "\n"
    if fmt != "table":
        raise BnbenchError(f"--format {fmt}: unknown format; choose table or json")
    return configs_table(configs, width) + "\n" + runs_table(results, width, tags)


# ---- show --------------------------------------------------------------------------------------------------------


def show_output(summary: dict, fmt: str, width: int) -> str:
    """What `bnbench show` prints for one run (see show.summary): text, or json with every field."""
    if fmt == "json":
        return json.dumps(summary, indent=2) + "\n"
    if fmt != "table":
        raise BnbenchError(f"--format {fmt}: unknown format; choose table or json")
    s = summary
    ended = f", ended {s['ended']}" if s["ended"] else ""
    resumed = f", resumed {len(s['resumed'])}×" if s["resumed"] else ""
    damage = f", damaged: {s['damage']}" if s["damage"] else ""
    lead = [
        f"{s['experiment']} · run {s['run']}",
        f"status: {s['status']}{damage} (started {s['started']}{ended}{resumed})",
        f"engine: {s['engine'] or '?'} · device: {s['device'] or '?'} ({s['device_name'] or '?'})",
        f"checkpoints: {s['checkpoints']}",
        f"config: {s['source'] or '(not recorded)'}: {s['source_state']}",
        f"overrides: {s['overrides'] or '(none)'}",
        "differs from the config file: " + ("; ".join(s["from_source"]) or "nowhere"),
    ]
    labels = [f"tags: {', '.join(s['tags'])}"] * bool(s["tags"]) + [f"note: {s['note']}"] * bool(s["note"])
    lead += [" · ".join(labels)] if labels else []
    if s["edited"]:
        lead.append(f"config.yaml edited since the run began: {'; '.join(s['edited'])} (as started -> as now)")
    lead += [f"verdict: {v}" for v in s["verdicts"]] + ([f"cannot compare: {s['problem']}"] if s["problem"] else [])
    lead += [f"{'repair' if s['damage'] else 'continue'} with: {s['next']}"] if s["next"] else []
    lines = [line for paragraph in lead for line in wrap(paragraph, width, "", "  ", "; ")]
    if not s["trials"]:  # the rows could not be read: `problem` says why
        return "\n".join(lines + ["trials: none readable"]) + "\n"
    points = [k for k in s["trials"][0] if "." in k]  # sweep paths are dotted
    header = [
        "variant",
        "seed",
        *points,
        "status",
        "epochs",
        "steps",
        "seconds",
        "train loss",
        "test loss",
        "test acc %",
    ]
    rows = [
        [
            t["variant"],
            str(t["seed"]),
            *(str(t[p]) for p in points),
            t["status"],
            f"{t['epochs']}/{t['epochs_total']}",
            str(t["steps"]),
            _num(t["seconds"], 1),
            _num(t["train_loss"], 4),
            _num(t["test_loss"], 4),
            _num(t["test_acc"], 2),
        ]
        for t in s["trials"]
    ]
    right = {"seed", "epochs", "steps", "seconds", "train loss", "test loss", "test acc %"}
    drop = [["steps"], ["steps", "seconds"], ["steps", "seconds", "test loss"]]
    table, shown = laid_out(header, rows, width, drop, right)
    return "\n".join(lines + [""] + table + wrap(_trials_caption(header, shown), width)) + "\n"


def _trials_caption(header: list[str], shown: list[str]) -> str:
    """What `show`'s columns mean, naming only those shown, and which were left out for the width."""
    counts = {"steps": "steps", "seconds": "wall seconds"}
    said = ["epochs finished of configured", *(words for name, words in counts.items() if name in shown)]
    left = [name for name in header if name not in shown]
    return (
        f"Per trial: {', '.join(said)}, and the numbers of its last finished epoch (train loss: mean mini-batch "
        f"loss of that epoch; test: in eval mode)."
        + (f" Left out at this width: {', '.join(left)} (--format json has them)." if left else "")
    )


# ---- compare -------------------------------------------------------------------------------------------------------

FORMATS = ["table", "markdown", "csv", "json", "latex"]
SHOWN = ["train_loss", "test_loss", "test_acc", "best_acc", "steps", "steps_acc", "seconds"]  # --metric choices
TEX = {
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "×": r"$\times$",
    "÷": r"$\div$",
    "·": r"$\cdot$",
    "−": "-",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
}


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
    table unwrapped); else the text of that export format; `per_seed` (csv, json): the numbers the summary is
    made from, a row per trial and measure (see `analysis.per_seed`).

    Every format shows the same numbers: csv and json at full precision, one row per variant (or per window
    with `windows`); the others rounded, with the same rows and columns, and the verdict lines on top.
    """
    if fmt not in FORMATS:
        raise BnbenchError(f"--format {fmt}: unknown format; choose one of {', '.join(FORMATS)}")
    for metric in metrics:
        if metric not in SHOWN:
            raise BnbenchError(f"--metric {metric}: unknown metric; choose from {', '.join(SHOWN)}")
    shown = [m for m in SHOWN if m in metrics] or SHOWN
    if per_seed and (fmt not in ("csv", "json") or windows):
        raise BnbenchError(
            f"--per-seed: {'--windows' if windows else f'--format {fmt}'} has no rows per seed; use --format csv or "
            f"--format json without --windows"
        )
    if fmt in ("csv", "json"):
        frame = pd.concat(
            [
                per_seed_rows(c, shown) if per_seed else _windows_frame(c) if windows else _columns(c.table, shown)
                for c in comparisons
            ],
            ignore_index=True,
        )
        return frame.to_csv(index=False) if fmt == "csv" else json.dumps(_records(frame), indent=2) + "\n"
    if fmt == "table" and not (full or windows or metrics):
        return glance(comparisons, width, every)
    grids = [_windows_grid(c) if windows else _comparison_grid(c, shown) for c in comparisons]
    if fmt == "table":
        return "\n".join(render(g, width) for g in grids)
    return "\n".join(_markdown(g) if fmt == "markdown" else _latex(g) for g in grids)


def _columns(table: pd.DataFrame, shown: list[str]) -> pd.DataFrame:
    hidden = {c for m in SHOWN if m not in shown for c in of_measure(m)}
    return table.drop(columns=[c for c in table.columns if c in hidden])


def _windows_frame(c: Comparison) -> pd.DataFrame:
    return c.windows.assign(
        experiment=c.name, run=c.results.runs, status=c.results.status, notes="; ".join(c.results.notes)
    )[["experiment", "run", "status", "notes", *c.windows.columns]]


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN and NA become null, numpy scalars plain Python numbers."""
    return [
        {k: None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


# ---- cells -------------------------------------------------------------------------------------------------------


def _num(x: float, digits: int, sign: bool = False) -> str:
    return "-" if pd.isna(x) else f"{x:{'+' if sign else ''}.{digits}f}"


def _short(x: float) -> str:
    """4.0 -> '4', 4.333 -> '4.3' (means of whole numbers)."""
    return f"{x:.1f}".removesuffix(".0")


def _comparison_grid(c: Comparison, shown: list[str]) -> Grid:
    header = ["variant", *c.points, "seeds", *(_header(c, m) for m in shown)]
    rows = []
    for row in c.table.to_dict("records"):
        cells = [_variant_cell(row), *([row[p]] for p in c.points), [str(row["seeds"])]]
        rows.append(cells + [_steps_cell(row, m) if m in SPEEDS else _metric_cell(row, m) for m in shown])
    lead = _notes(c) + c.decided + [f"note: {caveat()}"] * bool(c.decided)
    lead += [v for v in c.table.verdict if isinstance(v, str)]
    return Grid(c.title, header, rows, _caption(c, shown), lead)


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
    """'t p=0.0012, exact 0.031, Holm 0.0048 (8)': both tests' p, the adjusted p the decision uses, its family."""
    if pd.isna(row[col(measure, "p")]):
        return []
    t = "" if pd.isna(row[col(measure, "p_t")]) else f"t p{p_is(row[col(measure, 'p_t')])}, "
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
        _num(row[col(measure, "mean")], digits) + (f" ± {_num(row[col(measure, 'std')], digits)}" if n >= 2 else "")
    ]
    if measure == "best_acc":
        lines.append(f"at epoch {_short(row['best_epoch'])}")
    pairs = row["pairs"]
    if row["baseline"]:
        return lines
    if not pairs:
        return lines + ["Δ: no paired seed"]
    lines.append(f"Δ {_num(row[col(measure, 'delta')], digits, sign=True)} ({pairs} pair{'s' * (pairs != 1)})")
    if not metric.tested:
        return lines
    if not pd.isna(row[col(measure, "ci_low")]):
        low, high = (_num(row[col(measure, end)], digits, sign=True) for end in ("ci_low", "ci_high"))
        lines.append(f"[{low}, {high}]")
    lines += _p_line(row, measure)
    lines.append(f"wins {row[col(measure, 'wins')]}/{pairs}")
    detectable = row[col(measure, "detectable")]
    if not pd.isna(detectable) and not row[col(measure, "p_holm")] < ALPHA:
        lines.append(
            "exact test cannot decide" if np.isinf(detectable) else f"could detect ≥ {_num(detectable, digits)}"
        )
    if not pd.isna(row.get(col(measure, "needed"), np.nan)):
        lines.append(f"--effect needs ~{row[col(measure, 'needed')]} seeds")
    return lines + ([row[col(measure, "note")]] if row[col(measure, "note")] else [])


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


def _caption(c: Comparison, shown: list[str]) -> str:
    t, base = c.table, c.baseline
    epochs = ", ".join(dict.fromkeys(f"{e} of {n}" for e, n in zip(t.epoch, t.epochs)))
    window = ", ".join(dict.fromkeys(str(w) for w in t.smoothing))
    every = c.results.config.training.eval_every
    text = (
        f"Mean ± std over seeds at epoch {epochs}. Δ = variant − {base} on the same seed (n pairs: seeds where "
        f"neither diverged), its 95% t-interval, the paired t-test p (assumes normal differences), the exact "
        f"sign-flip p (assumes nothing), and the Holm-adjusted p the decision uses (family size in brackets: "
        f"test acc, both speedups and divergence form one family over the run's comparisons, each other "
        f"metric its own), seeds won; where no difference is shown, the difference these pairs could detect "
        f"with 80% power."
    )
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


def _windows_grid(c: Comparison) -> Grid:
    w, t = c.windows, c.table
    columns = list(t[c.points + ["variant"]].itertuples(index=False, name=None))
    cells = {
        (*(row[p] for p in c.points), row["variant"], row["mini_batch"]): [
            _num(row["loss_mean"], 4) + (f" ± {_num(row['loss_std'], 4)}" if row["seeds"] >= 2 else "")
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


# ---- formats -----------------------------------------------------------------------------------------------------


def _markdown(g: Grid) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    rows = [line("<br>".join(cell) for cell in row) for row in g.rows]
    lead = [f"- {paragraph}" for paragraph in g.lead] + [""] * bool(g.lead)
    return "\n".join(
        [f"### {g.title}", "", *lead, line(g.header), "|" + "---|" * len(g.header), *rows, "", g.caption, ""]
    )


def _tex(text: str) -> str:
    """Escape LaTeX's special characters; brackets are braced so that `\\ [` is never read as `\\[length]`."""
    text = "".join(
        "\\textbackslash{}"
        if ch == "\\"
        else "\\" + ch
        if ch in "&%$#_{}"
        else "\\textasciitilde{}"
        if ch == "~"
        else "\\textasciicircum{}"
        if ch == "^"
        else "{" + ch + "}"
        if ch in "[]"
        else ch
        for ch in text
    )
    for symbol, command in TEX.items():
        text = text.replace(symbol, command)
    return text


def _latex(g: Grid) -> str:
    """A `tabular` (no packages needed); cells of several lines become nested one-column tabulars."""

    def cell(lines):
        lines = [_tex(line) for line in lines]
        return lines[0] if len(lines) == 1 else r"\begin{tabular}[t]{@{}l@{}}" + r" \\ ".join(lines) + r"\end{tabular}"

    rows = [" & ".join(cell(c) for c in row) + r" \\ \hline" for row in g.rows]
    return "\n".join(
        [
            f"% {g.title}",
            *(f"% {paragraph}" for paragraph in g.lead),
            f"% {g.caption}",
            r"\begin{tabular}{" + "l" * len(g.header) + "}",
            r"\hline",
            " & ".join(_tex(h) for h in g.header) + r" \\ \hline",
            *rows,
            r"\end{tabular}",
            "",
        ]
    )
