"""bnbench from Python (`bnbench.load`, `bnbench.runs`, `bnbench.compare`) against the CLI on the same run folders:
every number of the comparison table and of the per-seed rows equal to `bnbench compare --format json`, the
verdict lines equal, `runs` equal to `bnbench list --format json`; errors are BnbenchError with the CLI's line;
`import bnbench` stays light (the CLI's start)."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from support.cli_calls import ok
from support.configs import tiny_config
from support.run_files import only_run
from typer.testing import CliRunner

import bnbench
from bnbench.cli import app


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder with a swept run (2 variants x 3 seeds x 2 learning rates) and a plain one of 3 seeds."""
    out = tmp_path_factory.mktemp("api") / "results"
    config = out.parent / "swept.yaml"
    config.write_text(yaml.safe_dump(tiny_config("swept", [0, 1, 2], sweep={"optimizer.lr": [1e-3, 3e-3]})))
    ok("run", config, "--out", out, "-q")
    ok("run", "quick", "--set", "training.epochs=1", "--seeds", "0-2", "--out", out, "-q")
    return out


def same(api: list, cli: list) -> bool:
    """Two columns equal: numbers to 1e-12 (NaN and None alike), everything else exactly."""
    for a, b in zip(api, cli, strict=True):
        a = None if isinstance(a, float) and math.isnan(a) else a
        b = None if isinstance(b, float) and math.isnan(b) else b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if not math.isclose(a, b, rel_tol=1e-12, abs_tol=0):
                return False
        elif a != b:
            return False
    return True


def records(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame's rows as Python values (a missing count as None, as JSON has it)."""
    return [{k: None if v is pd.NA else v for k, v in row.items()} for row in frame.to_dict("records")]


def test_every_number_of_compare_equals_the_clis_json(results):
    api = bnbench.compare(results)
    cli = json.loads(ok("compare", results, "--format", "json"))
    table = records(api.table)
    assert len(table) == len(cli) == 6  # swept: 2 points x 2 variants; quick: 2 variants
    assert list(api.table.columns) == list(cli[0])
    for column in cli[0]:
        assert same([r[column] for r in table], [r[column] for r in cli]), column
    assert api.verdict == [r["verdict"] for r in cli if r["verdict"]]
    assert api.table.test_acc_p_skew.notna().sum() == 3  # a column of its own, not only in the text


def test_per_seed_rows_and_metrics_equal_the_clis(results):
    api = bnbench.compare(results, metric=["test_acc"])
    cli = json.loads(ok("compare", results, "--format", "json", "--per-seed", "-m", "test_acc"))
    rows = records(api.per_seed)
    assert len(rows) == len(cli) == 2 * 3 * 2 + 2 * 3  # trials, one measure
    for column in cli[0]:
        assert same([r[column] for r in rows], [r[column] for r in cli]), column
    assert "test_loss_mean" not in api.table.columns and "test_acc_delta" in api.table.columns


def test_options_reach_the_comparison_as_the_clis_do(results):
    swept = only_run(results, "swept")
    api = bnbench.compare(swept, test="exact", baseline="batchnorm")
    cli = json.loads(ok("compare", swept, "--format", "json", "--test", "exact", "--baseline", "batchnorm"))
    assert same([r["test_acc_p"] for r in records(api.table)], [r["test_acc_p"] for r in cli])
    assert {r["test"] for r in records(api.table)} == {"exact"}
    args = ["compare", str(swept), "--test", "exact", "--baseline", "batchnorm"]
    shown = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
    assert shown.exit_code == 0 and api.text(width=100) == shown.stdout


def test_a_run_object_reads_the_run_folder(results):
    run = bnbench.load(only_run(results, "swept"))
    assert run.config["name"] == "swept" and run.meta["status"] == "complete" and run.status == "complete"
    assert len(run.trials) == 2 * 3 * 2 and list(run.trials.columns) == ["trial", "optimizer.lr", "variant", "seed"]
    batches = run.batches.merge(run.trials, on="trial", suffixes=("", "_trial"))
    assert (batches.variant == batches.variant_trial).all() and (batches.seed == batches.seed_trial).all()
    assert set(run.evals.trial) == set(run.trials.trial) and len(run.epochs) == 12 * 2
    run.batches.loss = 0.0  # a copy: the run's rows stay as read
    assert run.batches.loss.gt(0).all()
    assert bnbench.compare(run).verdict == bnbench.compare(run.path).verdict


def test_runs_is_the_list(results):
    frame = bnbench.runs(results)
    listed = json.loads(ok("list", "--results", results, "--format", "json"))["runs"]
    assert list(frame.run) == [r["run"] for r in listed] and list(frame.status) == ["complete", "complete"]
    assert bnbench.runs(results.parent / "none").empty


def test_mistakes_are_one_line_errors(results, tmp_path):
    with pytest.raises(bnbench.BnbenchError, match=r"not a run folder \(no config.yaml or meta.json\)"):
        bnbench.load(tmp_path)
    with pytest.raises(bnbench.BnbenchError, match="no bnbench runs found"):
        bnbench.compare(tmp_path)
    with pytest.raises(bnbench.BnbenchError, match="metric speed: unknown metric; choose from train_loss"):
        bnbench.compare(results, metric=["speed"])
    with pytest.raises(bnbench.BnbenchError, match="--test z: unknown test; choose t or exact"):
        bnbench.compare(results, test="z")
    with pytest.raises(bnbench.BnbenchError, match="probes.csv: missing; the run has no probes"):
        bnbench.load(only_run(results, "swept")).probes


def test_jupyter_shows_the_verdict_and_the_table(results):
    shown = bnbench.compare(only_run(results, "quick-digits"))._repr_html_()
    assert shown.startswith("<h4>quick-digits · digits, mlp [64, 32] · run ") and "<table" in shown
    assert "batchnorm vs plain: " in shown and "plain&#x27;s half-run" in shown  # escaped
    assert shown.count("<tr") == 3  # the header, batchnorm, plain


def test_plot_returns_a_figure(results):
    pytest.importorskip("matplotlib")
    figure = bnbench.compare(results).plot(title="two runs")
    assert type(figure).__name__ == "Figure" and len(figure.subfigs) >= 2  # a row of panels a run
    assert figure.subfigs[0]._suptitle.get_text() == "two runs"  # the page's heading, above a row per run


def test_importing_bnbench_leaves_the_api_for_first_use():
    code = "import sys, bnbench; print('pandas' in sys.modules, 'bnbench.api' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    assert np.array_equal(
        bnbench.__all__,
        ["Comparison", "Run", "Tuned", "compare", "init", "load", "run", "runs", "tune", "BnbenchError"],
    )


