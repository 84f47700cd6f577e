"""`bnbench compare` against a run being written (a consistent snapshot, never false damage), on many runs (plots in
pages, at most plots.MAX_RUNS runs), and on paths that are not what it expects (one clear line each)."""

import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from support.cli_calls import invoke
from support.configs import tiny_config

from bnbench import analysis
from bnbench.analysis import compare_run, compare_runs, load_run
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand
from bnbench.rundir import rows, store
from bnbench.rundir.lock import RunLock
from bnbench.rundir.schema import ROW_FILES
from bnbench.views import plots

CONFIG = tiny_config(
    "live",
    optimizer=None,
    training={"epochs": 3, "batch_size": 10, "log_every": 2, "eval_every": 2},
    variants=[{"name": "bn"}, {"name": "plain", "norm": "none"}],
    baseline="plain",
)
BATCHES = 4  # per epoch; evaluations at every second step, the last at the epoch's end


def epoch_result(trial, epoch: int):
    """What the trainer hands rows.append_epoch: made-up numbers, different per trial and epoch."""
    rng = np.random.default_rng(100 * trial.index + epoch)
    losses = (2.0 / epoch + 0.1 * trial.index + rng.uniform(0, 0.1, BATCHES)).astype(np.float32)
    first = (epoch - 1) * BATCHES
    evals = [(first + s, float(losses[s - 1]), 0.5 + 0.1 * epoch - 0.01 * trial.index) for s in (2, 4)]
    return SimpleNamespace(
        epoch=epoch,
        losses=losses,
        train_loss=float(losses.mean()),
        train_acc=0.5,
        test_loss=evals[-1][1],
        test_acc=evals[-1][2],
        seconds=1.0 + trial.index,
        evals=evals,
        probes=[],
        val=None,
    )


def write_live_run(folder: Path, epochs: dict[int, int]) -> tuple[Path, list]:
    """A run folder written as the runner writes one (headers, then each trial's epochs through
    rows.append_epoch); `epochs`: trial index -> epochs done. meta.json says running, but no lock is held."""
    config = validate(CONFIG, "test")
    trials = expand(config)
    run_dir = folder / "live" / "20250101-000000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (run_dir / "meta.json").write_text(json.dumps({"status": "running"}))
    for name, columns in ROW_FILES.items():
        store.atomic_write(run_dir / name, rows.header(trials, columns))
    for epoch in range(1, max(epochs.values()) + 1):
        for trial in trials:
            if epoch <= epochs[trial.index]:
                rows.append_epoch(run_dir, trial, epoch_result(trial, epoch), first_step=(epoch - 1) * BATCHES)
    return run_dir, trials


def next_epoch_bytes(run_dir: Path, trial, epoch: int) -> dict[str, bytes]:
    """The bytes rows.append_epoch adds to each file for `trial`'s `epoch`, found by letting it write a copy."""
    copy = run_dir.parent / "copy"
    shutil.copytree(run_dir, copy)
    rows.append_epoch(copy, trial, epoch_result(trial, epoch), first_step=(epoch - 1) * BATCHES)
    added = {name: (copy / name).read_bytes()[len((run_dir / name).read_bytes()) :] for name in ROW_FILES}
    shutil.rmtree(copy)
    return added


@pytest.fixture
def behind(tmp_path):
    """Three trials have 3 epochs, plain seed 1 has 2: a whole run compares at epoch 2; with plain seed 1's third
    epoch it would compare at 3. Returns the folder, the bytes of that epoch, and the table read strictly."""
    run_dir, trials = write_live_run(tmp_path, {0: 3, 1: 3, 2: 3, 3: 2})
    added = next_epoch_bytes(run_dir, trials[3], 3)
    (reference,), skipped = compare_runs([run_dir])
    assert not skipped and set(reference.table.epoch) == {2}
    return run_dir, added, reference.table


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def line_end(data: bytes, fraction: float) -> int:
    """The end of the line in which `fraction` of `data` falls: a cut there leaves whole lines."""
    return data.index(b"\n", int(len(data) * fraction)) + 1


def same_numbers(table, reference) -> bool:
    return table.drop(columns="status").equals(reference.drop(columns="status"))


