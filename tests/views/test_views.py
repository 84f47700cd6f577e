"""What `compare`, `list` and `show` print on a real terminal of 80 x 24 (a pty), on real 1-epoch digits runs:
the newest run's answer leads and fits the screen, other runs a line each; absolute test accuracy in the
80-column table; legends that name only the columns shown; `list`'s epochs and verdict columns (the verdicts from
the code `compare` uses, remembered between calls); `compare` with no path, --latest and VARIANT@RUN found under
--results; speedups the evaluation grid cannot bound said in words, not as absurd numbers."""

import json
import os
import re
import shutil
import time
from importlib.metadata import version
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.cells import cell_len
from support.cli_calls import ok, refused
from support.pty_calls import printed
from support.screen import COLUMNS, ROWS

from bnbench.analysis import answers as remembered
from bnbench.analysis import compare_run, load_run
from bnbench.analysis.sentences import headline, speed_interval, speed_value

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RANGE = re.compile(r"(\d+\.\d+)–(\d+\.\d+)×")
INTERVAL = re.compile(r"\[(\d+\.\d+), (\d+\.\d+)\]")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A folder holding results/: a fixed 5-seed run of quick (1 epoch), then a newer --until-decided run of it
    (decided at its second look, 10 seeds)."""
    folder = tmp_path_factory.mktemp("home")
    for extra in ([], ["--until-decided"]):
        ok("run", "quick", "--set", "training.epochs=1", "--seeds", "0-4", "--out", folder / "results", "-q", *extra)
        time.sleep(1.0)  # a run id is its start second: two in one second would give the second a longer id, "-1"
    return folder


def runs(home: Path) -> list[Path]:
    """The runs under results/, newest first."""
    return sorted((home / "results" / "quick-digits").iterdir(), key=lambda p: p.name, reverse=True)


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A sweep over two learning rates, 3 seeds: its table has a column more."""
    out = tmp_path_factory.mktemp("swept")
    sweep = ["--sweep", "optimizer.lr=0.001,0.01"]
    ok("run", "quick", "--set", "training.epochs=1", "--seeds", "0-2", *sweep, "--out", out, "-q")
    (run_dir,) = (out / "quick-digits").iterdir()
    return run_dir


def fits(lines: list[str]) -> None:
    assert max(map(cell_len, lines)) <= COLUMNS, "\n".join(lines)


@pytest.mark.slow
def test_compare_with_no_path_leads_with_the_newest_runs_answer_within_a_screen(home):
    """Old code: `bnbench compare` failed (PATH missing); `compare results` printed every run's block, 35 lines
    for these two runs, the first verdict scrolled off a 24-line screen."""
    newest, older = runs(home)
    lines = printed("compare", cwd=home)
    fits(lines)
    assert len(lines) <= ROWS - 1, "\n".join(lines)  # the prompt's line too: the first line is still on screen
    assert lines[0].startswith(f"quick-digits · run {newest.name}")
    assert lines[1].startswith("batchnorm vs plain: better test acc")
    at = lines.index("Other runs (each in full: --all):")
    assert lines[at + 1 :] == [f"quick-digits · run {older.name} · epoch 1 of 1: batchnorm better"]
    every = printed("compare", "--all", cwd=home)
    fits(every)
    assert "Other runs (each in full: --all):" not in every
    assert sum(line.startswith("quick-digits · run ") for line in every) == 2 and len(every) > len(lines)


@pytest.mark.slow
def test_the_line_per_other_run_says_what_its_own_comparison_says(home):
    newest, older = runs(home)
    said = compare_run(load_run(older)).headline
    assert said == "batchnorm better"
    assert compare_run(load_run(newest)).headline == "batchnorm better"  # its sequential decision
    assert printed("compare", "results", cwd=home)[-1].endswith(f": {said}")


@pytest.mark.slow
def test_compare_latest_is_the_newest_run_alone(home):
    newest, _ = runs(home)
    lines = printed("compare", "--latest", cwd=home)
    assert lines[0].startswith(f"quick-digits · run {newest.name}") and "Other runs (each in full: --all):" not in lines
    assert ok("compare", "--latest", "--results", home / "results", "-f", "csv").count(newest.name) == 2  # 2 rows


def test_compare_without_a_results_folder_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert refused("compare") == (
        "error: --results results: no such folder; pass a results folder or run folder, or train a run first: "
        "bnbench run quick"
    )


