"""bnbench.views.compare_text: `bnbench compare`'s text from a hand-made comparison (a two-row table as
`analysis.summary` declares it, no run folder, no training): the full grid boxed where it fits and as records
where it does not, at 60, 80 and 120 columns; the cells of a metric, a speedup and a variant; the loss windows;
which format goes where; the one-line refusals."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bnbench.analysis.columns import COLUMNS, COUNTS, of_validation
from bnbench.errors import BnbenchError
from bnbench.views import compare_text
from bnbench.views.compare_text import _metric_cell, _steps_cell, _variant_cell, comparison_output

VERDICT = "batchnorm vs plain: better test acc +6.17 pts [+4.84, +7.49], 3/3 seeds (Holm p=0.0042)"


def row(variant: str, baseline: bool, **values) -> dict:
    """A table row: every declared column of a run without a validation split empty (NaN, or '' for text), then
    what the test gives."""
    blank = {c: np.nan for c in COLUMNS if not of_validation(c)}
    blank |= {c: "" for c in COLUMNS if c.endswith(("_note", "_estimator", "_unit")) and not of_validation(c)}
    common = {
        "variant": variant,
        "baseline": baseline,
        "seeds": 3,
        "trials": 3,
        "diverged_seeds": 0,
        "diverged": "",
        "missing": "",
        "epoch": 1,
        "epochs": 1,
        "smoothing": 10,
        "verdict": None,
        "test": "t",
    }
    return blank | common | values


def stats(measure: str, **values) -> dict:
    """A measure's columns: stats("steps", at=240.0) -> {"steps_at": 240.0}."""
    return {f"{measure}_{stat}": value for stat, value in values.items()}


PLAIN = row(
    "plain",
    True,
    pairs=None,
    **stats("test_acc", mean=85.333, std=2.0),
    **stats("steps", pairs=3, at=240.0, speedup=1.0, speedup_high=1.0, unit="steps"),
)
BATCHNORM = row(
    "batchnorm",
    False,
    pairs=3,
    verdict=VERDICT,
    **stats("test_acc", mean=91.5, std=1.25, delta=6.17, ci_low=4.84, ci_high=7.49, wins=3),
    **stats("test_acc", p_t=0.0021, p_exact=0.25, p=0.0021, p_holm=0.0042, tests=2),
    **stats("steps", speedup=1.98, speedup_high=1.98, estimator="geometric mean", pairs=3, at=121.0, reached=3),
    **stats("steps", unit="steps", ci_low=1.5, ci_high=2.6, p_t=0.01, p_exact=0.25, p=0.01, p_holm=0.02, tests=2),
)
WINDOWS = pd.DataFrame(
    {
        "variant": ["plain", "plain", "batchnorm", "batchnorm"],
        "epoch": 1,
        "smoothing": 10,
        "mini_batch": [10, 20, 10, 20],
        "loss_mean": [2.1, 1.9, 1.5, 0.9],
        "loss_std": [0.1, 0.05, 0.2, 0.1],
        "seeds": 3,
    }
)


def toy(*rows: dict) -> SimpleNamespace:
    """What the views read of a `Comparison`: its table (counts as nullable integers, as the summary types
    them), title, baseline, notes, windows and the config's evaluation interval."""
    table = pd.DataFrame(list(rows or (PLAIN, BATCHNORM)))
    table = table.astype({c: "Int64" for c in COUNTS if c in table})
    results = SimpleNamespace(
        notes=("seeds pooled from 2 runs",),
        runs="results/toy/1",
        status="complete",
        config=SimpleNamespace(training=SimpleNamespace(eval_every=50)),
    )
    return SimpleNamespace(
        title="toy · digits, mlp [8] · run 1",
        name="toy",
        points=[],
        baseline="plain",
        decided=[],
        table=table,
        verdicts=[v for v in table.verdict if isinstance(v, str)],
        epochs_compared=", ".join(dict.fromkeys(f"{e} of {n}" for e, n in zip(table.epoch, table.epochs))),
        results=results,
        windows=WINDOWS,
    )


