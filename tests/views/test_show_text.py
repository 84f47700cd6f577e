"""bnbench.views.show_text: `bnbench show RUN` as text, from a hand-made summary (the plain data `analysis.show`
gives): the lead lines wrapped at "; " and spaces, the trials in columns while they fit (steps, seconds, test loss
left out in that order, and the caption says so), records below that, and exact text at 60, 80 and 120 columns."""

import json

import pytest

from bnbench.errors import BnbenchError
from bnbench.views.show_text import show_output

TRIALS = [
    {
        "variant": "batchnorm",
        "seed": 0,
        "status": "complete",
        "epochs": 2,
        "epochs_total": 2,
        "steps": 288,
        "seconds": 1.234,
        "train_loss": 0.51234,
        "test_loss": 0.43219,
        "test_acc": 91.6667,
    },
    {
        "variant": "plain",
        "seed": 0,
        "status": "running",
        "epochs": 1,
        "epochs_total": 2,
        "steps": 150,
        "seconds": 0.5,
        "train_loss": 1.2,
        "test_loss": None,
        "test_acc": None,
    },
]
PARTIAL = {
    "run": "results/quick-digits/20261206-170053",
    "experiment": "quick-digits",
    "status": "partial",
    "started": "2026-12-06T17:00:53+0000",
    "ended": None,
    "resumed": ["2026-12-06T17:05:00+0000"],
    "engine": "eager",
    "device": "cpu",
    "device_name": "x86_64",
    "source": "configs/quick.yaml",
    "overrides": "--set training.epochs=2",
    "tags": ["smoke", "cpu"],
    "note": "first try",
    "checkpoints": "last",
    "from_source": ["training.epochs: 5 -> 2"],
    "source_state": "unchanged",
    "edited": [],
    "trials": TRIALS,
    "verdicts": [],
    "problem": "plain: seed 0 has no finished epoch 2 yet",
    "damage": None,
    "next": "bnbench run --resume results/quick-digits/20261206-170053",
}
SWEPT = PARTIAL | {
    "trials": [t | {"optimizer.lr": 0.001} for t in TRIALS],
    "status": "complete",
    "resumed": [],
    "ended": "2026-12-06T17:09:00+0000",
    "tags": [],
    "note": "",
    "problem": None,
    "next": None,
    "verdicts": ["batchnorm @ optimizer.lr=0.001 vs plain: better test acc +14.39 pts [+10.09, +18.69], 5/5 seeds"],
    "edited": ["training.epochs: 2 -> 3"],
    "source": None,
    "overrides": "",
    "from_source": [],
}
TITLE = "quick-digits · run results/quick-digits/20261206-170053\n"
SAME = """\
engine: eager · device: cpu (x86_64)
checkpoints: last
config: configs/quick.yaml: unchanged
overrides: --set training.epochs=2
differs from the config file: training.epochs: 5 -> 2
tags: smoke, cpu · note: first try
cannot compare: plain: seed 0 has no finished epoch 2 yet
"""  # the lead lines short enough for 60 columns
LEAD = (
    TITLE
    + "status: partial (started 2026-12-06T17:00:53+0000, resumed 1×)\n"
    + SAME
    + "continue with: bnbench run --resume results/quick-digits/20261206-170053\n\n"
)
WIDE = (
    LEAD
    + """\
variant    seed  status    epochs  steps  seconds  train loss  test loss  test acc %
batchnorm     0  complete     2/2    288      1.2      0.5123     0.4322       91.67
plain         0  running      1/2    150      0.5      1.2000          -           -
Per trial: epochs finished of configured, steps, wall seconds, and the numbers of its last finished epoch (train loss:
mean mini-batch loss of that epoch; test: in eval mode).
"""
)
EIGHTY = (
    LEAD
    + """\
variant    seed  status    epochs  seconds  train loss  test loss  test acc %
batchnorm     0  complete     2/2      1.2      0.5123     0.4322       91.67
plain         0  running      1/2      0.5      1.2000          -           -
Per trial: epochs finished of configured, wall seconds, and the numbers of its
last finished epoch (train loss: mean mini-batch loss of that epoch; test: in
eval mode). Left out at this width: steps (--format json has them).
"""
)
SIXTY = (
    TITLE
    + "status: partial (started 2026-12-06T17:00:53+0000, resumed\n  1×)\n"
    + SAME
    + "continue with: bnbench run --resume\n  results/quick-digits/20261206-170053\n\n"
    + """\
variant    seed  status    epochs  train loss  test acc %
batchnorm     0  complete     2/2      0.5123       91.67
plain         0  running      1/2      1.2000           -
Per trial: epochs finished of configured, and the numbers of
its last finished epoch (train loss: mean mini-batch loss of
that epoch; test: in eval mode). Left out at this width:
steps, seconds, test loss (--format json has them).
"""
)