def test_a_baseline_run_id_is_found_under_the_results_folder(home, tmp_path):
    """Old code: "<run id>: not a run folder, nor the id of a run under <the compared folder>"."""
    newest, older = runs(home)
    elsewhere = tmp_path / "elsewhere" / "quick-digits" / older.name
    shutil.copytree(older, elsewhere)
    compared = ok(
        "compare", tmp_path / "elsewhere", "--baseline", f"plain@{newest.name}", "--results", home / "results"
    )
    assert compared.startswith(f"quick-digits · run {older.name} vs plain@{newest.name} · epoch 1 of 1\n")


@pytest.mark.slow
def test_the_80_column_table_shows_each_variants_test_accuracy(home):
    """Old code: "test acc" was the first column left out at 80 columns; only --full showed it."""
    _, older = runs(home)
    lines = printed("compare", older, cwd=home)
    fits(lines)
    at = next(i for i, line in enumerate(lines) if line.startswith("variant "))
    assert lines[at].split()[:3] == ["variant", "test", "acc"]
    frame = pd.read_csv(StringIO(ok("compare", older, "-f", "csv"))).set_index("variant")
    assert [line.split()[:2] for line in lines[at + 1 : at + 3]] == [
        [variant, f"{frame.loc[variant, 'test_acc_mean']:.2f}"] for variant in ("batchnorm", "plain")
    ]


def legend(lines: list[str]) -> str:
    """The paragraph under the table: from the line after the last table row to the notes."""
    start = max(i for i, line in enumerate(lines) if line.startswith(("batchnorm ", "plain "))) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith(("note: ", "Other runs"))), len(lines))
    return " ".join(lines[start:end])


@pytest.mark.slow
def test_a_legend_names_only_the_columns_its_table_shows(swept, home):
    """Old code: a sweep's table at 80 columns dropped "to loss" and "to acc" and its legend still explained
    them."""
    lines = printed("compare", swept, cwd=home)
    fits(lines)
    header = next(line for line in lines if line.startswith("variant "))
    assert "optimizer.lr" in header and "test acc" in header
    said = legend(lines)
    found = re.search(r"([a-z, ]+) left out at this width", said)
    left = [name.strip() for name in found[1].split(",")] if found else []
    explained = said[: found.start()] if found else said
    for column in ("to loss", "to acc"):
        assert (column in header) == (column in explained), said
        assert (column in header) != (column in left), said
    assert "to acc" not in header and "to acc" in left


@pytest.mark.slow
def test_shows_caption_names_only_the_columns_shown(home):
    """Old code: the caption said "steps, wall seconds" where the 80-column table had left both out."""
    _, older = runs(home)
    lines = printed("show", older, cwd=home)
    fits(lines)
    header = next(line for line in lines if line.startswith("variant "))
    caption = " ".join(lines[next(i for i, line in enumerate(lines) if line.startswith("Per trial: ")) :])
    assert "steps" not in header.split() and "seconds" in header.split()
    assert caption.startswith("Per trial: epochs finished of configured, wall seconds, and the numbers")
    assert caption.endswith("Left out at this width: steps (--format json has them).")


@pytest.mark.slow
def test_list_has_a_column_for_epochs_and_for_the_verdict(home, tmp_path):
    """Old code: at 80 columns every run's options read "--set training.e…" (nothing told an epochs=1 run from a
    full one but a column cut off) and no run said its answer."""
    shutil.copytree(home / "results", tmp_path / "results")
    partial = runs(tmp_path)[0]
    meta = json.loads((partial / "meta.json").read_text())
    (partial / "meta.json").write_text(json.dumps(meta | {"status": "running"}))  # stopped: no lock is held
    lines = printed("list", cwd=tmp_path)
    fits(lines)
    at = lines.index("Runs under results")
    assert lines[at + 1].split() == ["run", "status", "trials", "seeds", "epochs", "verdict"]
    rows = {line.split()[0]: line.split() for line in lines[at + 2 : at + 4]}
    newest, older = runs(tmp_path)
    assert rows[f"quick-digits/{newest.name}"][1:] == ["partial", "20/20", "0-9", "1", "—"]  # decided at 10 seeds
    assert rows[f"quick-digits/{older.name}"][1:] == ["complete", "10/10", "0-4", "1", "batchnorm", "better"]
    assert lines[at + 4] == "Left out at this width: started, device, options (see bnbench show RUN)."
    assert not any("…" in line for line in lines[at:])
    listed = json.loads(ok("list", "--results", tmp_path / "results", "-f", "json"))["runs"]
    assert [r["verdict"] for r in listed] == ["—", compare_run(load_run(older)).headline]


