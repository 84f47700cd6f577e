"""bnbench.views.list_text: `bnbench list` as text, from hand-made catalog rows (no run folders, no training):
exact lines at 60, 80 and 120 columns (the least needed columns left out, the last cut at the edge, a line naming
what was left out), unreadable entries under their list, and the json with every field."""

import json
from pathlib import Path

import pytest

from bnbench.errors import BnbenchError
from bnbench.views import list_text

CONFIGS = [
    {
        "file": "quick.yaml",
        "name": "quick-digits",
        "dataset": "digits",
        "model": "mlp [64, 32]",
        "variants": "batchnorm, plain",
        "seeds": "0, 1, 2, 3, 4",
        "epochs": 5,
        "sweep": "",
        "trials": 10,
    },
    {
        "file": "lr.yaml",
        "name": "lr-cifar10",
        "dataset": "cifar10",
        "model": "mlp [64, 32]",
        "variants": "batchnorm, plain",
        "seeds": "1, 2, 3, 4, 5",
        "epochs": 3,
        "sweep": "optimizer.lr x4",
        "trials": 40,
    },
    {"file": "broken.yaml", "error": "broken.yaml: seeds: expected a list; write seeds: [0, 1]"},
]
COMPLETE = {
    "name": "quick-digits",
    "run": "20261206-170053",
    "path": "results/quick-digits/20261206-170053",
    "started": "2026-12-06T17:00:53+0000",
    "status": "complete",
    "trials": "10/10",
    "seeds": "0, 1, 2, 3, 4",
    "epochs": 5,
    "overrides": "--set training.epochs=5",
    "device": "cpu (x86_64)",
    "tags": ["smoke"],
    "note": "",
}
PARTIAL = COMPLETE | {
    "run": "20261205-090000",
    "path": "results/quick-digits/20261205-090000",
    "started": "2026-12-05T09:00:00+0000",
    "status": "partial",
    "trials": "3/10",
    "seeds": "0, 1, 3",
    "epochs": "?",
    "overrides": "",
    "device": "cuda:0 (NVIDIA H100)",
    "tags": [],
}
DAMAGED = {"run": "results/quick-digits/bad", "error": "meta.json: not JSON; remove the folder (bnbench rm)"}


@pytest.fixture
def catalog(monkeypatch):
    """The rows `list` shows, as `analysis.catalog` and `analysis.answers` would give them; returns the runs' list
    to change."""
    runs = [COMPLETE, PARTIAL, DAMAGED]
    monkeypatch.setattr(list_text, "config_rows", lambda folder: CONFIGS)
    monkeypatch.setattr(
        list_text, "run_rows", lambda results, tags=(): [r for r in runs if set(tags) <= set(r.get("tags", []))]
    )
    monkeypatch.setattr(list_text, "answers", lambda results, done: ["batchnorm better"] * len(done))
    return runs


