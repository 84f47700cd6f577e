"""Divergence is a result (recorded, other trials go on, exit 0); --jobs 2 writes exactly what --jobs 1 does."""

import json

import numpy as np
import pandas as pd


def test_a_diverging_trial_stops_and_the_others_go_on(tmp_path, run_config, digits_config):
    # SGD at lr 1e6: the plain MLP's loss overflows within a few steps; at lr 1e-3 everything trains.
    config = digits_config | {"seeds": [0], "optimizer": {"name": "sgd"}, "sweep": {"optimizer.lr": [1e6, 1e-3]}}
    run_dir, output = run_config(config, tmp_path)
    meta = json.loads((run_dir / "meta.json").read_text())
    trials = {(t["variant"], t["optimizer.lr"]): t for t in meta["trials"]}
    assert meta["status"] == "complete"
    for variant in ("batchnorm", "plain"):
        assert trials[variant, 1e-3]["status"] == "complete" and trials[variant, 1e-3]["epochs"] == 2
    plain = trials["plain", 1e6]
    assert plain["status"] == "diverged" and plain["epochs"] == 1
    step = plain["diverged_step"]
    assert f"diverged at step {step}" in output
    batches = pd.read_csv(run_dir / "batches.csv")
    rows = batches[(batches.variant == "plain") & (batches["optimizer.lr"] == 1e6)]
    assert rows.step.max() == step and not np.isfinite(rows.loss.iloc[-1])  # ends at the diverged step
    assert np.isfinite(rows.loss.iloc[:-1]).all()
    assert plain["last_finite_loss"] == np.float32(rows.loss.iloc[-2])
    assert (batches["optimizer.lr"] == 1e-3).sum() == 2 * 2 * 90
    epochs = pd.read_csv(run_dir / "epochs.csv")
    accuracy = epochs.set_index(["variant", "optimizer.lr"]).train_acc
    assert np.isnan(accuracy["plain", 1e6])  # not a number over batches past the divergence (was 130 %, 510 %)
    assert accuracy.drop(("plain", 1e6)).between(0, 1).all()


def test_jobs_2_writes_exactly_what_jobs_1_writes(tmp_path, run_config, digits_config):
    config = digits_config | {"sweep": {"optimizer.lr": [1e-3, 3e-3]}}  # 8 trials
    one, _ = run_config(config, tmp_path / "one", "--jobs", "1")
    two, _ = run_config(config, tmp_path / "two", "--jobs", "2")
    assert (one / "batches.csv").read_text() == (two / "batches.csv").read_text()
    e1, e2 = (pd.read_csv(d / "epochs.csv").drop(columns="seconds") for d in (one, two))
    pd.testing.assert_frame_equal(e1, e2, check_exact=True)
    assert json.loads((two / "meta.json").read_text())["trials_done"] == 8
