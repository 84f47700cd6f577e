"""`compare` pools runs whose configs differ only in seeds, and pairs runs with another run's baseline: on real
digits runs (1 epoch), each trained once for this file."""

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.cli_calls import invoke

SAME = [
    "variant",
    "seeds",
    "pairs",
    "train_loss_mean",
    "train_loss_std",
    "test_acc_mean",
    "test_acc_delta",
    "test_acc_ci_low",
    "test_acc_p",
    "steps_speedup",
    "steps_acc_speedup",
]
POOLED = (  # the verdict's caveat and note: pooled seeds may have been added after a look at the first run's
    "seeds pooled from 2 runs: if seeds were added after a look, these fixed-n p-values overstate the evidence "
    "(optional stopping)"
)


def train(out: Path, seeds: str, epochs: int = 1) -> Path:
    before = set((out / "quick-digits").iterdir()) if (out / "quick-digits").is_dir() else set()
    result = invoke("run", "quick", "--set", f"training.epochs={epochs}", "--seeds", seeds, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = set((out / "quick-digits").iterdir()) - before
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs A (seeds 0, 1) and B (seeds 1, 2, newer) of one config; `whole`: one run of seeds 0, 1, 2."""
    pooled, whole = tmp_path_factory.mktemp("pooled"), tmp_path_factory.mktemp("whole")
    a = train(pooled, "0,1")
    b = train(pooled, "1,2")
    assert b.name > a.name  # newer
    return {"out": pooled, "a": a, "b": b, "whole": train(whole, "0,1,2")}


def csv(*args) -> pd.DataFrame:
    result = invoke("compare", *args, "--format", "csv")
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.stdout), keep_default_na=False, na_values=[""])


def test_pooled_runs_equal_one_run_with_all_seeds(runs):
    pooled, whole = csv(runs["out"]), csv(runs["whole"])
    assert len(pooled) == 2 and pooled.run.iloc[0] == f"{runs['b']}; {runs['a']}"
    pd.testing.assert_frame_equal(pooled[SAME], whole[SAME])
    assert pooled.seeds.tolist() == [3, 3] and pooled.pairs.iloc[0] == 3
    compared = pooled.verdict.notna()  # the same words, and the caveat the one run made whole does not need
    assert (pooled.verdict[compared] == whole.verdict[compared] + f"; {POOLED}").all()
    assert pooled.notes.str.endswith(f"; {POOLED}").all() and whole.notes.isna().all()


def without_digests(run_dir):
    """The run as one made before its trials recorded digests of their rows (bnbench.rundir.digests)."""
    meta = json.loads((run_dir / "meta.json").read_text())
    del meta["digests"]
    (run_dir / "meta.json").write_text(json.dumps(meta))


def test_a_seed_in_two_runs_is_taken_from_the_newest_and_said(runs, tmp_path):
    """A's seed-1 test accuracy is edited: the pooled number is B's, and every format says where seeds came from."""
    out = tmp_path / "results"
    a, b = (shutil.copytree(runs[k], out / "quick-digits" / runs[k].name) for k in ("a", "b"))
    epochs = pd.read_csv(a / "epochs.csv")
    epochs.loc[epochs.seed == 1, "test_acc"] = 0.0
    epochs.to_csv(a / "epochs.csv", index=False)
    without_digests(a)  # else the edit is damage, and A is skipped
    table = csv(out)
    expected = pd.read_csv(b / "epochs.csv").test_acc.mean() * 100  # seeds 1, 2 from B
    plain_0 = pd.read_csv(a / "epochs.csv").query("seed == 0").test_acc.mean() * 100
    assert table.test_acc_mean.mean() == pytest.approx((2 * expected + plain_0) / 3)
    note = (
        f"pooled 2 runs of one config, device, engine and software (differing only in seeds): seeds 1, 2 from "
        f"{b.name}; seed 0 from {a.name}; seed 1 of {a.name} also in a newer run: taken from the newest"
    )
    assert table.notes.iloc[0] == f"{note}; {POOLED}"
    for fmt in ("table", "markdown", "latex"):
        text = invoke("compare", out, "--format", fmt).stdout
        assert f"seed 1 of {a.name} also in a newer run" in text, fmt
    assert json.loads(invoke("compare", out, "--format", "json").stdout)[0]["notes"] == f"{note}; {POOLED}"
    assert invoke("compare", out, "--windows", "--format", "csv").stdout.count(note) > 1


def test_no_pool_keeps_runs_apart(runs):
    table = csv(runs["out"], "--no-pool")
    assert table.run.unique().tolist() == [str(runs["b"]), str(runs["a"])]
    assert table.seeds.tolist() == [2, 2, 2, 2] and (table.notes.isna()).all()


def test_runs_with_other_settings_are_never_pooled(runs, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(runs["a"], out / "quick-digits" / runs["a"].name)
    longer = train(out, "0", epochs=2)
    table = csv(out)
    assert table.run.unique().tolist() == [str(longer), str(out / "quick-digits" / runs["a"].name)]


def test_a_partial_run_adds_only_its_finished_seeds(runs, tmp_path):
    """B stopped before seed 2 finished: seed 1 comes from B, seed 0 from A, seed 2 is left out, and a note says so."""
    out = tmp_path / "results"
    a, b = (shutil.copytree(runs[k], out / "quick-digits" / runs[k].name) for k in ("a", "b"))
    for name in ("batches.csv", "epochs.csv", "evals.csv"):
        rows = pd.read_csv(b / name)
        rows[rows.seed != 2].to_csv(b / name, index=False)
    meta = json.loads((b / "meta.json").read_text())
    (b / "meta.json").write_text(json.dumps(meta | {"status": "running"}))
    without_digests(b)  # seed 2 never finished: it recorded none
    table = csv(out)
    assert table.seeds.tolist() == [2, 2] and table.status.iloc[0] == "complete"
    assert (
        f"{b.name} is partial: its unfinished seed 2 left out (pooling uses finished trials only)"
        in table.notes.iloc[0]
    )
    assert f"seed 1 from {b.name}; seed 0 from {a.name}" in table.notes.iloc[0]


def test_a_baseline_from_another_run_pairs_on_common_seeds(runs):
    table = csv(runs["b"], "--baseline", f"plain@{runs['a'].name}").set_index("variant")
    name = f"plain@{runs['a'].name}"
    assert table.index.tolist() == ["batchnorm", "plain", name] and table.baseline[name]
    assert table.pairs["batchnorm"] == 1  # seed 1 only
    assert table.test_acc_delta["plain"] == 0.0  # the same config and seed: the same trial
    own = csv(runs["b"]).set_index("variant")
    b = pd.read_csv(runs["b"] / "epochs.csv").query("seed == 1").set_index("variant").test_acc * 100
    assert table.test_acc_delta["batchnorm"] == pytest.approx(b["batchnorm"] - b["plain"])
    assert own.pairs["batchnorm"] == 2
    assert table.notes.iloc[0] == (
        f"baseline {name}: plain of {runs['a']}, paired on seed 1; seed 2 of "
        f"{runs['b'].name} not in {runs['a'].name}: left out"
    )
    text = invoke("compare", runs["b"], runs["a"], "--baseline", f"plain@{runs['a']}", "--full").stdout
    # one pair: its exact sign-flip p is 1 and there is no t-test, so no difference can be shown
    assert f"run {runs['b'].name} vs {name}" in text
    assert f"batchnorm vs {name}: no difference shown in test acc: " in text
    assert f"· run {runs['a'].name}\n" in text  # A itself, against its own plain


def test_a_baseline_from_another_run_is_refused_when_nothing_pairs(runs, tmp_path):
    out = tmp_path / "results"
    other = shutil.copytree(runs["b"], out / "quick-digits" / runs["b"].name)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["dataset"]["normalize"] = True
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    result = invoke("compare", other, "--baseline", f"plain@{runs['a']}")
    assert result.exit_code == 2 and result.stderr == (
        f"error: --baseline plain@{runs['a'].name}: {other}: other data than the baseline's run "
        f"(dataset.normalize: False -> True); compare runs on the same data set\n"
    )
    lone = train(tmp_path / "lone", "7")
    result = invoke("compare", lone, "--baseline", f"plain@{runs['a']}")
    assert (
        result.exit_code == 2
        and "no seed in common with the baseline's run (seeds 7 vs 0, 1), so nothing pairs" in result.stderr
    )
    result = invoke("compare", lone, "--baseline", "plain@20990101-000000")
    assert result.exit_code == 2 and result.stderr.startswith("error: 20990101-000000: not a run folder, nor the id")
    result = invoke("compare", lone, "--baseline", f"bn@{runs['a']}")
    assert result.exit_code == 2 and "not a variant of" in result.stderr


def test_a_baseline_from_another_run_pairs_with_every_sweep_point(runs, tmp_path):
    """docs/statistics.md's use: a swept run against the plain network of a run without a sweep (a ValidationError
    traceback: the combined config was validated again, and VARIANT@RUN is no file name). At the sweep's point of
    A's learning rate, its plain trials are A's, seed for seed."""
    result = invoke(
        "run", "quick", "--set", "training.epochs=1", "--seeds", "0,1", "--sweep", "optimizer.lr=1e-3,3e-3",
        "--out", tmp_path, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (swept,) = (tmp_path / "quick-digits").iterdir()
    name = f"plain@{runs['a'].name}"
    table = csv(swept, "--baseline", f"plain@{runs['a']}").set_index(["optimizer.lr", "variant"])
    assert table.index.tolist() == [(lr, v) for lr in (0.001, 0.003) for v in ("batchnorm", "plain", name)]
    assert table.test_acc_delta[(0.001, "plain")] == 0.0 and table.pairs[(0.003, "batchnorm")] == 2
    own = pd.read_csv(runs["a"] / "epochs.csv").set_index(["variant", "seed"]).test_acc * 100
    assert table.test_acc_mean[(0.003, name)] == pytest.approx(own["plain"].mean())
    per_seed = pd.read_csv(
        io.StringIO(invoke("compare", swept, "--baseline", f"plain@{runs['a']}", "--per-seed", "-f", "csv").stdout)
    ).query("measure == 'test_acc' and variant == 'batchnorm'")
    assert per_seed.baseline_value.tolist() == pytest.approx(2 * own["plain"].tolist())
    assert per_seed.delta.tolist() == pytest.approx((per_seed.value - per_seed.baseline_value).tolist())