HEAD = [
    "toy · digits, mlp [8] · run 1",
    "note: seeds pooled from 2 runs",
    VERDICT,
]
BOXED = """\
┏━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ variant    ┃ seeds ┃ final test acc %                          ┃ steps to plain's half-run loss        ┃
┡━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ plain      │ 3     │ 85.33 ± 2.00                              │ 1.00× (reference)                     │
│ (baseline) │       │                                           │ step 240                              │
├────────────┼───────┼───────────────────────────────────────────┼───────────────────────────────────────┤
│ batchnorm  │ 3     │ 91.50 ± 1.25                              │ 1.98×                                 │
│            │       │ Δ +6.17 (3 pairs)                         │ [1.50, 2.60]                          │
│            │       │ [+4.84, +7.49]                            │ t p=0.01, exact p=0.25, Holm 0.02 (2) │
│            │       │ t p=0.0021, exact p=0.25, Holm 0.0042 (2) │ reached 3/3                           │
│            │       │ wins 3/3                                  │ step 121                              │
└────────────┴───────┴───────────────────────────────────────────┴───────────────────────────────────────┘"""
EIGHTY = """\
toy · digits, mlp [8] · run 1
note: seeds pooled from 2 runs
batchnorm vs plain: better test acc +6.17 pts [+4.84, +7.49], 3/3 seeds
  (Holm p=0.0042)

plain (baseline)
  seeds: 3
  final test acc %: 85.33 ± 2.00
  steps to plain's half-run loss: 1.00× (reference) · step 240

batchnorm
  seeds: 3
  final test acc %: 91.50 ± 1.25 · Δ +6.17 (3 pairs) · [+4.84, +7.49] ·
    t p=0.0021, exact p=0.25, Holm 0.0042 (2) · wins 3/3
  steps to plain's half-run loss: 1.98× · [1.50, 2.60] ·
    t p=0.01, exact p=0.25, Holm 0.02 (2) · reached 3/3 · step 121

Mean ± std over seeds at epoch 1 of 1. Δ = variant − plain on the same seed (n
pairs: seeds where neither diverged), its 95% interval (the hull of the
t-interval and the skew-corrected one), the paired t-test p
(assumes normal differences), the skew-corrected t-test p (Hall 1992), the exact
sign-flip p (assumes symmetric differences; above 16 pairs estimated from 2¹⁶
random sign flips), and the Holm-adjusted p the decision uses (under --test t
the larger of the two t-tests'; family size in brackets: test acc, both speedups
and divergence form one family over the run's comparisons, each other metric its
own), seeds won; where no difference is shown, the difference these pairs could
detect with 80% power. Steps to target: the target is the mean level of plain's
curves at half their run (training loss: mean of the last 10 batches; test acc:
evaluated every 50 steps in eval mode); speedup = plain's steps ÷ the variant's.
When every seed reached it: the geometric mean with a t-interval on log ratios
(a range where crossings are known only between two evaluations, tested on the
end least favourable to the claim); when some did not within their own run: the
median with a distribution-free interval and the sign test; step = mean step of
the seeds that reached it. A speedup the measured points bound only within more
than 10× is written by its end that holds (≥, ≤), or as not measurable, and its
interval is left out, as is one spanning more than 100×.
"""
SIXTY_RECORDS = """\
batchnorm
  seeds: 3
  final test acc %: 91.50 ± 1.25 · Δ +6.17 (3 pairs) ·
    [+4.84, +7.49] ·
    t p=0.0021, exact p=0.25, Holm 0.0042 (2) · wins 3/3
  steps to plain's half-run loss: 1.98× · [1.50, 2.60] ·
    t p=0.01, exact p=0.25, Holm 0.02 (2) · reached 3/3 ·
    step 121
"""


def full(width, metrics=("test_acc", "steps")) -> str:
    return comparison_output([toy()], "table", list(metrics), width=width, full=True)


def test_the_full_grid_is_boxed_where_it_fits():
    lines = full(120).splitlines()
    assert lines[:3] == HEAD
    assert "\n".join(lines[3:15]) == BOXED
    assert lines[15].startswith("Mean ± std over seeds at epoch 1 of 1. Δ = variant − plain on the same seed")
    assert max(map(len, lines)) == 120


