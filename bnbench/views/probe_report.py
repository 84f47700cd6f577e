"""`bnbench compare --probes` as text: per run (and sweep point), a table of layer, measure and probe step, each
variant's mean over seeds, and each other variant's paired difference from the baseline with its t-interval, in
the terminal's width (`layout.laid_out`: the intervals go first, then a record per row)."""

import math
from typing import Optional

import pandas as pd

from bnbench.analysis.inference import CONFIDENCE
from bnbench.analysis.probes import ProbeSummary
from bnbench.views.layout import laid_out, wrap


def probes_output(summaries: list[ProbeSummary], width: Optional[int]) -> str:
    return "\n".join(_block(s, width) for s in summaries)


def _block(s: ProbeSummary, width: Optional[int]) -> str:
    others = [v for v in s.variants if v != s.baseline]
    lines = wrap(
        f"{s.run_dir}: probes (bnbench.engines.probes) at the first, middle and last probe step; mean over {s.seeds} "
        f"seeds; Δ: {' or '.join(others) or s.baseline} - {s.baseline}, paired by seed, with its {CONFIDENCE:.0%} "
        f"t-interval (CI)",
        width,
    )
    table = s.table
    points = table[s.sweep].drop_duplicates().to_dict("records") if s.sweep else [{}]
    for point in points:
        rows = table[(table[list(point)] == pd.Series(point)).all(axis=1)] if point else table
        if point:
            lines += [""] + wrap(", ".join(f"{k}={v}" for k, v in point.items()), width)
        deltas = [f"Δ {v}" if len(others) > 1 else "Δ" for v in others]
        intervals = [f"CI {v}" if len(others) > 1 else "CI" for v in others]
        header = ["layer / measure", "step", *s.variants, *deltas, *intervals]
        laid, _ = laid_out(
            header, _rows(rows, s.variants, others), width, [intervals, deltas], {"step", *s.variants, *deltas}
        )
        lines += ["", *laid]
    return "\n".join(lines) + "\n"


def _rows(table: pd.DataFrame, variants: list[str], others: list[str]) -> list[list[str]]:
    """A line per layer, then one per measure and step under it (the measure named on its first step's line)."""
    layers = list(dict.fromkeys([*(x for x in table.layer if x != "model"), "model"]))
    table = table.assign(order=table.layer.map(layers.index)).sort_values("order", kind="stable")
    out, previous = [], (None, None)
    blank = [""] * (1 + len(variants) + 2 * len(others))
    for (layer, measure, step), group in table.groupby(["layer", "measure", "step"], sort=False):
        if layer != previous[0]:
            out.append([layer, *blank])
        by = group.set_index("variant")
        means = [_num(by["mean"].get(v, math.nan)) for v in variants]
        diffs = [by.loc[v] if v in by.index else None for v in others]
        name = " " + measure if (layer, measure) != previous else ""
        out.append([name, str(step), *means, *(_num(d["diff"], "+") for d in diffs), *map(_interval, diffs)])
        previous = (layer, measure)
    return out


def _num(x, sign: str = "") -> str:
    return "" if x is None or math.isnan(x) else f"{x:{sign}.3g}"


def _interval(row: Optional[pd.Series]) -> str:
    if row is None or math.isnan(row["ci_low"]):
        return ""
    return f"[{row['ci_low']:+.2g}, {row['ci_high']:+.2g}]"
