"""What a newcomer met (issue 34): the resume line of a stopped run, run folders named after the data they ran on,
a Ray address that does not answer, the live display's bars, factories beside their config, completion, one
style of error, `bnbench init` and `bnbench rm`. What is seen on a terminal is seen on a real pseudo-terminal of
80 columns (`on_terminal`), replayed by the small terminal emulator of the display's tests (`Screen`)."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import yaml
from matplotlib.colors import to_hex
from rich.console import Console
from support.cli_calls import ok, refused
from support.configs import tiny_config
from support.pty_calls import on_terminal
from support.screen import ANSI, COLUMNS, ROWS, Screen

from bnbench.analysis import compare_runs
from bnbench.analysis.probes import probe_summaries
from bnbench.engines.events import Progress
from bnbench.experiment.loading import load_config, shipped_configs, validate
from bnbench.experiment.trials import expand
from bnbench.rundir.lock import RunLock
from bnbench.views import plots, probe_plots, progress
from bnbench.views.progress import RichReporter

TEXT = {"capture_output": True, "text": True, "timeout": 60}
CONFIG = tiny_config("stops", training={"epochs": 30, "batch_size": 8, "log_every": 0, "eval_every": 100})


def printed_lines(output: str) -> list[str]:
    """The lines the program wrote (cut at its own line ends, not where the terminal wraps them), each from its
    last carriage return."""
    return [ANSI.sub("", line.rstrip("\r").rpartition("\r")[2]).replace("^C", "") for line in output.split("\n")]


def screen_of(output: str) -> list[str]:
    screen = Screen(ROWS, COLUMNS)
    screen.feed(output)
    return screen.text()


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "stops.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


# ---- A: the resume line --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_stopped_run_prints_the_whole_command_to_resume_it_on_a_line_of_its_own(config_file, tmp_path):
    """The line is the command the user ran, with --resume RUN and its --jobs and -v kept (its config and
    seeds are in the run folder), on a line of its own: the terminal wraps it, nothing in it is cut."""
    out = tmp_path / ("a-results-folder-with-a-long-name-" * 2)
    code, output = on_terminal(
        "run", config_file, "--out", out, "--jobs", "2", "-v", stop_when=lambda text: " epoch 2/30" in text
    )
    (run_dir,) = (out / "stops").iterdir()
    assert code == 130, output[-3000:]
    lines = printed_lines(output)
    at = lines.index("interrupted; nothing finished is lost. Resume with:")
    assert lines[at + 1] == f"  bnbench run --resume {run_dir} --jobs 2 -v"
    assert len(lines[at + 1]) > COLUMNS  # the terminal's to wrap
    code, output = on_terminal(*lines[at + 1].split()[1:], within=300)
    assert code == 0 and f"done: {run_dir}" in "".join(screen_of(output)), output[-3000:]


# ---- B: run folders named after the data they ran on ---------------------------------------------------------------


def test_a_config_run_on_other_data_is_named_after_that_data(tmp_path):
    """`--set dataset.name=digits` of mlp-cifar10 lands in mlp-digits/, and `run mlp RUN --resume` knows it for
    a run of mlp; a name the user gives, and every shipped config's own, stays."""
    ok(
        "run",
        "mlp",
        "--set",
        "dataset.name=digits",
        "--set",
        "training.epochs=1",
        "--seeds",
        "0",
        "--out",
        tmp_path,
        "-q",
    )
    (run_dir,) = (tmp_path / "mlp-digits").iterdir()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["name"] == "mlp-digits"
    assert "nothing to do" in ok("run", "mlp", run_dir, "--resume")
    assert load_config("mlp", ("dataset.name=digits", "name=mine"))[0].name == "mine"
    for name, path in shipped_configs().items():
        assert load_config(name)[0].name == yaml.safe_load(path.read_text())["name"]
    assert load_config("mlp")[0].name == "mlp-cifar10"


# ---- C: a Ray address that does not answer --------------------------------------------------------------------------


def bnbench(*args, within: float = 240, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bnbench", *map(str, args)], capture_output=True, text=True, timeout=within, cwd=cwd
    )


