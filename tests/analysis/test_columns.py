"""The column registry: every table, csv and json export has exactly the declared columns, in the declared order,
whatever the data (a run of one variant, a sweep)."""

import json

import pytest
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.analysis import compare_runs
from bnbench.analysis.columns import COLUMNS, METRICS, SPEEDS, col, of_measure, of_validation
from bnbench.cli import app

FRAME = ["experiment", "run", "status", "partial", "notes"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    base = tiny_config("cols", optimizer=None, training={"epochs": 1, "batch_size": 32, "log_every": 5})
    configs = {
        "two": base,
        "one": base | {"name": "cols-one", "variants": [{"name": "plain", "norm": "none"}], "baseline": "plain"},
        "sweep": base | {"name": "cols-sweep", "sweep": {"optimizer.lr": [0.001, 0.01]}},
    }
    folders = {}
    for key, config in configs.items():
        path = out / f"{key}.yaml"
        path.write_text(json.dumps(config))
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        (folders[key],) = (out / config["name"]).iterdir()
    return folders


@pytest.mark.parametrize("key", ["two", "one", "sweep"])
def test_every_table_has_the_declared_columns_in_order(runs, key):
    (comparison,), _ = compare_runs([runs[key]])
    sweep = list(comparison.results.config.sweep)
    expected = FRAME + sweep + [c for c in COLUMNS if c not in FRAME and not of_validation(c)]  # no split here
    assert list(comparison.table.columns) == expected
    result = CliRunner().invoke(app, ["compare", str(runs[key]), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [list(r) for r in json.loads(result.stdout)] == [expected] * len(comparison.table)


def test_a_name_is_looked_up_only_if_declared():
    assert col("test_acc", "p_exact") == "test_acc_p_exact" and col("steps", "censored") == "steps_censored"
    with pytest.raises(KeyError):
        col("seconds", "p")  # wall seconds are not tested
    assert all(c in COLUMNS for m in [*METRICS, *SPEEDS] for c in of_measure(m))
