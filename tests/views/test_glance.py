"""What a user reads: `compare`, `list` and `show` at 60, 80 and 120 columns and in a pipe, on real digits runs of
2 and 3 variants: line counts, widths, the verdict first, nothing cut that matters; run.log's end; `~` in paths."""

import os
import subprocess
import sys

import pytest
import yaml
from rich.cells import cell_len
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.views.layout import tokens

WIDTHS = [60, 80, 120]


def invoke(*args, columns=None):
    env = {"COLUMNS": str(columns)} if columns else {}
    return CliRunner(env=env).invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-variant run (batchnorm, plain) and a 3-variant run (+ layernorm) of 3 seeds, 1 epoch of digits."""
    out = tmp_path_factory.mktemp("results")
    folders = {}
    for name, variants in (("two", ["batchnorm", "plain"]), ("three", ["batchnorm", "plain", "layernorm"])):
        config = tiny_config(
            name,
            [0, 1, 2],
            training={"epochs": 1, "batch_size": 16, "log_every": 5, "eval_every": 20},
            baseline="plain",
            variants=[{"name": v, "norm": "none" if v == "plain" else v} for v in variants],
        )
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = invoke("run", path, "--out", out, "-q")
        assert result.exit_code == 0, result.output
        (folders[name],) = (out / name).iterdir()
    folders["out"] = out
    return folders


def widths(text: str) -> list[int]:
    return [cell_len(line) for line in text.splitlines()]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("name, most", [("two", 25), ("three", 40)])
def test_compare_fits_the_width_with_the_verdict_first(runs, columns, name, most):
    result = invoke("compare", runs[name], columns=columns)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(widths(result.stdout)) <= columns and len(lines) <= most, result.stdout
    assert lines[0].startswith(f"{name} · run ") and lines[1].startswith("batchnorm vs plain: ")
    variants = ["batchnorm", "plain"] + ["layernorm"] * (name == "three")
    table = lines.index("") + 1
    assert lines[table].split()[0] == "variant"
    assert sorted(line.split()[0] for line in lines[table + 1 : table + 1 + len(variants)]) == sorted(variants)
    for line in lines:  # an interval is never split over two lines
        assert line.count("[") == line.count("]"), line


def test_compare_in_a_pipe_is_80_columns_and_full_is_the_detail(runs):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run(
        [sys.executable, "-m", "bnbench", "compare", str(runs["two"])],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert max(widths(piped)) <= 80 and "batchnorm vs plain:" in piped.splitlines()[1]
    full = invoke("compare", runs["two"], "--full", columns=80).stdout
    assert "exact p=" in full and "wins" in full and len(full) > len(piped)  # unwrapped: fewer, longer lines


@pytest.mark.parametrize("columns", WIDTHS)
def test_list_is_a_line_per_config_and_run(runs, columns):
    result = invoke("list", "--results", runs["out"], columns=columns)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(widths(result.stdout)) <= columns
    runs_at = lines.index(f"Runs under {runs['out']}")
    assert lines[runs_at + 1].startswith("run ") and len(lines) > runs_at + 3  # title, header, a line per run
    said = " ".join(lines[runs_at + 4 :])  # and where narrow, what was left out
    assert said == "" if columns >= 120 else said.startswith("Left out at this width: ") and "options" in said
    for name in ("two", "three"):  # run ids are never cut
        assert sum(line.startswith(f"{name}/{runs[name].name}") for line in lines) == 1
    assert any(line.startswith("resnet") and "resnet18 (torchvision)" in line for line in lines)


@pytest.mark.parametrize("columns", WIDTHS)
def test_show_is_a_line_per_trial(runs, columns):
    result = invoke("show", runs["three"], columns=columns)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= columns or len(tokens(line)) == 1 for line in lines)  # a long path stands alone
    header = next(i for i, line in enumerate(lines) if line.startswith("variant "))
    trials = lines[header + 1 : header + 1 + 9]
    assert [line.split()[:3] for line in trials] == [
        [v, str(s), "complete"] for s in range(3) for v in ("batchnorm", "plain", "layernorm")
    ]


def test_run_log_ends_with_the_verdict_and_finished(runs):
    log = (runs["two"] / "run.log").read_text().splitlines()
    assert " verdict: batchnorm vs plain: " in log[-2] and log[-1].endswith(" finished: every trial trained")


def test_a_home_folder_in_paths_reads_as_the_shell_would(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    result = invoke(
        "run",
        "quick",
        "--set",
        "training.epochs=1",
        "--seeds",
        "0",
        "--set",
        "dataset.root=~/data",
        "--out",
        "~/res",
        "-q",
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "res" / "quick-digits").iterdir()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["dataset"]["root"] == str(tmp_path / "data")
    assert invoke("compare", "~/res").exit_code == 0 and invoke("list", "--results", "~/res").exit_code == 0


@pytest.mark.slow
def test_the_run_header_is_one_line_in_a_pipe(tmp_path):
    out = tmp_path / ("a-long-folder-name-" * 5) / "results"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bnbench",
            "run",
            "quick",
            "--set",
            "training.epochs=1",
            "--seeds",
            "0",
            "--out",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    (run_dir,) = (out / "quick-digits").iterdir()
    assert printed.splitlines()[0] == f"quick-digits: 2 trials (0 already done) -> {run_dir}"
