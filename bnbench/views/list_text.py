"""`bnbench list` as text: the configs in a folder and the runs under a results folder, a line each (`layout`:
while too wide, the least needed columns are left out, then the last one is cut at the terminal's edge, so that a
line is never wrapped), and below each list the entries that could not be read, with why; or every field as json.
The rows are `analysis.catalog`'s, the verdicts `analysis.answers`'."""

import json
from pathlib import Path
from typing import Optional

from bnbench.analysis.answers import NONE, answers
from bnbench.analysis.catalog import config_rows, run_rows
from bnbench.errors import BnbenchError
from bnbench.views.layout import laid_out, wrap

# column -> the field of a row it shows
CONFIG_COLUMNS = {
    "config": "file",
    "name": "name",
    "data": "dataset",
    "model": "model",
    "seeds": "seeds",
    "epochs": "epochs",
    "sweep": "sweep",
    "trials": "trials",
    "variants": "variants",
}
RUN_COLUMNS = {
    "run": "run",
    "status": "status",
    "trials": "trials",
    "seeds": "seeds",
    "epochs": "epochs",
    "val": "validation",  # examples held out (dataset.validation): a column only where some run has them
    "verdict": "verdict",
    "started": "started",
    "device": "device",
    "tags": "tags",
    "options": "overrides",
}


def list_output(configs: Optional[Path], results: Path, fmt: str, width: int, tags: tuple[str, ...] = ()) -> str:
    """What `bnbench list` shows: the two lists, or (json) {"configs": [...], "runs": [...]} with every field;
    `tags`: only the runs tagged with all of them."""
    if fmt == "json":
        runs = _answered(results, run_rows(results, tags))
        return json.dumps({"configs": config_rows(configs), "runs": runs}, indent=2) + "\n"
    if fmt != "table":
        raise BnbenchError(f"--format {fmt}: unknown format; choose table or json")
    return configs_table(configs, width) + "\n" + runs_table(results, width, tags)


def configs_table(folder: Optional[Path], width: int) -> str:
    """A config a line: file, name, data, model, seeds, epochs, sweep, trials, variants (the least needed left out
    in a narrow terminal, the variants cut at its edge); a config that does not load, its error."""
    found = config_rows(folder)
    drop = [["name"], ["name", "sweep"], ["name", "sweep", "seeds"], ["name", "sweep", "seeds", "epochs"]]
    lines, _ = _table(found, CONFIG_COLUMNS, width, drop, {"epochs", "trials"}, "(none)")
    return "\n".join(["Configs", *lines, *_errors(found, "file", width)]) + "\n"


def runs_table(results: Path, width: int, tags: tuple[str, ...] = ()) -> str:
    """A run a line: experiment/run id, status, trials done, seeds, epochs, its verdict in a few words, started,
    device, its tags (a column only where some run has tags), and the options it was started with; in a narrow
    terminal, started, device, options, then trials and seeds are left out, and a line says so (`bnbench show
    RUN` has them), and the last column is cut at the terminal's edge; a run that cannot be read, why. `tags`:
    only the runs tagged with all of them."""
    found = _answered(results, run_rows(results, tags))
    drop = [["started"], ["started", "device"], ["started", "device", "options"]]
    drop += [drop[-1] + ["trials"], drop[-1] + ["trials", "seeds"]]  # the verdict is worth more
    none = f"(no runs tagged {', '.join(tags)})" if tags else "(no runs yet)"
    lines, left = _table(found, RUN_COLUMNS, width, drop, {"trials", "epochs"}, none)
    lines += wrap(f"Left out at this width: {', '.join(left)} (see bnbench show RUN).", width) if left else []
    return "\n".join([*wrap(f"Runs under {results}", width), *lines, *_errors(found, "run", width)]) + "\n"


def _table(
    found: list[dict], columns: dict[str, str], width: int, drop: list[list[str]], right: set[str], none: str
) -> tuple[list[str], list[str]]:
    """The readable rows a line each, every cell as `_cell` writes it, and the columns left out for the width;
    a column every row leaves empty (tags, val, where no run has any) is no column; `none` where no row is readable."""
    rows = [[_cell(field, row) for field in columns.values()] for row in found if "error" not in row]
    header = [name for i, name in enumerate(columns) if any(row[i] for row in rows) or name not in ("tags", "val")]
    rows = [[cell for name, cell in zip(columns, row) if name in header] for row in rows]
    if not rows:
        return [none], []
    lines, shown = laid_out(header, rows, width, drop, right, cut=True)
    return lines, [name for name in header if name not in shown]


def _cell(field: str, row: dict) -> str:
    """A field of a catalog row as its list shows it: seeds as ranges, the start to the minute, the device without
    its name, the tags comma-separated, a run as experiment/run id."""
    value = row.get(field, "")  # validation: only a run with the split has it
    if field == "run":
        return f"{row['name']}/{value}"
    formats = {
        "file": lambda v: v.removesuffix(".yaml"),
        "seeds": seed_ranges,
        "started": _short_time,
        "device": lambda v: v.split(" (")[0],
        "tags": ",".join,
    }
    return formats.get(field, str)(value)


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
