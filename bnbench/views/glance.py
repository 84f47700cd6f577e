"""`bnbench compare`'s default view: the answer at a glance, in the width of a terminal (80 columns when there is
none): the newest run's title, its verdict lines first, then one compact line per variant (x sweep point) and a
legend naming only the columns shown; then a line per other run with its answer in a few words (each in full with
`--all`), so that the first verdict stays on a 24-line screen; `--full` and the export formats carry every
statistic.

Titles of runs of one experiment say what separates them (`training.epochs=30`), so that several runs of one
config are told apart by their settings, not only by their run ids.
"""

import math
from typing import Optional

from bnbench.analysis import Comparison
from bnbench.analysis.columns import SPEEDS, col
from bnbench.analysis.decisions import caveat
from bnbench.analysis.inference import format_p
from bnbench.analysis.outcomes import by_rank
from bnbench.analysis.sentences import speed_value
from bnbench.experiment.config import Config
from bnbench.views.cells import number
from bnbench.views.layout import laid_out, wrap

WIDTH = 80  # when there is no terminal and no COLUMNS


def glance(comparisons: list[Comparison], width: Optional[int], every: bool = False) -> str:
    """The compact view of `comparisons`, every line at most `width` (default WIDTH) cells: the first (the newest
    run's) in full, then a line per other run with its answer, so that several runs do not scroll the first
    verdict off a screen; `every`: each run in full."""
    width = width or WIDTH
    blocks = list(zip(comparisons, separating([c.results.config for c in comparisons])))
    if every or len(blocks) == 1:
        return "\n".join(_block(c, extra, width) for c, extra in blocks)
    lines = wrap("Other runs (each in full: --all):", width)
    for c, extra in blocks[1:]:
        lines += wrap(f"{_title(c, extra)}: {c.headline}", width, "", "  ")
    return _block(*blocks[0], width) + "\n" + "\n".join(lines) + "\n"


def _title(c: Comparison, extra: str) -> str:
    """'quick-digits · run 20261206-170053 · epoch 1 of 1 [partial]': what the run is and what of it is compared."""
    status = "" if c.results.status == "complete" else f" [{c.results.status}]"
    t = c.table
    epochs = ", ".join(dict.fromkeys(f"epoch {e} of {n}" for e, n in zip(t.epoch, t.epochs)))
    return " · ".join(filter(None, [c.name, c.results.label or f"run {c.results.dir.name}", extra, epochs])) + status


def _block(c: Comparison, extra: str, width: int) -> str:
    lines = wrap(_title(c, extra), width)
    for verdict in c.decided or c.verdicts:
        lines += wrap(verdict, width, "", "  ", "; ")
    table, shown = _table(c, width)
    lines += [""] + table + wrap(_legend(c, shown, table), width)
    for note in c.results.notes + (caveat(),) * bool(c.decided):
        lines += wrap(f"note: {note}", width, "", "  ")
    return "\n".join(lines) + "\n"


def _legend(c: Comparison, shown: list[str], table: list[str]) -> str:
    """What the interval and speedup columns shown mean, and which columns were left out for the width: it names no
    column it does not show (test acc, the mean final test accuracy over seeds, needs no words)."""
    speeds = [name for name in SPEED_COLUMNS if name in shown]
    parts = _unadjusted(c)
    if speeds:
        labels = " and ".join(SPEEDS[SPEED_COLUMNS[name]].label for name in speeds)
        cells = " ".join(table[1:])
        bounds = [text for mark, text in BOUNDS.items() if mark in cells]
        parts.append(f"{', '.join(speeds)}: speedup to {c.baseline}'s {labels} ({'; '.join(['1 = as fast', *bounds])})")
    if any(RANKED in line for line in table[1:]):
        parts.append(f"{RANKED}: some seed diverged, so test acc is decided on every pair by the sign test, {RULED}")
    left = [name for name in COLUMNS if name not in shown and name != "diverged"]
    parts += [f"{', '.join(left)} left out at this width"] * bool(left)
    return "; ".join(parts) + (". " if parts else "") + "Every statistic: --full or --format csv."


def _unadjusted(c: Comparison) -> list[str]:
    """The Δ column's interval is for test acc alone, the Holm p beside it adjusted over the verdict family: said
    where the family has more than one test, so that an interval excluding 0 beside a Holm p above 0.05 reads as
    what it is."""
    flags = c.table[col("test_acc", "ci_unadjusted")]
    if not flags.eq(True).any():
        return []
    return [f"95% CI unadjusted, Holm p adjusted over {c.table[col('test_acc', 'tests')].max()} tests"]


# ---- the table ---------------------------------------------------------------------------------------------------

COLUMNS = ["variant", "test acc", "Δ pts [95% CI]", "Holm p", "wins", "to loss", "to acc", "diverged"]
RIGHT = {"test acc", "Holm p", "wins", "to loss", "to acc", "diverged"}
SPEED_COLUMNS = {"to loss": "steps", "to acc": "steps_acc"}
RANKED = "ranked"  # the Δ cell where a diverged trial made test acc a rank comparison (see `outcomes`)
RULED = "a diverged trial counting as the worst (wins: over those pairs)"
BOUNDS = {  # what the marks of speedup cells mean, said in the legend where a cell has one
    "–": "a–b: known between two measured points",
    "≥": "≥a: bounded below only",
    "≤": "≤b: bounded above only",
    "not measurable": "not measurable: the measured points are too far apart",
}


def _table(c: Comparison, width: int) -> tuple[list[str], list[str]]:
    """One line per variant (x sweep point), and the columns shown: while too wide, the least needed are left
    out (the speedups: the test accuracy stays), and below that a record per variant. "diverged" is a column
    only where some seed diverged."""
    rows = [_cells(row, c.points) for row in c.table.to_dict("records")]
    header = [COLUMNS[0], *c.points, *COLUMNS[1:]]
    if not c.table.diverged_seeds.any():
        header, rows = header[:-1], [row[:-1] for row in rows]
    return laid_out(header, rows, width, [["to acc"], ["to acc", "to loss"]], RIGHT)


def _cells(row: dict, points: list[str]) -> list[str]:
    """variant, sweep values, then COLUMNS[1:]."""
    acc = number(row[col("test_acc", "mean")], 2)
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
    ranked = by_rank(row, "test_acc")
    if not row["pairs"] and not ranked:
        return [row["variant"], *(str(row[p]) for p in points), acc, "no pairs", "", "", "", "", diverged]
    delta = f"{row[col('test_acc', 'delta')]:+.2f}"
    low, high = row[col("test_acc", "ci_low")], row[col("test_acc", "ci_high")]
    if not math.isnan(low):
        delta += f" [{low:+.2f}, {high:+.2f}]"
    wins = f"{row[col('test_acc', 'wins')]}/{row['pairs']}"
    if ranked:
        delta, wins = RANKED, f"{row[col('test_acc', 'ranked_wins')]}/{row[col('test_acc', 'ranked')]}"
    return [
        row["variant"],
        *(str(row[p]) for p in points),
        acc,
        delta,
        format_p(row[col("test_acc", "p_holm")]),
        wins,
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
    if path == "variants" and all(isinstance(v, dict) and "name" in v for v in value):  # each variant by name
        value = {v["name"]: {key: item for key, item in v.items() if key != "name"} for v in value}
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{path}.{key}" if path else key).items()}
    return {path: value}
