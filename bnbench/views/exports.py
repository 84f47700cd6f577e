"""`compare`'s export formats: csv and json of a table at full precision, markdown and LaTeX of the text grids
(the same rows and columns as the terminal's, rounded, the verdict lines on top)."""

import json

import numpy as np
import pandas as pd

from bnbench.views.layout import Grid

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


def data(frame: pd.DataFrame, fmt: str) -> str:
    """`frame` as csv (no index) or as a JSON list of records ("json")."""
    return frame.to_csv(index=False) if fmt == "csv" else json.dumps(_records(frame), indent=2) + "\n"


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN and NA become null, numpy scalars plain Python numbers."""
    return [
        {k: None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def markdown(g: Grid) -> str:
    """A heading, the lead paragraphs as a list, a pipe table (a cell's lines joined by <br>), the caption."""

    def line(cells):
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    rows = [line("<br>".join(cell) for cell in row) for row in g.rows]
    lead = [f"- {paragraph}" for paragraph in g.lead] + [""] * bool(g.lead)
    return "\n".join(
        [f"### {g.title}", "", *lead, line(g.header), "|" + "---|" * len(g.header), *rows, "", g.caption, ""]
    )


def tex(text: str) -> str:
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


def latex(g: Grid) -> str:
    """A `tabular` (no packages needed); cells of several lines become nested one-column tabulars."""

    def cell(lines):
        lines = [tex(line) for line in lines]
        return lines[0] if len(lines) == 1 else r"\begin{tabular}[t]{@{}l@{}}" + r" \\ ".join(lines) + r"\end{tabular}"

    rows = [" & ".join(cell(c) for c in row) + r" \\ \hline" for row in g.rows]
    return "\n".join(
        [
            f"% {g.title}",
            *(f"% {paragraph}" for paragraph in g.lead),
            f"% {g.caption}",
            r"\begin{tabular}{" + "l" * len(g.header) + "}",
            r"\hline",
            " & ".join(tex(h) for h in g.header) + r" \\ \hline",
            *rows,
            r"\end{tabular}",
            "",
        ]
    )