def test_lists_verdicts_are_remembered_until_a_run_changes(home, tmp_path, monkeypatch):
    shutil.copytree(home / "results", tmp_path / "results")
    results = tmp_path / "results"
    worked_out = []
    monkeypatch.setattr(remembered, "answer", lambda run_dir: worked_out.append(run_dir.name) or "worked out")
    ok("list", "--results", results)
    assert sorted(worked_out) == sorted(run.name for run in runs(tmp_path))
    assert (results / remembered.CACHE).is_file()
    worked_out.clear()
    assert "worked out" in ok("list", "--results", results) and worked_out == []
    newest = runs(tmp_path)[0]
    os.utime(newest / "epochs.csv", ns=(1, 1))  # a run grown, resumed or edited
    ok("list", "--results", results)
    assert worked_out == [newest.name]
    for damaged in ("{damaged", '{"version": 1, "runs": []}', json.dumps({"version": version("bnbench"), "runs": []})):
        (results / remembered.CACHE).write_text(damaged)
        worked_out.clear()
        ok("list", "--results", results)
        assert len(worked_out) == 2
    cache = json.loads((results / remembered.CACHE).read_text())
    (results / remembered.CACHE).write_text(json.dumps(cache | {"version": version("bnbench")}))  # older rules
    worked_out.clear()
    ok("list", "--results", results)
    assert len(worked_out) == 2 and json.loads((results / remembered.CACHE).read_text())["version"].endswith(
        f" rules {remembered.RULES}"
    )
    inside = sorted(p.name for p in newest.iterdir())
    ok("list", "--results", newest)  # a run folder as the results folder: its files are the run's
    assert sorted(p.name for p in newest.iterdir()) == inside


@pytest.mark.parametrize(
    "outcomes, said",
    [
        ([("batchnorm", "better")], "batchnorm better"),
        ([("batchnorm", "no difference shown")], "no difference shown"),
        ([("batchnorm", "undecided")], "undecided"),
        ([("bn", "better"), ("ln", "no difference shown"), ("gn", "better")], "2 better, 1 no difference shown"),
    ],
)
def test_a_runs_answer_in_a_few_words(outcomes, said):
    assert headline(outcomes) == said


@pytest.mark.parametrize(
    "low, high, said",
    [
        (0.001, 500.0, "not measurable"),  # old code: "0.00–500.00×"
        (1.45, 72.71, "≥1.45×"),  # sooner by at least the low end: the grid bounds it only below
        (0.02, 0.6, "≤0.60×"),
        (1.2, 3.0, "1.20–3.00×"),
        (1.69, 1.69, "1.69×"),
        (0.0, 0.44, "≤0.44×"),  # censored: as before
    ],
)
def test_a_speedup_the_grid_cannot_bound_is_said_in_words(low, high, said):
    assert speed_value(low, high, "geometric mean") == said


def test_an_interval_spanning_orders_of_magnitude_is_left_out():
    """Old code: "[0.66, 14159.78]"."""

    def interval(speedup, speedup_high, low, high):
        return speed_interval(
            {
                "steps_speedup": speedup,
                "steps_speedup_high": speedup_high,
                "steps_ci_low": low,
                "steps_ci_high": high,
            },
            "steps",
        )

    assert interval(1.2, 2.0, 0.66, 14159.78) == ""
    assert interval(0.01, 500.0, 0.005, 900.0) == ""
    assert interval(1.2, 2.0, 0.9, 3.1) == "[0.90, 3.10]"
    assert interval(1.2, 2.0, np.nan, np.nan) == ""


@pytest.mark.slow
def test_no_speed_range_or_interval_of_an_unmeasurable_size_is_printed(home, swept):
    """Old code, these runs: "1.45–72.71× [1.36, 77.96]", "0.21–75.79× [0.01, 121.43]"."""
    for run_dir in (*runs(home), swept):
        for args in ((), ("--full",), ("--format", "markdown")):
            text = ok("compare", run_dir, *args)
            for low, high in RANGE.findall(text):
                assert float(high) / float(low) <= 10, text
            for low, high in INTERVAL.findall(text):
                assert float(low) == 0 or float(high) / float(low) <= 100, text
            assert "not measurable" in text or "≥" in text
