"""`bnbench tune`'s refusals: each mistake a user can make is one line, exit status 2, and no folder is made."""

import pytest
import yaml
from support.cli_calls import refused
from support.configs import tiny_config

WITH_VALIDATION = tiny_config("tc-digits", seeds=(5, 6), dataset={"name": "digits", "validation": 0.1})
GRID = "optimizer.lr=1e-3,1e-2"


@pytest.fixture
def config_of(tmp_path):
    def write(**changes):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({**WITH_VALIDATION, **changes}))
        return path

    return write


@pytest.mark.parametrize(
    "changes, args, line",
    [
        (
            {"dataset": {"name": "digits"}},
            ["--grid", GRID],
            "{config}: has no validation split, and tuning must not read the test set; add dataset.validation: 0.1 "
            "to the config, or --set dataset.validation=0.1",
        ),
        (
            {"seeds": [0, 1, 7]},
            ["--grid", GRID],
            "the config's seeds 0,1,7: 0,1 also tune (--tune-seeds 0,1,2); the final comparison needs fresh seeds, "
            "e.g. --seeds 8-10",
        ),
        (
            {},
            ["--grid", GRID, "--seeds", "2-3"],
            "--seeds 2,3: 2 also tune (--tune-seeds 0,1,2); the final comparison needs fresh seeds, e.g. --seeds 4-5",
        ),
        ({}, [], "--grid: give the settings to tune, e.g. --grid optimizer.lr=1e-4,3e-4,1e-3,3e-3,1e-2"),
        (
            {},
            ["--grid", "optimizer.lr=1e-3"],
            "--grid optimizer.lr=1e-3: one value leaves nothing to choose; give two or more, e.g. --grid "
            "optimizer.lr=1e-4,3e-4,1e-3,3e-3,1e-2",
        ),
        (
            {},
            ["--grid", "training.batch_size=8,16"],
            "--grid training.batch_size=8,16: tune chooses optimizer settings (each variant's own, e.g. "
            "optimizer.lr); compare other fields with bnbench run --sweep",
        ),
        (
            {},
            ["--grid", "optimizer.lrr=1,2"],
            "--grid optimizer.lrr=1,2: --grid path 'optimizer.lrr': unknown key 'lrr'; did you mean 'lr'?",
        ),
        (
            {},
            ["--grid", GRID, "--grid", "optimizer.lr=1,2"],
            "--grid optimizer.lr=1,2: optimizer.lr is given twice; give each path once",
        ),
        (
            {"sweep": {"training.batch_size": [8, 16]}},
            ["--grid", GRID],
            "{config}: sweeps training.batch_size; tune sweeps its --grid itself: remove the config's sweep (or tune "
            "each of its values in a run of its own, --set)",
        ),
        (
            {},
            ["--grid", GRID, "--metric", "test_acc"],
            "--metric test_acc: tune chooses on the validation split; choose val_acc or val_loss",
        ),
        ({}, ["--grid", GRID, "--margin", "-1"], "--margin -1.0: expected 0 or more (points of accuracy)"),
    ],
)
def test_one_line_for_each_mistake(config_of, tmp_path, changes, args, line):
    config = config_of(**changes)
    assert refused("tune", config, *args, "--out", tmp_path / "out") == "error: " + line.format(config=config)
    assert not (tmp_path / "out" / "tc-digits").exists() or not any((tmp_path / "out" / "tc-digits").iterdir())


def test_a_bad_grid_value_is_named(config_of, tmp_path):
    line = refused("tune", config_of(), "--grid", "optimizer.lr=1e-3,-1", "--out", tmp_path)
    assert line.startswith("error: --grid optimizer.lr=1e-3,-1: ") and "greater than 0" in line


def test_resume_needs_a_tune_folder(tmp_path):
    assert refused("tune", "--resume", tmp_path) == (
        f"error: {tmp_path}: not a tune folder (no tune.json); pass OUT/<name>/<tune id>"
    )