# ---- a run being written -------------------------------------------------------------------------------------------

PARTLY_WRITTEN = {  # the next epoch of plain seed 1 as a reader may find it: the bytes each file already holds
    "in batches.csv only": lambda a: {"batches.csv": a["batches.csv"]},
    "half its batches, the last line cut off": lambda a: {
        "batches.csv": a["batches.csv"][: line_end(a["batches.csv"], 0.5) - 3]
    },
    "half its batches, whole lines": lambda a: {"batches.csv": a["batches.csv"][: line_end(a["batches.csv"], 0.4)]},
    "its line in epochs.csv cut off": lambda a: {"batches.csv": a["batches.csv"], "epochs.csv": a["epochs.csv"][:9]},
    "in epochs.csv, not yet in evals.csv": lambda a: {"batches.csv": a["batches.csv"], "epochs.csv": a["epochs.csv"]},
    "its first evaluation only": lambda a: {
        "batches.csv": a["batches.csv"],
        "epochs.csv": a["epochs.csv"],
        "evals.csv": a["evals.csv"][: line_end(a["evals.csv"], 0.1)],
    },
    "its end-of-epoch evaluation cut off": lambda a: {**a, "evals.csv": a["evals.csv"][:-4]},
}


@pytest.mark.parametrize("state", PARTLY_WRITTEN)
def test_a_live_run_is_compared_on_the_epochs_every_file_holds(behind, state):
    run_dir, added, reference = behind
    for name, data in PARTLY_WRITTEN[state](added).items():
        append(run_dir / name, data)
    lock = RunLock(run_dir).acquire()
    try:
        result = invoke("compare", run_dir, "--format", "csv")
        (comparison,), _ = compare_runs([run_dir])
    finally:
        lock.release()
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert comparison.results.status == "running" and set(comparison.table.status) == {"running"}
    assert same_numbers(comparison.table, reference)  # the unfinished epoch is left out of every number
    last = comparison.accuracy_curves.step.max()
    assert last == 2 * BATCHES  # no evaluation of the unfinished epoch either


@pytest.mark.parametrize(
    "state, message",
    [
        ("in batches.csv only", "has 2 epochs here but 3 in batches.csv"),
        ("half its batches, the last line cut off", "batches.csv: the last line is cut off"),
        ("its line in epochs.csv cut off", "epochs.csv: the last line is cut off"),
    ],
)
def test_a_run_that_is_not_running_must_be_whole(behind, state, message):
    run_dir, added, _ = behind
    for name, data in PARTLY_WRITTEN[state](added).items():
        append(run_dir / name, data)
    result = invoke("compare", run_dir)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_damage_in_a_live_run_is_still_damage(behind):
    run_dir, _, _ = behind
    text = (run_dir / "batches.csv").read_text()
    (run_dir / "batches.csv").write_text(text.replace(",1,1,1,", ",1,1,one,", 1))
    lock = RunLock(run_dir).acquire()
    try:
        result = invoke("compare", run_dir)
    finally:
        lock.release()
    assert result.exit_code == 2 and "batches.csv: line 2: step is 'one', not an integer" in result.stderr