def test_the_full_grid_reads_as_records_where_it_does_not():
    assert full(80) == EIGHTY
    sixty = full(60)
    assert sixty.startswith(
        "toy · digits, mlp [8] · run 1\nnote: seeds pooled from 2 runs\nbatchnorm vs plain: better test acc +6.17 pts\n"
        "  [+4.84, +7.49], 3/3 seeds (Holm p=0.0042)\n\nplain (baseline)\n"
    )
    assert SIXTY_RECORDS in sixty
    assert max(map(len, sixty.splitlines())) <= 60


def test_without_a_terminal_the_grid_is_boxed_at_its_natural_width():
    lines = full(None).splitlines()
    assert "\n".join(lines[3:15]) == BOXED
    assert len(lines) == 16  # the caption unwrapped


def test_every_statistic_names_each_metric_in_the_default_order():
    header = full(None, ()).splitlines()[4]
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert names == [
        "variant",
        "seeds",
        "final train loss",
        "final test loss",
        "final test acc %",
        "best test acc % (optimistic)",
        "steps to plain's half-run loss",
        "steps to plain's half-run test acc",
        "seconds per trial",
    ]


def test_the_loss_windows_at_80_columns():
    assert comparison_output([toy()], windows=True, width=80) == (
        "toy · digits, mlp [8] · run 1 · epoch 1\n"
        "note: seeds pooled from 2 runs\n"
        "┏━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓\n"
        "┃ mini-batch ┃ plain           ┃ batchnorm       ┃\n"
        "┡━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩\n"
        "│ 10         │ 2.1000 ± 0.1000 │ 1.5000 ± 0.2000 │\n"
        "│ 20         │ 1.9000 ± 0.0500 │ 0.9000 ± 0.1000 │\n"
        "└────────────┴─────────────────┴─────────────────┘\n"
        "Mean loss of each 10 mini-batches of epoch 1 (the tutorial's \"Loss after\n"
        'mini-batch N" lines), mean ± std over seeds.\n'
    )


def test_the_metric_cell_says_what_is_missing_and_what_could_be_detected():
    assert _metric_cell(PLAIN | {"seeds": 0}, "test_acc") == ["no results"]
    assert _metric_cell(PLAIN | {"seeds": 0, "diverged": "seed 0 diverged at step 9"}, "test_acc") == [
        "all seeds diverged"
    ]
    assert _metric_cell(BATCHNORM | {"pairs": 0}, "test_acc") == ["91.50 ± 1.25", "Δ: no paired seed"]
    undecided = BATCHNORM | {
        "test_acc_p_holm": 0.3,
        "test_acc_detectable": 9.5,
        "test_acc_needed": 12,
        "test_acc_wins": 1,
    }
    assert _metric_cell(undecided | {"seeds": 1, "pairs": 1}, "test_acc") == [
        "91.50",
        "Δ +6.17 (1 pair)",
        "[+4.84, +7.49]",
        "t p=0.0021, exact p=0.25, Holm 0.3 (2)",
        "wins 1/1",
        "could detect ≥ 9.50",
        "--effect needs ~12 seeds",
    ]
    assert _metric_cell(undecided | {"test_acc_detectable": np.inf}, "test_acc")[-2] == "exact test cannot decide"
    assert _metric_cell(BATCHNORM | {"seconds_mean": 2.5, "seconds_std": 0.25, "seconds_delta": -0.5}, "seconds") == [
        "2.50 ± 0.25",
        "Δ -0.50 (3 pairs)",
    ]


def test_the_speed_cell_reference_na_and_examples():
    assert _steps_cell(PLAIN, "steps") == ["1.00× (reference)", "step 240"]
    assert _steps_cell(BATCHNORM | {"steps_pairs": 0, "steps_note": "no target on 3 seeds: x"}, "steps") == [
        "n/a",
        "no target on 3 seeds: x",
    ]
    assert _steps_cell(BATCHNORM | {"steps_speedup": np.nan}, "steps") == ["n/a"]
    assert _steps_cell(BATCHNORM | {"steps_unit": "examples", "steps_at": np.nan}, "steps")[-2:] == [
        "reached 3/3",
        "in examples seen",
    ]


