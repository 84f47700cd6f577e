"""`bnbench compare`'s default view: the answer at a glance, in the width of a terminal (80 columns when there is
none): per run, its title, the verdict lines first, then one compact line per variant (x sweep point) and a
legend; `--full` and the export formats carry every statistic.

Titles of runs of one experiment say what separates them (`training.epochs=30`), so that several runs of one
config are told apart by their settings, not only by their run ids.
"""

import math
from typing import Optional

from .analysis import Comparison
from .analysis.columns import SPEEDS, col
from .analysis.decisions import caveat
from .analysis.inference import format_p
from .analysis.sentences import speed_value
from .config import Config
from .layout import columns, wrap

WIDTH = 80  # when there is no terminal and no COLUMNS


def glance(comparisons: list[Comparison], width: Optional[int]) -> str:
    """The compact view of `comparisons`, every line at most `width` (default WIDTH) cells."""
    width = width or WIDTH
    settings = separating([c.results.config for c in comparisons])
    return "\n".join(_block(c, extra, width) for c, extra in zip(comparisons, settings))


def _block(c: Comparison, extra: str, width: int) -> str:
    status = "" if c.results.status == "complete" else f" [{c.results.status}]"
    t = c.table
    epochs = ", ".join(dict.fromkeys(f"epoch {e} of {n}" for e, n in zip(t.epoch, t.epochs)))
    title = " · ".join(filter(None, [c.name, c.results.label or f"run {c.results.dir.name}", extra, epochs]))
    lines = wrap(title + status, width)
    for verdict in c.decided or (v for v in t.verdict if isinstance(v, str)):
        lines += wrap(verdict, width, "", "  ", "; ")
    lines += [""] + _table(c, width)
    lines += wrap(
        f"to loss, to acc: speedup to {c.baseline}'s {SPEEDS['steps'].label} and "
        f"{SPEEDS['steps_acc'].label} (the mean level of its curves at half their run; 1 = as fast, a–b: "
        f"known between two evaluations). Every statistic: --full or --format csv.",
        width,
    )
    for note in c.results.notes + (caveat(),) * bool(c.decided):
        lines += wrap(f"note: {note}", width, "", "  ")
    return "\n".join(lines) + "\n"


# ---- the table ---------------------------------------------------------------------------------------------------

COLUMNS = ["variant", "test acc", "Δ pts [95% CI]", "Holm p", "wins", "to loss", "to acc", "diverged"]
RIGHT = {"test acc", "Holm p", "wins", "to loss", "to acc", "diverged"}


def _table(c: Comparison, width: int) -> list[str]:
    """One line per variant (x sweep point); while too wide, the least needed columns are left out (the test
    accuracy itself, then the speedups), and below that a record per variant."""
    rows = [_cells(row, c.points) for row in c.table.to_dict("records")]
    header = [COLUMNS[0], *c.points, *COLUMNS[1:]]
    return columns(
        header, rows, width, [["test acc"], ["test acc", "to acc"], ["test acc", "to acc", "to loss"]], RIGHT
    )


def _cells(row: dict, points: list[str]) -> list[str]:
    """variant, sweep values, then COLUMNS[1:]."""
    acc = _number(row[col("test_acc", "mean")], 2)
    diverged = f"{row['diverged_seeds']}/{row['trials']}"
    if row["baseline"]:
        reference = "1" if row["seeds"] else "-"
        return [
            row["variant"],
            *(str(row[p]) for p in points),
            acc,
            "(baseline)",
            "",
            "",
            reference,
            reference,
            diverged,
        ]
    if not row["pairs"]:
        return [row["variant"], *(str(row[p]) for p in points), acc, "no pairs", "", "", "", "", diverged]
    delta = f"{row[col('test_acc', 'delta')]:+.2f}"
    low, high = row[col("test_acc", "ci_low")], row[col("test_acc", "ci_high")]
    if not math.isnan(low):
        delta += f" [{low:+.2f}, {high:+.2f}]"
    return [
        row["variant"],
        *(str(row[p]) for p in points),
        acc,
        delta,
        format_p(row[col("test_acc", "p_holm")]),
        f"{row[col('test_acc', 'wins')]}/{row['pairs']}",
        _speed(row, "steps"),
        _speed(row, "steps_acc"),
        diverged,
    ]


def _speed(row: dict, measure: str) -> str:
    low = row[col(measure, "speedup")]
    return (
        "n/a"
        if math.isnan(low)
        else speed_value(low, row[col(measure, "speedup_high")], row[col(measure, "estimator")])
    )


def _number(x: float, digits: int) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


# ---- titles ------------------------------------------------------------------------------------------------------


def separating(configs: list[Config]) -> list[str]:
    """Per config, 'path=value' of the settings that differ between the configs of its experiment (seeds aside):
    what tells its run from the others in the output."""
    flat = [_flat(c.model_dump(mode="json", exclude={"seeds"})) for c in configs]
    out = []
    for i, config in enumerate(configs):
        same = [f for f, c in zip(flat, configs) if c.name == config.name]
        paths = [p for p in flat[i] if any(f.get(p) != flat[i][p] for f in same)]
        out.append(", ".join(f"{p}={flat[i][p]}" for p in paths))
    return out


def _flat(value, path: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{path}.{key}" if path else key).items()}
    return {path: value}