def pieces(added: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """The epoch's bytes in the writer's order, each file cut in pieces: mid-line, at a line's end, the rest."""
    out = []
    for name, data in added.items():
        cuts = (
            [0, line_end(data, 0.3) - 3, line_end(data, 0.3), len(data)] if data.count(b"\n") > 1 else [0, 5, len(data)]
        )
        out += [(name, data[start:end]) for start, end in zip(cuts, cuts[1:])]
    return out


def load_while_writing(work: Path, writes: list[tuple[str, bytes]], schedule: tuple[int, ...], monkeypatch):
    """load_run of a live run while a writer appends `writes`: schedule[i] pieces are written by the time compare
    reads its i-th CSV."""
    real_read, reads, written = Path.read_bytes, iter(schedule), [0]

    def read_bytes(path):
        if path.parent == work and path.name in ROW_FILES:
            upto = next(reads)
            for name, data in writes[written[0] : upto]:
                append(work / name, data)
            written[0] = max(written[0], upto)
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    lock = RunLock(work).acquire()
    try:
        return load_run(work)
    finally:
        lock.release()
        monkeypatch.setattr(Path, "read_bytes", real_read)


@pytest.mark.slow
def test_reading_while_the_runner_appends_never_sees_damage(behind, monkeypatch):
    """Every way the writer's pieces can fall between compare's reads of the three files: before the first, between
    them, after the last. Each time compare gives the numbers of the whole run before the epoch or after it."""
    run_dir, added, before = behind
    writes = pieces(added)
    after_dir = run_dir.parent / "after"
    shutil.copytree(run_dir, after_dir)
    for name, data in writes:
        append(after_dir / name, data)
    after = compare_runs([after_dir])[0][0].table.assign(run=str(run_dir))
    assert set(after.epoch) == {3}
    seen = set()
    for schedule in itertools.combinations_with_replacement(range(len(writes) + 1), 3):
        work = run_dir.parent / "-".join(map(str, schedule))
        shutil.copytree(run_dir, work)
        table = compare_run(load_while_writing(work, writes, schedule, monkeypatch)).table.assign(run=str(run_dir))
        assert same_numbers(table, before) or same_numbers(table, after), schedule
        seen.add(int(table.epoch.iloc[0]))
    assert seen == {2, 3}


def test_a_run_resumed_while_it_is_read_is_read_as_live(behind, monkeypatch):
    """The lock is taken between compare's first look at the status and its reading of the files."""
    run_dir, added, reference = behind
    append(run_dir / "batches.csv", added["batches.csv"])
    real_read, locks = Path.read_bytes, []

    def read_bytes(path):
        if path.name in ROW_FILES and not locks:
            locks.append(RunLock(run_dir).acquire())
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    try:
        (comparison,), skipped = compare_runs([run_dir])
    finally:
        monkeypatch.undo()
        locks[0].release()
    assert not skipped and comparison.results.status == "running" and same_numbers(comparison.table, reference)


def test_a_live_run_with_no_finished_epoch_is_skipped_with_a_reason(tmp_path):
    run_dir, _ = write_live_run(tmp_path, {0: 0, 1: 0, 2: 0, 3: 0})
    append(run_dir / "batches.csv", b"bn,0,1,1,1,2.5\nbn,0,1,2,2,2.")
    lock = RunLock(run_dir).acquire()
    try:
        result = invoke("compare", run_dir)
    finally:
        lock.release()
    assert result.exit_code == 2 and "no finished epochs yet; wait for the run" in result.stderr, result.output


# ---- many runs, and plots ------------------------------------------------------------------------------------------


def many_runs(folder: Path, count: int) -> Path:
    """`count` finished copies of one small run, under one experiment."""
    run_dir, _ = write_live_run(folder / "one", {0: 2, 1: 2, 2: 2, 3: 2})
    (run_dir / "meta.json").write_text(json.dumps({"status": "complete"}))
    for i in range(count):
        shutil.copytree(run_dir, folder / "results" / "live" / f"20250101-{i:06d}")
    return folder / "results"


def test_many_runs_are_compared_alike_in_worker_processes(tmp_path, monkeypatch):
    """Above analysis.compare.POOL_FROM runs the work is shared out over processes (where there are several CPUs): the
    same comparisons, the same warnings, in the same order."""
    results = many_runs(tmp_path, 5)
    (results / "live" / "20250101-000002" / "epochs.csv").write_text("damaged\n")
    monkeypatch.setattr(analysis.compare, "POOL_FROM", 10**9)
    alone, alone_skipped = compare_runs([results])
    monkeypatch.setattr(analysis.compare, "POOL_FROM", 2)
    shared, shared_skipped = compare_runs([results])
    assert len(shared) == 4 and shared_skipped == alone_skipped and "epochs.csv: missing column" in alone_skipped[0]
    for one, other in zip(alone, shared):
        assert one.table.equals(other.table) and one.windows.equals(other.windows)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_plots_come_in_pages_of_a_bounded_size(tmp_path):
    results = many_runs(tmp_path, plots.PER_PAGE + 1)
    result = invoke("compare", results, "--plot", tmp_path / "many.png")
    assert result.exit_code == 0, result.output
    first, second = tmp_path / "many.png", tmp_path / "many-2.png"
    assert f"plot: {first}\nplot: {second}\n" in result.stderr and "drew the first" not in result.stderr
    row = plots.AXES_INCHES + plots.ABOVE_INCHES + plots.BELOW_INCHES + plots.LEGEND_ROW_INCHES  # a verdict line
    width, height = png_size(first)
    assert (width, height) == (plots.WIDTH_INCHES * plots.DPI, round(plots.PER_PAGE * row * plots.DPI))
    assert png_size(second)[1] == round(row * plots.DPI)  # the one run left for the second page


def test_at_most_max_runs_are_drawn_and_the_rest_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "PER_PAGE", 1)
    monkeypatch.setattr(plots, "MAX_RUNS", 2)
    results = many_runs(tmp_path, 3)
    result = invoke("compare", results, "--plot", tmp_path / "few.svg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("few*")) == ["few-2.svg", "few.svg"]
    assert "plot: drew the first 2 of 3 runs (1 a page); to draw others, pass their folders" in result.stderr
    assert "<svg" in (tmp_path / "few.svg").read_text()[:1000]


def test_a_pdf_holds_every_page(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "PER_PAGE", 1)
    results = many_runs(tmp_path, 2)
    result = invoke("compare", results, "--plot", tmp_path / "all.pdf")
    assert result.exit_code == 0 and result.stderr == f"plot: {tmp_path / 'all.pdf'}\n", result.output
    data = (tmp_path / "all.pdf").read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) == 2


