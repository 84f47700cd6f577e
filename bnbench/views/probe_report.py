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
    lines = wrap(f"{s.run_dir}: {caption(s)}", width)
    for point, header, rows in tables(s):
        if point:
            lines += [""] + wrap(point, width)
        start, n = 2 + len(s.variants), len(_others(s))  # after layer, step and the means
        deltas, intervals = header[start : start + n], header[start + n :]
        laid, _ = laid_out(header, rows, width, [intervals, deltas], {"step", *s.variants, *deltas})
        lines += ["", *laid]
    return "\n".join(lines) + "\n"


def caption(s: ProbeSummary) -> str:
    """What the probe tables hold (the terminal's first line and the HTML report's caption)."""
    others = _others(s)
    return (
        f"probes (bnbench.engines.probes) at the first, middle and last probe step; mean over {s.seeds} seeds; "
        f"Δ: {' or '.join(others) or s.baseline} - {s.baseline}, paired by seed, with its {CONFIDENCE:.0%} "
        f"t-interval (CI)"
    )


def tables(s: ProbeSummary) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per sweep point ('lr=0.1', '' without a sweep): the header and rows of its probe table, cells as text (shared
    by the terminal and the HTML report, so the two show the same numbers)."""
    others = _others(s)
    deltas = [f"Δ {v}" if len(others) > 1 else "Δ" for v in others]
    intervals = [f"CI {v}" if len(others) > 1 else "CI" for v in others]
    header = ["layer / measure", "step", *s.variants, *deltas, *intervals]
    table = s.table
    points = table[s.sweep].drop_duplicates().to_dict("records") if s.sweep else [{}]
    out = []
    for point in points:
        rows = table[(table[list(point)] == pd.Series(point)).all(axis=1)] if point else table
        out.append((", ".join(f"{k}={v}" for k, v in point.items()), header, _rows(rows, s.variants, others)))
    return out


def _others(s: ProbeSummary) -> list[str]:
    return [v for v in s.variants if v != s.baseline]


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
