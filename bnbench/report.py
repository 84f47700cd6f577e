"""Rendering: rich tables for `list` and `compare`, and the export formats. Nothing here computes results."""
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .catalog import config_rows, run_rows
from .compare import METRICS, STATS, STEPS_COLUMNS, Comparison
from .errors import BnbenchError


def _table(title: str, rows: list[dict], columns: list[str], empty: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        if "error" in row:
            table.add_row(row.get("file") or row.get("run"), f"[red]{row['error']}[/]", *[""] * (len(columns) - 2))
        else:
            table.add_row(*(str(row.get(c, "")) for c in columns))
    if not rows:
        table.add_row(empty, *[""] * (len(columns) - 1))
    return table


def configs_table(folder: Optional[Path]) -> Table:
    return _table("Configs", config_rows(folder),
                  ["file", "name", "dataset", "model", "variants", "seeds", "epochs", "sweep", "trials"], "(none)")


def runs_table(results: Path) -> Table:
    return _table(f"Runs under {results}", run_rows(results),
                  ["name", "run", "started", "status", "trials", "device"], "(no runs yet)")


# ---- compare -------------------------------------------------------------------------------------------------------

FORMATS = ["table", "markdown", "csv", "json", "latex"]
SHOWN = ["train_loss", "test_loss", "test_acc", "best_acc", "steps", "seconds"]  # --metric choices, column order
DIGITS = {"train_loss": 4, "test_loss": 4, "test_acc": 2, "best_acc": 2, "seconds": 2}
TEX = {"±": r"$\pm$", "Δ": r"$\Delta$", "×": r"$\times$", "÷": r"$\div$", "·": r"$\cdot$", "−": "-"}


@dataclass
class Grid:
    """A table as text cells (each a list of lines), before it becomes rich, markdown or LaTeX."""
    title: str
    header: list[str]
    rows: list[list[list[str]]]
    caption: str


def comparison_output(comparisons: list[Comparison], fmt: str = "table", metrics: list[str] = (),
                      windows: bool = False) -> str | list[Table]:
    """What `bnbench compare` shows: rich tables for "table", else the text of that export format.

    Every format shows the same numbers: csv and json at full precision, one row per variant (or per window
    with `windows`); the others rounded, with the same rows and columns.
    """
    if fmt not in FORMATS:
        raise BnbenchError(f"--format {fmt}: unknown format; choose one of {', '.join(FORMATS)}")
    for metric in metrics:
        if metric not in SHOWN:
            raise BnbenchError(f"--metric {metric}: unknown metric; choose from {', '.join(SHOWN)}")
    shown = [m for m in SHOWN if m in metrics] or SHOWN
    if fmt in ("csv", "json"):
        frame = pd.concat([_windows_frame(c) if windows else _columns(c.table, shown) for c in comparisons],
                          ignore_index=True)
        return frame.to_csv(index=False) if fmt == "csv" else json.dumps(_records(frame), indent=2) + "\n"
    grids = [_windows_grid(c) if windows else _comparison_grid(c, shown) for c in comparisons]
    if fmt == "table":
        return [_rich(g) for g in grids]
    return "\n".join(_markdown(g) if fmt == "markdown" else _latex(g) for g in grids)


def plain_text(renderables: list, width: int = 200) -> str:
    """Rich renderables as plain text, for `compare --output FILE` with the table format."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    for renderable in renderables:
        console.print(renderable)
    return console.file.getvalue()


def _columns(table: pd.DataFrame, shown: list[str]) -> pd.DataFrame:
    hidden = [f"{m}_{s}" for m in METRICS if m not in shown for s in STATS]
    hidden += ["best_epoch"] * ("best_acc" not in shown) + STEPS_COLUMNS * ("steps" not in shown)
    return table.drop(columns=hidden)


def _windows_frame(c: Comparison) -> pd.DataFrame:
    return c.windows.assign(experiment=c.name, run=str(c.results.dir), status=c.results.status)[
        ["experiment", "run", "status", *c.windows.columns]]


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN and NA become null, numpy scalars plain Python numbers."""
    return [{k: None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
            for row in frame.to_dict("records")]


# ---- cells -------------------------------------------------------------------------------------------------------

def _num(x: float, digits: int, sign: bool = False) -> str:
    return "-" if pd.isna(x) else f"{x:{'+' if sign else ''}.{digits}f}"


def _short(x: float) -> str:
    """4.0 -> '4', 4.333 -> '4.3' (means of whole numbers)."""
    return f"{x:.1f}".removesuffix(".0")


def _comparison_grid(c: Comparison, shown: list[str]) -> Grid:
    header = ["variant", *c.points, "seeds",
              *(METRICS[m][0] if m in METRICS else "steps to target" for m in shown)]
    rows = []
    for row in c.table.to_dict("records"):
        cells = [_variant_cell(row), *([row[p]] for p in c.points), [str(row["seeds"])]]
        rows.append(cells + [_steps_cell(row) if m == "steps" else _metric_cell(row, m) for m in shown])
    return Grid(c.title, header, rows, _caption(c))


def _variant_cell(row: dict) -> list[str]:
    lines = [row["variant"]] + ["(baseline)"] * bool(row["baseline"])
    lines += row["diverged"].split("; ") if row["diverged"] else []
    return lines + ([f"no results yet: seed {row['missing']}"] if row["missing"] else [])


def _metric_cell(row: dict, metric: str) -> list[str]:
    n, digits = row["seeds"], DIGITS[metric]
    if not n:
        return ["all seeds diverged" if row["diverged"] else "no results"]
    lines = [_num(row[f"{metric}_mean"], digits) + (f" ± {_num(row[f'{metric}_std'], digits)}" if n >= 2 else "")]
    if metric == "best_acc":
        lines.append(f"at epoch {_short(row['best_epoch'])}")
    pairs = row["pairs"]
    if row["baseline"]:
        return lines
    if not pairs:
        return lines + ["Δ: no paired seed"]
    lines.append(f"Δ {_num(row[f'{metric}_delta'], digits, sign=True)}")
    if pairs == 1:
        return lines + ["1 seed: no interval"]
    low, high = (_num(row[f"{metric}_ci_{end}"], digits, sign=True) for end in ("low", "high"))
    return lines + [f"[{low}, {high}]", f"p={row[f'{metric}_p']:.2g}, wins {row[f'{metric}_wins']}/{pairs}"]


def _steps_cell(row: dict) -> list[str]:
    pairs, reached = row["target_pairs"], row["target_reached"]
    if not pairs:
        return ["-"]
    if not reached:
        return ["not reached"]
    lines = [f"step {_short(row['steps_to_target'])}", f"speedup {row['speedup']:.2f}×"]
    return lines + ([f"not reached {pairs - reached}/{pairs}"] if reached < pairs else [])


def _caption(c: Comparison) -> str:
    t, base = c.table, c.baseline
    epochs = ", ".join(dict.fromkeys(f"{e} of {n}" for e, n in zip(t.epoch, t.epochs)))
    window = ", ".join(dict.fromkeys(str(w) for w in t.smoothing))
    return (f"Mean ± std over seeds at epoch {epochs}. Δ = variant − {base} on the same seed, its 95% t-interval, "
            f"paired t-test p, and seeds won. Steps to target: first step at which the training loss (mean of the "
            f"last {window} batches) reaches {base}'s final train loss; speedup = {base}'s steps ÷ that step.")


def _windows_grid(c: Comparison) -> Grid:
    w, t = c.windows, c.table
    columns = list(t[c.points + ["variant"]].itertuples(index=False, name=None))
    cells = {(*(row[p] for p in c.points), row["variant"], row["mini_batch"]):
             [_num(row["loss_mean"], 4) + (f" ± {_num(row['loss_std'], 4)}" if row["seeds"] >= 2 else "")]
             for row in w.to_dict("records")}
    header = ["mini-batch", *(", ".join([col[-1], *(f"{p}={v}" for p, v in zip(c.points, col))]) for col in columns)]
    rows = [[[str(b)], *(cells.get((*col, b), [""]) for col in columns)] for b in sorted(w.mini_batch.unique())]
    epochs = ", ".join(dict.fromkeys(str(e) for e in t.epoch))
    window = ", ".join(dict.fromkeys(str(s) for s in t.smoothing))
    left_out = [f"{v} {d}" for v, ds in zip(t.variant, t.diverged) for d in ds.split("; ") if ds]
    caption = (f"Mean loss of each {window} mini-batches of epoch {epochs} (the tutorial's \"Loss after mini-batch "
               f"N\" lines), mean ± std over seeds." + (f" Left out: {'; '.join(left_out)}." if left_out else "")
               + ("" if rows else f" No full window of {window} batches in epoch {epochs}."))
    return Grid(f"{c.title} · epoch {epochs}", header, rows, caption)


# ---- formats -----------------------------------------------------------------------------------------------------

def _rich(g: Grid) -> Table:
    table = Table(title=Text(g.title, style="bold"), caption=Text(g.caption), title_justify="left",
                  caption_justify="left", show_lines=True)
    for column in g.header:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps numbers, never hides them behind "…"
    for row in g.rows:
        table.add_row(*(Text("\n".join(cell)) for cell in row))
    return table


def _markdown(g: Grid) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"
    rows = [line("<br>".join(cell) for cell in row) for row in g.rows]
    return "\n".join([f"### {g.title}", "", line(g.header), "|" + "---|" * len(g.header), *rows, "", g.caption, ""])


def _tex(text: str) -> str:
    """Escape LaTeX's special characters; brackets are braced so that `\\ [` is never read as `\\[length]`."""
    text = "".join("\\textbackslash{}" if ch == "\\" else "\\" + ch if ch in "&%$#_{}" else
                   "\\textasciitilde{}" if ch == "~" else "\\textasciicircum{}" if ch == "^" else
                   "{" + ch + "}" if ch in "[]" else ch for ch in text)
    for symbol, command in TEX.items():
        text = text.replace(symbol, command)
    return text


def _latex(g: Grid) -> str:
    """A `tabular` (no packages needed); cells of several lines become nested one-column tabulars."""
    def cell(lines):
        lines = [_tex(line) for line in lines]
        return lines[0] if len(lines) == 1 else r"\begin{tabular}[t]{@{}l@{}}" + r" \\ ".join(lines) + r"\end{tabular}"
    rows = [" & ".join(cell(c) for c in row) + r" \\ \hline" for row in g.rows]
    return "\n".join([f"% {g.title}", f"% {g.caption}", r"\begin{tabular}{" + "l" * len(g.header) + "}", r"\hline",
                      " & ".join(_tex(h) for h in g.header) + r" \\ \hline", *rows, r"\end{tabular}", ""])