# ---- paths that are not what compare expects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "plot, message",
    [
        ("{tmp}", "--plot {tmp}: is a folder; name a file in it, e.g. {tmp}/compare.png"),
        ("{tmp}/figure.jpg", "--plot {tmp}/figure.jpg: unknown format '.jpg'; use .png, .pdf or .svg"),
        ("{tmp}/no/figure.png", "--plot {tmp}/no/figure.png: folder {tmp}/no does not exist"),
    ],
)
def test_a_plot_path_that_cannot_be_written_is_refused_before_comparing(tmp_path, plot, message):
    (tmp_path / "empty").mkdir()  # no runs at all: the --plot mistake is reported first
    result = invoke("compare", tmp_path / "empty", "--plot", plot.format(tmp=tmp_path))
    assert result.exit_code == 2 and result.stderr == f"error: {message.format(tmp=tmp_path)}" + (
        "; create it or choose another\n" if "does not exist" in message else "\n"
    ), result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "empty"]


def test_a_file_instead_of_a_folder_says_what_to_pass(behind):
    run_dir, _, _ = behind
    result = invoke("compare", run_dir / "batches.csv")
    assert result.exit_code == 2
    assert result.stderr == f"error: {run_dir / 'batches.csv'}: is a file; pass its run folder, {run_dir}\n"
    other = run_dir.parent.parent / "notes.txt"
    other.write_text("x")
    result = invoke("compare", other)
    assert result.exit_code == 2 and result.stderr == (
        f"error: {other}: is a file; pass a results folder (e.g. results) or a run folder (results/<name>/<run id>)\n"
    )


@pytest.mark.parametrize("command", ["compare", "show"])
def test_a_named_pipe_in_place_of_a_csv_is_damage_not_a_wait(behind, command):
    """Opening a named pipe waits for a writer forever (`show` and `compare` hung): a run file that is not a regular
    file is damage, found without opening it. In a child process, so that a hang fails the test."""
    run_dir, _, _ = behind
    (run_dir / "batches.csv").unlink()
    os.mkfifo(run_dir / "batches.csv")
    result = subprocess.run(
        [sys.executable, "-m", "bnbench", command, str(run_dir)], capture_output=True, text=True, timeout=120
    )
    problem = f"{run_dir / 'batches.csv'}: not a regular file (a folder, named pipe or device); restore the run's file"
    if command == "compare":
        assert (result.returncode, result.stderr) == (2, f"error: {problem}\n"), result.stderr
    else:
        assert result.returncode == 0 and f"cannot compare: {problem}\n" in result.stdout, result.stderr
