"""`bnbench.tune`: the CLI's tune from Python, its answer as objects (the same text, the sensitivity as a frame)."""

import pytest
from support.cli_calls import ok
from support.configs import tiny_config

import bnbench

CONFIG = tiny_config(
    "api-tune", seeds=(5, 6), training={"epochs": 1, "batch_size": 32, "log_every": 0}, dataset={"name": "digits"}
)


def test_tune_from_python_is_the_cli_tune(write_config, tmp_path):
    config = write_config(CONFIG)
    tuned = bnbench.tune(
        config,
        {"optimizer.lr": [1e-3, 1e-2]},
        tune_seeds=range(2),
        set={"dataset.validation": 0.2},
        out=tmp_path / "api",
    )
    printed = ok(
        "tune", config, "--grid", "optimizer.lr=0.001,0.01", "--tune-seeds", "0-1", "--set", "dataset.validation=0.2",
        "--out", tmp_path / "cli", "-q",
    )  # fmt: skip
    (cli_dir,) = (tmp_path / "cli" / "api-tune").iterdir()
    wide = tuned.text(width=250)  # tests/conftest.py sets COLUMNS, the width the CLI prints at
    assert wide.replace(tuned.path.name, "ID") in printed.replace(cli_dir.name, "ID")
    assert set(tuned.choices) == {"batchnorm", "plain"}
    scores = tuned.scores
    assert list(scores.columns[:3]) == ["optimizer.lr", "variant", "seeds"] and len(scores) == 4
    assert scores.best.sum() == 2 and (scores.seeds == 2).all()
    compared = tuned.compare()
    assert [c.results.dir.name for c in compared.runs] == ["tuned", "shared"]
    assert bnbench.tune(tuned.path, resume=True).choices == tuned.choices  # complete: returned as it is


def test_a_config_given_as_a_dict_tunes_as_its_file_does(write_config, tmp_path):
    grid = {"optimizer.lr": [1e-3, 1e-2]}
    options = {"tune_seeds": range(2), "set": {"dataset.validation": 0.2}}
    from_file = bnbench.tune(write_config(CONFIG), grid, out=tmp_path / "file", **options)
    from_dict = bnbench.tune(CONFIG, grid, out=tmp_path / "dict", **options)
    assert from_dict.choices == from_file.choices
    for stage in ("tuning", "tuned", "shared"):
        rows = [(tune.path / stage / "evals.csv").read_bytes() for tune in (from_dict, from_file)]
        assert rows[0] == rows[1], stage


def test_a_dict_without_a_validation_split_is_refused_in_one_line(tmp_path):
    with pytest.raises(bnbench.BnbenchError, match="^config: has no validation split, and tuning must not read"):
        bnbench.tune(CONFIG, {"optimizer.lr": [1e-3, 1e-2]}, out=tmp_path)
