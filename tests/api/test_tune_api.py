"""`bnbench.tune`: the CLI's tune from Python, its answer as objects (the same text, the sensitivity as a frame)."""

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
    assert tuned.text(width=None).replace(tuned.path.name, "ID") in printed.replace(cli_dir.name, "ID")
    assert set(tuned.choices) == {"batchnorm", "plain"}
    scores = tuned.scores
    assert list(scores.columns[:3]) == ["optimizer.lr", "variant", "seeds"] and len(scores) == 4
    assert scores.best.sum() == 2 and (scores.seeds == 2).all()
    compared = tuned.compare()
    assert [c.results.dir.name for c in compared.runs] == ["tuned", "shared"]
    assert bnbench.tune(tuned.path, resume=True).choices == tuned.choices  # complete: returned as it is