def test_the_other_commands_from_python_print_what_the_cli_prints(results, tmp_path):
    """show, --windows, --probes' absence, prune, rm and init: each the CLI's text or rows."""
    swept = only_run(results, "swept")
    run = bnbench.load(swept)
    shown = CliRunner().invoke(app, ["show", str(swept)], env={"COLUMNS": "100"})
    assert shown.exit_code == 0 and run.show(width=100) == shown.stdout
    assert json.loads(run.show("json"))["status"] == "complete"
    windows = json.loads(ok("compare", swept, "--windows", "--format", "json"))
    rows = records(bnbench.compare(swept).windows)
    assert len(rows) == len(windows) > 0 and same([r["loss_mean"] for r in rows], [w["loss_mean"] for w in windows])
    with pytest.raises(bnbench.BnbenchError, match="probes"):
        bnbench.compare(swept).probes  # no run made with probes: the CLI's line
    copies = [tmp_path / which / "swept" / swept.name for which in ("api", "cli")]
    for copy in copies:
        copy.parent.mkdir(parents=True)
        subprocess.run(["cp", "-r", str(swept), str(copy)], check=True)
    copy = copies[0]
    freed = bnbench.load(copy).prune(keep="none")
    assert freed + "\n" == ok("prune", copies[1], "--keep", "none") and freed.startswith("freed ")
    assert not list((copy / "checkpoints").glob("*.pt"))
    assert "removed" in bnbench.load(copy).remove() and not copy.exists()
    config, module = bnbench.init(tmp_path / "mine")
    assert config.name == "my_net.yaml" and module.name == "my_net.py" and config.is_file()
    with pytest.raises(bnbench.BnbenchError):
        bnbench.init(tmp_path / "mine")  # never over a file


def test_probes_of_a_probed_run_are_the_summary_compare_prints(tmp_path):
    config = tmp_path / "probed.yaml"
    training = {"epochs": 1, "batch_size": 32, "log_every": 10, "probe_every": 20}
    config.write_text(yaml.safe_dump(tiny_config("probed", [0, 1, 2], training=training)))
    ok("run", config, "--out", tmp_path / "results", "-q")
    probes = bnbench.compare(tmp_path / "results").probes
    assert {"layer", "measure", "step", "variant", "mean", "diff", "ci_low", "ci_high", "run"} <= set(probes.columns)
    text = ok("compare", tmp_path / "results", "--probes")
    model = probes[(probes.layer == "model") & (probes.measure == "loss") & (probes.variant == "batchnorm")]
    assert f"{model['mean'].iloc[0]:.3g}" in text