@pytest.mark.slow
def test_a_ray_address_that_does_not_answer_is_one_line_about_ray_and_leaves_no_run(tmp_path):
    """It read as a full disk ("cannot write (Failed to connect to Ray cluster ...) ... free space"), after
    minutes of Ray's warnings, and left a partial run behind."""
    pytest.importorskip("ray")
    done = bnbench("run", "quick", "--backend", "ray", "--address", "127.0.0.1:1", "-q", "--out", tmp_path, within=60)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.splitlines() == [
        "error: --address 127.0.0.1:1: no Ray cluster answers at 127.0.0.1:1 (Connection refused); start one there "
        "with: ray start --head --port 1, or leave --address out (the run starts a Ray instance of its own), or use "
        "--backend local"
    ]
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_ray_prints_none_of_its_own_lines_under_quiet(tmp_path):
    """`-q`: notes and the verdict only; Ray's WARNING lines (token authentication, ...) came through."""
    pytest.importorskip("ray")
    done = bnbench("run", "quick", "--backend", "ray", "-q", "--seeds", "0,1", "--out", tmp_path, within=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "WARNING" not in done.stdout, done.stdout + done.stderr


# ---- D: the live display's bars ---------------------------------------------------------------------------------


def reporter_frame(reporter) -> list[str]:
    lines = reporter.console.render_lines(reporter.bar.get_renderable(), pad=False)
    return ["".join(segment.text for segment in line).rstrip() for line in lines]


def display(tmp_path, seeds: int, sweep: Optional[dict] = None):
    """A RichReporter on an 80-column terminal for a run of 3 variants x `seeds` seeds, an epoch of 100 steps."""
    config = validate(
        {
            "name": "p",
            "seeds": list(range(seeds)),
            "dataset": {"name": "digits"},
            "variants": [
                {"name": "plain", "norm": "none"},
                {"name": "batchnorm", "norm": "batchnorm"},
                {"name": "layernorm", "norm": "layernorm"},
            ],
            "training": {"epochs": 1, "batch_size": 10},
            "sweep": sweep or {},
        },
        "p.yaml",
    )
    console = Console(file=io.StringIO(), force_terminal=True, width=COLUMNS)
    return expand(config), RichReporter(console)


@pytest.fixture
def clock(monkeypatch):
    """The display's clock (its rates and times left), moved by the test."""
    now = [1000.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    return now


def test_bars_keep_loss_and_rate_after_a_decode_and_with_long_sweep_names(tmp_path, clock):
    """They lost both for the whole run: the decode's long label stayed reserved ("plain-s42 epoch 2/5 ━╸━━
    2300/5000 0:00:00"), and long trial labels went before them (now cut in their middle)."""
    decode = "decoding /home/someone/data/cifar-10-batches/train (once, then cached)"
    for sweep, label in (({}, "plain-s0 epoch 1/1 "), ({"optimizer.lr": [0.001]}, "plain-s0-o….001 e1/1 ")):
        trials, reporter = display(tmp_path, 2, sweep)
        with reporter:
            reporter.loading(decode, 1, 50_000)
            reporter.loading(decode, 50_000, 50_000)
            reporter.started(tmp_path, trials, {}, train_size=1000)
            for batch in (10, 20, 30):
                clock[0] += 1.0
                reporter.progress(Progress(trial=0, epoch=1, batch=batch, batches=100, running_loss=2.3))
            frame = reporter_frame(reporter)
        trial = next(line for line in frame if line.startswith("plain-s0"))
        assert trial.startswith(label) and "loss 2.300" in trial and "10 batch/s" in trial, frame
        assert all(len(line) <= COLUMNS - 4 for line in frame), frame
        run = next(line for line in frame if line.startswith("run: "))
        assert "steps/s" in run, frame


def test_a_rounds_run_bar_goes_and_the_time_left_counts_the_trials_left(tmp_path, clock):
    """A round's "run: 10/10 trials" stayed under the next round's; "50/75 trials ... 0:00:02" with 25 trials
    to train: rich's estimate from updates in bursts. The time left is the steps left at the measured rate."""
    trials, reporter = display(tmp_path, 25)
    with reporter:
        reporter.started(tmp_path, trials[:30], {}, train_size=1000)  # the first round
        reporter.started(tmp_path, trials, {t.index: 1 for t in trials[:50]}, train_size=1000)  # the next
        for batch in (0, 10, 20):
            reporter.progress(Progress(trial=50, epoch=1, batch=batch, batches=100, running_loss=2.3))
            clock[0] += 1.0
        frame = reporter_frame(reporter)
    (run,) = [line for line in frame if line.startswith("run: ")]
    assert run.startswith("run: 50/75 trials") and "10 steps/s" in run, frame
    assert run.endswith("0:04:08"), frame  # (7500 - 5000 - 20 steps) / 10 steps/s
    (trial,) = [line for line in frame if line.startswith(f"{trials[50].key} ")]
    assert trial.endswith("0:00:08"), frame  # 80 batches of the epoch at 10 batch/s


# ---- E: a factory beside its config -----------------------------------------------------------------------------

NET = """
from torch import nn


def make_net(num_classes, in_shape, norm_layer):
    return nn.Sequential(
        nn.Conv2d(in_shape[0], 8, 3, padding=1, bias=False), norm_layer(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes),
    )
"""


@pytest.mark.slow
def test_a_factory_beside_its_config_runs_from_another_folder(tmp_path):
    """It was imported from the working directory only: "cannot import 'beside_net'"."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "mine" / "beside_net.py").write_text(NET)
    config = tmp_path / "mine" / "exp.yaml"
    raw = {**CONFIG, "name": "beside", "training": {"epochs": 1, "batch_size": 32, "log_every": 0}}
    config.write_text(yaml.safe_dump(raw | {"model": {"kind": "factory", "factory": "beside_net:make_net"}}))
    done = bnbench("run", config, "--out", tmp_path / "out", "-q", "--jobs", "2", cwd=tmp_path / "elsewhere")
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "out" / "beside").iterdir()
    assert len((run_dir / "epochs.csv").read_text().splitlines()) == 1 + 4  # 2 variants x 2 seeds, 1 epoch
    grown = bnbench("run", "--resume", run_dir, "--seeds", "0,1,2", "-q", cwd=tmp_path / "elsewhere")
    assert grown.returncode == 0, grown.stdout + grown.stderr  # a resume finds it beside the config it began from
    assert len((run_dir / "epochs.csv").read_text().splitlines()) == 1 + 6


# ---- F: completion, one style of error --------------------------------------------------------------------------


def test_completion_offers_the_shipped_config_names_and_else_the_shells_files():
    complete = {"_BNBENCH_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "bnbench"], env=os.environ | complete | {"COMP_WORDS": "bnbench run q"}, **TEXT
    )
    assert done.stdout.split() == ["quick"]
    done = subprocess.run(
        [sys.executable, "-m", "bnbench"], env=os.environ | complete | {"COMP_WORDS": "bnbench run ./my"}, **TEXT
    )
    assert done.stdout.split() == []  # bash completes a file name then (complete -o default)


@pytest.mark.parametrize(
    "args, line",
    [
        (["run"], "error: Missing argument 'CONFIG'; see: bnbench run -h"),
        (["run", "quick", "--bogus"], "error: No such option: --bogus"),
        (["run", "quick", "--jobs", "0"], "error: Invalid value for '--jobs' / '-j': Input should be greater"),
        (["nope"], "error: No such command 'nope'; see: bnbench -h"),
        (["run", "nothere"], "error: nothere: no such config file or shipped config"),
    ],
)
def test_every_error_is_one_line_in_one_style(args, line):
    """Click's own errors said "Usage: ... Try ... Error: ...", bnbench's "error: ..."."""
    done = bnbench(*args, within=60)
    assert done.returncode == 2 and done.stdout == ""
    (said,) = done.stderr.splitlines()
    assert said.startswith(line), done.stderr


# ---- G: bnbench init, bnbench rm ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_init_writes_a_config_and_factory_that_run_as_written(tmp_path):
    said = ok("init", tmp_path / "mine")
    config, module = tmp_path / "mine" / "my_net.yaml", tmp_path / "mine" / "my_net.py"
    assert said.splitlines() == [f"wrote: {config}, {module}", f"next: bnbench run {config}"]
    assert refused("init", tmp_path / "mine").endswith(
        "already there; bnbench init writes new files only: pass another FOLDER"
    )
    (tmp_path / "elsewhere").mkdir()
    done = bnbench("run", config, "--seeds", "0,1", "--out", tmp_path / "out", "-q", cwd=tmp_path / "elsewhere")
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "out" / "my_net-digits").iterdir()
    rows = [line.split(",") for line in (run_dir / "epochs.csv").read_text().splitlines()[1:]]
    assert len(rows) == 2 * 2 * 5 and "batchnorm vs plain: " in done.stdout


@pytest.fixture
def a_run(tmp_path) -> Path:
    ok("run", "quick", "--seeds", "0", "--set", "training.epochs=1", "--out", tmp_path / "results", "-q")
    (run_dir,) = (tmp_path / "results" / "quick-digits").iterdir()
    return run_dir


def test_rm_deletes_a_run_but_not_under_a_live_run(a_run, tmp_path):
    lock = RunLock(a_run).acquire()  # as a running run holds it
    try:
        assert f"{a_run}: in use by pid {os.getpid()}" in refused("rm", a_run, "--yes")
    finally:
        lock.release()
    assert a_run.is_dir()
    files = sum(1 for path in a_run.rglob("*") if path.is_file())
    said = ok("rm", a_run.name, "--results", tmp_path / "results", "--yes")
    assert re.fullmatch(rf"removed: {re.escape(str(a_run))} \({files} files, [\d.]+ [kM]B\)\n", said), said
    assert not a_run.exists() and not a_run.parent.exists()  # its experiment's folder, left empty, too


@pytest.mark.slow
def test_rm_asks_first_on_a_terminal_and_refuses_without_one(a_run):
    code, output = on_terminal("rm", a_run, stop_when=lambda text: "?" in text, press=b"n\n", within=60)
    assert code == 0 and f"kept: {a_run}" in output and a_run.is_dir(), output
    code, output = on_terminal("rm", a_run, stop_when=lambda text: "?" in text, press=b"y\n", within=60)
    assert code == 0 and f"removed: {a_run}" in output and not a_run.exists(), output
    assert refused("rm", "nothing-here").startswith("error: nothing-here")


# ---- F: the lr plot's layout, the probe plot's colours ------------------------------------------------------------


def boxes(figure, artists) -> list:
    renderer = figure.canvas.get_renderer()
    return [artist.get_window_extent(renderer) for artist in artists]


def test_the_lr_plot_keeps_its_verdicts_off_the_panel_titles_and_its_legend_off_the_curves(tmp_path):
    """Four lr points: four verdict lines ran into the panels' titles, and the legend (ten entries) inside each
    panel hid the curves. Now the row grows for them, and one legend sits under both panels."""
    ok("run", "lr", "--set", "dataset.name=digits", "--set", "training.epochs=1", "--seeds", "0,1", "--out", tmp_path)
    comparisons, _ = compare_runs([tmp_path / "lr-digits"])
    figure = plots.page(comparisons, None)
    figure.canvas.draw()
    (row,) = figure.subfigs
    panels = row.axes
    (verdicts,) = [text for text in row.texts if "Δ test acc" in text.get_text()]
    assert verdicts.get_text().count("\n") == 3  # three variants' lines and "(+1 more ...)"
    (verdict_box,) = boxes(figure, [verdicts])
    for title in boxes(figure, [ax.title for ax in panels]):
        assert not verdict_box.overlaps(title)
    assert not any(ax.get_legend() for ax in panels)
    (legend,) = row.legends
    assert sum("optimizer.lr=" in text.get_text() for text in legend.get_texts()) == 8  # 2 variants x 4 lr
    (legend_box,) = boxes(figure, [legend])
    for ax in panels:
        assert not legend_box.overlaps(ax.get_tightbbox(figure.canvas.get_renderer()))


def test_in_the_probe_plot_a_colour_is_a_variant_in_every_panel(tmp_path):
    """Colours meant layers in the layer rows and variants in the model row."""
    ok(
        "run",
        "quick",
        "--set",
        "training.probe_every=50",
        "--set",
        "training.epochs=1",
        "--seeds",
        "0,1",
        "--out",
        tmp_path,
    )
    (summary,) = probe_summaries([tmp_path])
    figure = probe_plots.probe_figure(summary)
    colour_of = {}
    for ax in figure.axes:
        title = ax.get_title()
        variant = title.split(":")[0]
        if variant in summary.variants:
            colour_of.setdefault(variant, set()).update(to_hex(line.get_color()) for line in ax.get_lines())
        elif title == "model: effective beta-smoothness":
            beta = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    assert {v: {beta[v]} for v in summary.variants} == colour_of
    assert beta[summary.baseline] == "#000000" and len(set(beta.values())) == len(summary.variants)