@pytest.mark.parametrize("width, expected", [(120, WIDE), (80, EIGHTY), (60, SIXTY)])
def test_a_partial_run_at_a_width(width, expected):
    printed = show_output(PARTIAL, "table", width)
    assert printed == expected
    assert all(len(line) <= width for line in printed.splitlines())


def test_a_sweep_gets_its_column_and_records_where_the_columns_cannot_fit():
    assert show_output(SWEPT, "table", 60) == (
        """\
quick-digits · run results/quick-digits/20261206-170053
status: complete (started 2026-12-06T17:00:53+0000, ended
  2026-12-06T17:09:00+0000)
engine: eager · device: cpu (x86_64)
checkpoints: last
config: (not recorded): unchanged
overrides: (none)
differs from the config file: nowhere
config.yaml edited since the run began: training.epochs: 2
  -> 3 (as started -> as now)
verdict: batchnorm @ optimizer.lr=0.001 vs plain: better
  test acc +14.39 pts [+10.09, +18.69], 5/5 seeds

variant: batchnorm · seed: 0 · optimizer.lr: 0.001 ·
  status: complete · epochs: 2/2 · steps: 288 ·
  seconds: 1.2 · train loss: 0.5123 · test loss: 0.4322 ·
  test acc %: 91.67
variant: plain · seed: 0 · optimizer.lr: 0.001 ·
  status: running · epochs: 1/2 · steps: 150 ·
  seconds: 0.5 · train loss: 1.2000 · test loss: - ·
  test acc %: -
Per trial: epochs finished of configured, steps, wall
seconds, and the numbers of its last finished epoch (train
loss: mean mini-batch loss of that epoch; test: in eval
mode).
"""
    )
    assert show_output(SWEPT, "table", 120).splitlines()[10:13] == [
        "variant    seed  optimizer.lr  status    epochs  steps  seconds  train loss  test loss  test acc %",
        "batchnorm     0  0.001         complete     2/2    288      1.2      0.5123     0.4322       91.67",
        "plain         0  0.001         running      1/2    150      0.5      1.2000          -           -",
    ]


def test_a_damaged_run_without_readable_rows_says_repair_and_none_readable():
    damaged = PARTIAL | {
        "trials": [],
        "status": "complete",
        "damage": "batches.csv: line 7 has 3 fields",
        "engine": None,
        "next": "bnbench run --resume x",
    }
    lines = show_output(damaged, "table", 80).splitlines()
    assert lines[1:4] + lines[-2:] == [
        "status: complete, damaged: batches.csv: line 7 has 3 fields (started",
        "  2026-12-06T17:00:53+0000, resumed 1×)",
        "engine: ? · device: cpu (x86_64)",
        "repair with: bnbench run --resume x",
        "trials: none readable",
    ]


def test_json_is_the_summary_as_it_is():
    printed = show_output(PARTIAL, "json", 80)
    assert json.loads(printed) == PARTIAL
    assert printed == json.dumps(PARTIAL, indent=2) + "\n"


def test_an_unknown_format_is_one_line():
    with pytest.raises(BnbenchError, match=r"^--format csv: unknown format; choose table or json$"):
        show_output(PARTIAL, "csv", 80)
