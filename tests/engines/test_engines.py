"""`bnbench run` with the stacked engine writes what the eager engine writes, resumes, and runs in workers."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bnbench.cli import app

runner = CliRunner()
VARIANTS = [
    {"name": "plain", "norm": "none"},
    {"name": "bn", "norm": "batchnorm"},
    {"name": "after", "norm": "batchnorm", "placement": "after_activation"},
]


@pytest.mark.slow
def test_stacked_run_equals_eager_run(tmp_path, run_config, digits_config):
    config = digits_config | {"variants": VARIANTS, "sweep": {"optimizer.lr": [1e-3, 3e-3]}}  # 12 trials
    eager = run_config(config, tmp_path / "eager")[0]
    stacked = run_config(config, tmp_path / "stacked", "--set", "training.engine=stacked")[0]
    b1, b2 = (pd.read_csv(d / "batches.csv") for d in (eager, stacked))
    pd.testing.assert_frame_equal(b1.drop(columns="loss"), b2.drop(columns="loss"))
    np.testing.assert_allclose(b2.loss, b1.loss, rtol=1e-5)  # the batched mean sums in another order
    e1, e2 = (pd.read_csv(d / "epochs.csv").drop(columns="seconds") for d in (eager, stacked))
    pd.testing.assert_frame_equal(e1, e2, rtol=1e-5)
    assert json.loads((stacked / "meta.json").read_text())["engine"] == "stacked"
    assert json.loads((eager / "meta.json").read_text())["engine"] == "eager"


def test_stacked_in_workers_equals_stacked_here(tmp_path, run_config, digits_config):
    config = digits_config | {"sweep": {"model.hidden": [[32], [16, 8]]}}  # two stackable groups
    one = run_config(config, tmp_path / "one", "--set", "training.engine=stacked")[0]
    two = run_config(config, tmp_path / "two", "--set", "training.engine=stacked", "--jobs", "2")[0]
    assert (one / "batches.csv").read_text() == (two / "batches.csv").read_text()


def test_graph_engine_on_the_cpu_is_refused_before_anything_is_written(tmp_path, write_config, digits_config):
    result = runner.invoke(
        app,
        ["run", str(write_config(digits_config)), "--out", str(tmp_path / "results"), "--set", "training.engine=graph"],
    )
    assert result.exit_code == 2 and "training.engine: graph needs a CUDA device, not 'cpu'" in result.output
    assert not (tmp_path / "results").exists()
