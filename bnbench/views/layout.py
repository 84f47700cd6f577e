"""Plain-text tables that read cleanly at any terminal width.

The rule: a grid is drawn as a boxed table when its natural width (the width at which no cell wraps) fits the
terminal, and otherwise as a list of records, one "column: value" line per cell. Text is wrapped only at spaces
outside brackets, so a number, name, run id, path or interval like `[+0.72, +13.24]` is never split; a token wider
than the line gets a line of its own instead. With no width (output piped or logged) nothing is wrapped at all.
"""

import io
from dataclasses import dataclass, field
from typing import Optional

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

PAIRS = {"(": ")", "[": "]", "{": "}"}
GROUP = 30  # the longest bracketed group kept on one line


@dataclass
class Grid:
    """A table as text cells (each cell a list of lines), before it becomes text, markdown or LaTeX."""

    title: str
    header: list[str]
    rows: list[list[list[str]]]  # row -> cell -> lines
    caption: str = ""
    lead: list[str] = field(default_factory=list)  # paragraphs printed between title and table (e.g. verdict lines)


def tokens(text: str) -> list[str]:
    """`text` split at whitespace, except inside matched (), [] or {} of at most GROUP characters (an interval,
    "(Holm p=0.04, 3 tests)"); a longer bracketed aside is prose and may wrap; an unmatched bracket protects
    nothing."""
    inside, opened = [False] * len(text), []
    for i, ch in enumerate(text):
        if ch in PAIRS:
            opened.append(i)
        elif opened and ch == PAIRS[text[opened[-1]]]:
            start = opened.pop()
            if i - start <= GROUP:
                inside[start:i] = [True] * (i - start)
    words, word = [], ""
    for ch, protected in zip(text, inside):
        if ch.isspace() and not protected:
            words.append(word)
            word = ""
        else:
            word += ch
    return [w for w in words + [word] if w]


def wrap(
    text: str, width: Optional[int], indent: str = "", hanging: Optional[str] = None, sep: Optional[str] = None
) -> list[str]:
    """Greedy wrap: the first line starts with `indent`, later ones with `hanging` (default `indent`).

    With `sep` (" · ", "; "), the parts between separators are kept on one line where they fit, and a part
    starts a new line rather than break; a part too long for a line, or text without `sep`, wraps at tokens.
    Tokens are never split: one wider than the line stands alone on its line. `width=None` gives one line.
    """
    hanging = indent if hanging is None else hanging
    parts = text.split(sep) if sep else [text]
    if sep:
        parts = [part + sep.rstrip() for part in parts[:-1]] + parts[-1:]
    lines: list[str] = []
    for part in parts:
        if lines and (width is None or cell_len(f"{lines[-1]} {part}") <= width):
            lines[-1] += f" {part}"
        else:
            lines += _wrap_tokens(part, width, hanging if lines else indent, hanging)
    return lines


def _wrap_tokens(text: str, width: Optional[int], indent: str, hanging: str) -> list[str]:
    lines, words = [], []
    for token in tokens(text):
        prefix = hanging if lines else indent
        if words and width is not None and cell_len(prefix + " ".join(words + [token])) > width:
            lines.append(prefix + " ".join(words))
            words = []
        words.append(token)
    return lines + [(hanging if lines else indent) + " ".join(words)] if words else lines


def laid_out(
    header: list[str],
    rows: list[list[str]],
    width: Optional[int],
    drop: list[list[str]] = (),
    right: set[str] = frozenset(),
    cut: bool = False,
) -> tuple[list[str], list[str]]:
    """Rows as aligned columns two spaces apart under a header line, every line at most `width` cells (None: no
    limit): while too wide, the next set of column names in `drop` is left out; then, with `cut`, the last column
    is cut with "…" (a free-text field such as a run's options), else each row becomes one record wrapped at
    " · ". Returns the lines and the names of the columns they show, for a legend that names only those (records
    show every column)."""
    for dropped in [[], *drop]:
        keep = [i for i, name in enumerate(header) if name not in dropped]
        lines = _aligned(
            [[header[i] for i in keep], *([row[i] for i in keep] for row in rows)], [header[i] in right for i in keep]
        )
        if width is None or max(map(cell_len, lines)) <= width:
            return lines, [header[i] for i in keep]
    if cut:
        shown = [header[i] for i in keep]
        return [line if cell_len(line) <= width else line[: width - 1] + "…" for line in lines], shown
    records = [
        line
        for row in rows
        for line in wrap(" · ".join(f"{h}: {v}" for h, v in zip(header, row) if v), width, "", "  ", " · ")
    ]
    return records, list(header)


def _aligned(table: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(cell_len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(_pad(cell, w, r) for cell, w, r in zip(row, widths, right)).rstrip() for row in table]


def _pad(cell: str, width: int, right: bool) -> str:
    space = " " * (width - cell_len(cell))
    return space + cell if right else cell + space


def _table(grid: Grid) -> Table:
    multiline = any(len(cell) > 1 for row in grid.rows for cell in row)
    table = Table(show_lines=multiline)  # Text, not str: cells are never read as markup
    for column in grid.header:
        table.add_column(Text(column))
    for row in grid.rows:
        table.add_row(*(Text("\n".join(cell)) for cell in row))
    return table


def natural_width(grid: Grid) -> int:
    """Terminal cells the boxed table needs so that no cell wraps (title and caption are wrapped apart): each
    column's widest line, one space of padding either side and a border, plus the last border. Counted, not
    measured by rich: measuring costs as much as drawing (a comparison of 300 runs spent seconds on it);
    tests/views/test_layout.py checks the count against the drawn table."""
    columns = [[name, *(line for row in grid.rows for line in row[i])] for i, name in enumerate(grid.header)]
    return sum(max(map(cell_len, column)) + 3 for column in columns) + 1


def _boxed(grid: Grid, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(_table(grid))
    return console.file.getvalue().splitlines()


def _records(grid: Grid, width: int) -> list[str]:
    lines = []
    for first, *cells in grid.rows:
        lines += [""] + wrap(" ".join(first), width)
        for name, cell in zip(grid.header[1:], cells):
            if any(cell):
                lines += wrap(f"{name}: {' · '.join(line for line in cell if line)}", width, "  ", "    ", " · ")
    return lines + [""] * bool(grid.caption)


def render(grid: Grid, width: Optional[int]) -> str:
    """The grid as plain text for a terminal `width` columns wide, or unwrapped at its natural width if None."""
    natural = natural_width(grid)
    lines = wrap(grid.title, width)
    for paragraph in grid.lead:
        lines += wrap(paragraph, width, "", "  ", "; ")
    lines += _boxed(grid, natural) if width is None or natural <= width else _records(grid, width)
    lines += wrap(grid.caption, width)
    return "\n".join(lines) + "\n"