WIDE = """\
Configs
config  name          data     model         seeds  epochs  sweep            trials  variants
quick   quick-digits  digits   mlp [64, 32]  0-4         5                       10  batchnorm, plain
lr      lr-cifar10    cifar10  mlp [64, 32]  1-5         3  optimizer.lr x4      40  batchnorm, plain
broken.yaml: broken.yaml: seeds: expected a list; write seeds: [0, 1]

Runs under results
run                           status    trials  seeds  epochs  verdict           device  tags   options
quick-digits/20261206-170053  complete   10/10  0-4         5  batchnorm better  cpu     smoke  --set training.epochs=5
quick-digits/20261205-090000  partial     3/10  0,1,3       ?  —                 cuda:0
Left out at this width: started (see bnbench show RUN).
results/quick-digits/bad: meta.json: not JSON; remove the folder (bnbench rm)
"""
EIGHTY = """\
Configs
config  data     model         seeds  epochs  trials  variants
quick   digits   mlp [64, 32]  0-4         5      10  batchnorm, plain
lr      cifar10  mlp [64, 32]  1-5         3      40  batchnorm, plain
broken.yaml: broken.yaml: seeds: expected a list; write seeds: [0, 1]

Runs under results
run                           status    seeds  epochs  verdict           tags
quick-digits/20261206-170053  complete  0-4         5  batchnorm better  smoke
quick-digits/20261205-090000  partial   0,1,3       ?  —
Left out at this width: trials, started, device, options (see bnbench show RUN).
results/quick-digits/bad: meta.json: not JSON; remove the folder (bnbench rm)
"""
SIXTY = """\
Configs
config  data     model         trials  variants
quick   digits   mlp [64, 32]      10  batchnorm, plain
lr      cifar10  mlp [64, 32]      40  batchnorm, plain
broken.yaml: broken.yaml: seeds: expected a list; write
  seeds: [0, 1]

Runs under results
run                           status    epochs  verdict    …
quick-digits/20261206-170053  complete       5  batchnorm b…
quick-digits/20261205-090000  partial        ?  —
Left out at this width: trials, seeds, started, device,
options (see bnbench show RUN).
results/quick-digits/bad: meta.json: not JSON; remove the
  folder (bnbench rm)
"""


@pytest.mark.parametrize("width, expected", [(120, WIDE), (80, EIGHTY), (60, SIXTY)])
def test_both_lists_at_a_width(catalog, width, expected):
    printed = list_text.list_output(None, Path("results"), "table", width)
    assert printed == expected
    assert all(len(line) <= width for line in printed.splitlines())


def test_no_tags_column_where_no_run_has_tags_and_nothing_left_out_when_wide(catalog):
    catalog[:] = [PARTIAL]
    assert list_text.runs_table(Path("results"), 200) == (
        "Runs under results\n"
        "run                           status   trials  seeds  epochs  verdict  started      device  options\n"
        "quick-digits/20261205-090000  partial    3/10  0,1,3       ?  —        12-05 09:00  cuda:0\n"
    )


def test_empty_lists_say_so(catalog, monkeypatch):
    monkeypatch.setattr(list_text, "config_rows", lambda folder: [])
    assert list_text.configs_table(None, 80) == "Configs\n(none)\n"
    catalog[:] = []
    assert list_text.runs_table(Path("results"), 80) == "Runs under results\n(no runs yet)\n"
    assert list_text.runs_table(Path("results"), 80, ("x", "y")) == "Runs under results\n(no runs tagged x, y)\n"


def test_tags_select_runs(catalog):
    assert list_text.runs_table(Path("r"), 80, ("smoke",)).splitlines()[1:] == [
        "run                           status    seeds  epochs  verdict           tags",
        "quick-digits/20261206-170053  complete  0-4         5  batchnorm better  smoke",
        "Left out at this width: trials, started, device, options (see bnbench show RUN).",
    ]


def test_json_has_every_field_and_the_verdicts(catalog):
    printed = list_text.list_output(None, Path("results"), "json", 80)
    assert json.loads(printed) == {
        "configs": CONFIGS,
        "runs": [COMPLETE | {"verdict": "batchnorm better"}, PARTIAL | {"verdict": "—"}, DAMAGED],
    }
    assert printed.startswith('{\n  "configs": [\n    {\n      "file": "quick.yaml",\n') and printed.endswith("}\n")


def test_an_unknown_format_is_one_line(catalog):
    with pytest.raises(BnbenchError, match=r"^--format yaml: unknown format; choose table or json$"):
        list_text.list_output(None, Path("results"), "yaml", 80)


@pytest.mark.parametrize(
    "seeds, ranges",
    [
        ("0, 1, 2, 3, 5", "0-3,5"),
        ("0, 1", "0,1"),
        ("0, 2, 4", "0,2,4"),
        ("7", "7"),
        ("3, 4, 5, 9, 10", "3-5,9,10"),
        ("?", "?"),
    ],
)
def test_seed_ranges_as_seeds_takes_them(seeds, ranges):
    assert list_text.seed_ranges(seeds) == ranges
