"""Rendering: rich tables for `list` and `compare`, and the export formats. Nothing here computes results."""
from pathlib import Path
from typing import Optional

from rich.table import Table

from .catalog import config_rows, run_rows


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