def test_the_variant_cell_names_diverged_and_missing_seeds():
    diverged = BATCHNORM | {
        "diverged_seeds": 1,
        "diverged": "seed 2 diverged at step 40",
        "diverged_p": 1.0,
        "diverged_p_holm": 1.0,
        "missing": "4",
    }
    assert _variant_cell(diverged) == [
        "batchnorm",
        "diverged 1/3 seeds",
        "seed 2 diverged at step 40",
        "vs baseline: exact p=1, Holm 1",
        "no results yet: seed 4",
    ]
    assert _variant_cell(PLAIN) == ["plain", "(baseline)"]


def test_the_default_table_is_the_glance_and_exports_take_the_grid(monkeypatch):
    monkeypatch.setattr(compare_text, "glance", lambda comparisons, width, every: f"glance {width} {every}\n")
    assert comparison_output([toy()], width=72, every=True) == "glance 72 True\n"
    markdown = comparison_output([toy()], "markdown", ["test_acc"])
    assert markdown.splitlines()[:8] == [
        "### toy · digits, mlp [8] · run 1",
        "",
        "- note: seeds pooled from 2 runs",
        f"- {VERDICT}",
        "",
        "| variant | seeds | final test acc % |",
        "|---|---|---|",
        "| plain<br>(baseline) | 3 | 85.33 ± 2.00 |",
    ]
    latex = comparison_output([toy(), toy()], "latex", ["test_acc"])
    assert latex.count(r"\begin{tabular}{lll}") == 2 and latex.startswith("% toy · digits, mlp [8] · run 1\n")


def test_csv_keeps_the_chosen_metrics_columns_only():
    header = comparison_output([toy()], "csv", ["test_acc"]).splitlines()[0].split(",")
    assert "test_acc_p_holm" in header and "best_epoch" not in header
    others = ("train_loss", "test_loss", "best_acc", "steps_", "seconds")
    assert [c for c in header if c.startswith(others)] == ["steps_total"]  # a row's own count, not a metric's
    windows = comparison_output([toy()], "csv", windows=True).splitlines()
    assert windows[:2] == [
        "experiment,run,status,notes,variant,epoch,smoothing,mini_batch,loss_mean,loss_std,seeds",
        "toy,results/toy/1,complete,seeds pooled from 2 runs,plain,1,10,10,2.1,0.1,3",
    ]


@pytest.mark.parametrize(
    "fmt, metrics, windows, per_seed, message",
    [
        (
            "yaml",
            [],
            False,
            False,
            "--format yaml: unknown format; choose one of table, markdown, csv, json, latex, html",
        ),
        (
            "table",
            ["speed"],
            False,
            False,
            "--metric speed: unknown metric; choose from train_loss, test_loss, "
            "test_acc, val_loss, val_acc, best_acc, steps, steps_acc, seconds",
        ),
        (
            "table",
            [],
            False,
            True,
            "--per-seed: --format table has no rows per seed; use --format csv or --format json without --windows",
        ),
        (
            "csv",
            [],
            True,
            True,
            "--per-seed: --windows has no rows per seed; use --format csv or --format json without --windows",
        ),
    ],
)
def test_refusals_are_one_line(fmt, metrics, windows, per_seed, message):
    with pytest.raises(BnbenchError) as refused:
        comparison_output([toy()], fmt, metrics, windows, per_seed=per_seed)
    assert str(refused.value) == message


def test_the_exact_test_is_said_to_assume_symmetric_differences():
    """The sign-flip test holds its level only where the differences are symmetric about 0 under no effect
    (skewed zero-mean differences reject 7-15% of the time at n = 10): the columns' meanings (csv and json
    exports, the legend) and `--test`'s help say so, never that it assumes nothing. (The caption is checked
    whole in the records test above.)"""
    from typer.testing import CliRunner

    from bnbench.cli import app

    flips = [meaning for meaning in COLUMNS.values() if "sign-flip (permutation) p" in meaning]
    assert len(flips) == 6 and all(meaning.endswith("(assumes symmetric differences)") for meaning in flips)
    helped = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert helped.exit_code == 0
    assert "sign-flip: assumes symmetric differences" in " ".join(helped.output.split())
    assert "assumes nothing" not in helped.output
