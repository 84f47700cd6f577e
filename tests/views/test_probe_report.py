"""bnbench.views.probe_report: `compare --probes` as text from a hand-made probe summary (the plain data
`analysis.probes` gives): a line per layer, then per measure and step each variant's mean and the paired
difference with its interval; in a narrow terminal the intervals go first; a sweep point a block."""

import math
from pathlib import Path

import pandas as pd

from bnbench.analysis.probes import ProbeSummary
from bnbench.views.probe_report import probes_output

NAN = math.nan
ROWS = [  # layer, measure, step, variant, mean, diff, ci_low, ci_high
    ("model", "beta_smoothness", 10, "plain", 12.5, NAN, NAN, NAN),
    ("model", "beta_smoothness", 10, "batchnorm", 3.25, -9.25, -12.0, -6.5),
    ("fc1", "grad_norm", 10, "plain", 0.51234, NAN, NAN, NAN),
    ("fc1", "grad_norm", 10, "batchnorm", 0.2345, -0.27784, -0.31, -0.24),
    ("fc1", "grad_norm", 50, "plain", 0.4, NAN, NAN, NAN),
    ("fc1", "grad_norm", 50, "batchnorm", 0.123, -0.277, NAN, NAN),
]
NAMES = ["layer", "measure", "step", "variant", "mean", "diff", "ci_low", "ci_high"]


def summary(sweep: dict = None) -> ProbeSummary:
    """Two seeds of plain (the baseline) and batchnorm; with `sweep` ({path: values}), the rows at each value."""
    rows = [dict(zip(NAMES, r)) | {"seeds": 2, "pairs": 2} for r in ROWS]
    paths = list(sweep or {})
    if sweep:
        rows = [r | {path: value} for path, values in sweep.items() for value in values for r in rows]
    return ProbeSummary(
        Path("results/toy/1"), "plain", ["plain", "batchnorm"], paths, 2, pd.DataFrame(), pd.DataFrame(rows)
    )


TABLE = [
    "layer / measure   step  plain  batchnorm       Δ  CI",
    "fc1",
    " grad_norm          10  0.512      0.234  -0.278  [-0.31, -0.24]",
    "                    50    0.4      0.123  -0.277",
    "model",
    " beta_smoothness    10   12.5       3.25   -9.25  [-12, -6.5]",
]


def test_at_120_and_80_columns_every_column():
    assert probes_output([summary()], 120).splitlines() == [
        "results/toy/1: probes (bnbench.engines.probes) at the first, middle and last probe step; mean over 2 seeds; "
        "Δ: batchnorm",
        "- plain, paired by seed, with its 95% t-interval (CI)",
        "",
        *TABLE,
    ]
    assert probes_output([summary()], 80) == "\n".join(
        [
            "results/toy/1: probes (bnbench.engines.probes) at the first, middle and last",
            "probe step; mean over 2 seeds; Δ: batchnorm - plain, paired by seed, with its",
            "95% t-interval (CI)",
            "",
            *TABLE,
            "",
        ]
    )


def test_at_60_columns_the_intervals_go_first():
    assert probes_output([summary()], 60).splitlines()[3:] == [
        "",
        "layer / measure   step  plain  batchnorm       Δ",
        "fc1",
        " grad_norm          10  0.512      0.234  -0.278",
        "                    50    0.4      0.123  -0.277",
        "model",
        " beta_smoothness    10   12.5       3.25   -9.25",
    ]


def test_at_30_columns_a_record_per_row():
    assert probes_output([summary()], 30).splitlines()[8:] == [
        "layer / measure: fc1",
        "layer / measure: grad_norm ·",
        "  step: 10 · plain: 0.512 ·",
        "  batchnorm: 0.234 ·",
        "  Δ: -0.278 ·",
        "  CI: [-0.31, -0.24]",
        "step: 50 · plain: 0.4 ·",
        "  batchnorm: 0.123 · Δ: -0.277",
        "layer / measure: model",
        "layer / measure:",
        "  beta_smoothness · step: 10 ·",
        "  plain: 12.5 ·",
        "  batchnorm: 3.25 · Δ: -9.25 ·",
        "  CI: [-12, -6.5]",
    ]


def test_a_sweep_point_a_block_and_runs_one_after_another():
    lines = probes_output([summary({"optimizer.lr": [0.001, 0.1]}), summary()], None).splitlines()
    assert lines[1:4] + lines[10:13] == ["", "optimizer.lr=0.001", "", "", "optimizer.lr=0.1", ""]
    assert lines[4:10] == lines[13:19] == lines[22:] == TABLE
    assert lines[19:22] == ["", lines[0], ""]
