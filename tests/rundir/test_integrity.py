"""Run-folder integrity: a finished trial's rows and checkpoint are checked against the digests it recorded
(bnbench.rundir.digests) and a checkpoint against its own trial before `--resume` trusts it; damage to a complete run is
named by `show`, `compare` and `--resume` with its repair, which trains the damaged trials again to the rows of the
undamaged run; an edited config.yaml is refused by `--resume` and never pooled silently by `compare`; a grow
follows what `bnbench prune` left."""

import json
import os
import shutil

import pytest
import torch
import yaml
from support.cli_calls import invoke, ok, refused
from support.configs import tiny_config
from support.run_files import meta, only_run, rows

from bnbench.analysis.compare import compare_runs
from bnbench.analysis.show import summary

CONFIG = tiny_config(
    "integrity", training={"epochs": 2, "batch_size": 32, "log_every": 0, "eval_every": 20, "probe_every": 30}
)
ROW_FILES = ("batches.csv", "epochs.csv", "evals.csv", "probes.csv")


def run_of(out):
    return only_run(out, "integrity")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "integrity.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def complete(config_file, tmp_path_factory):
    """A complete run of CONFIG, with probes, to copy and damage."""
    out = tmp_path_factory.mktemp("complete")
    ok("run", config_file, "--out", out, "-q")
    return run_of(out)


@pytest.fixture(scope="module")
def three(config_file, tmp_path_factory):
    """CONFIG run for 3 epochs: what a complete run grown by one epoch must equal."""
    out = tmp_path_factory.mktemp("three")
    ok("run", config_file, "--out", out, "-q", "--set", "training.epochs=3")
    return run_of(out)


@pytest.fixture
def copy(complete, tmp_path):
    def copied(damage=lambda run_dir: None):
        run_dir = shutil.copytree(complete, tmp_path / "integrity" / complete.name)
        damage(run_dir)
        return run_dir

    return copied


def edit_line(name, line, field, value):
    """Damage: field `field` (from 0) of line `line` (1-based, the header is line 1) of a row file set to `value`."""

    def damage(run_dir):
        lines = (run_dir / name).read_text().splitlines(keepends=True)
        fields = lines[line - 1].rstrip("\n").split(",")
        assert fields[field] != value
        fields[field] = value
        lines[line - 1] = ",".join(fields) + "\n"
        (run_dir / name).write_text("".join(lines))

    return damage


def drop_lines(name, first, last):
    def damage(run_dir):
        lines = (run_dir / name).read_text().splitlines(keepends=True)
        (run_dir / name).write_text("".join(lines[: first - 1] + lines[last:]))

    return damage


def rewrite(name, change):
    def damage(run_dir):
        (run_dir / name).write_text(change((run_dir / name).read_text()))

    return damage


def reversed_rows(text):
    head, *lines = text.splitlines(keepends=True)
    return head + "".join(reversed(lines))


def checkpoint(change):
    def damage(run_dir):
        path = run_dir / "checkpoints" / "plain-s0.pt"
        data = path.read_bytes()
        path.unlink()
        change(path, data)

    return damage


ROWS_DAMAGED = [
    ("loss-edited", edit_line("batches.csv", 10, -1, "0.5"), "batches.csv"),
    ("test-acc-edited", edit_line("epochs.csv", 3, 6, "0.99"), "epochs.csv"),
    ("eval-nan", edit_line("evals.csv", 3, -2, "nan"), "evals.csv"),
    ("evals-deleted", lambda d: (d / "evals.csv").unlink(), "evals.csv"),
    ("evals-rows-cut", drop_lines("evals.csv", 3, 4), "evals.csv"),
    ("batches-reversed", rewrite("batches.csv", reversed_rows), "batches.csv"),
]
PROBES_DAMAGED = [
    ("probe-row-deleted", drop_lines("probes.csv", 5, 5), "probes.csv"),
    ("probe-nan", edit_line("probes.csv", 5, -1, "nan"), "probes.csv"),
    ("probes-deleted", lambda d: (d / "probes.csv").unlink(), "probes.csv"),
    ("probes-emptied", rewrite("probes.csv", lambda t: ""), "probes.csv"),
    ("probes-duplicated", rewrite("probes.csv", lambda t: t + t.split("\n", 1)[1]), "probes.csv"),
]
CHECKPOINT_DAMAGED = [
    ("checkpoint-garbage", checkpoint(lambda path, data: path.write_bytes(b"garbage")), "plain-s0.pt"),
    ("checkpoint-truncated", checkpoint(lambda path, data: path.write_bytes(data[: len(data) // 2])), "plain-s0.pt"),
    ("checkpoint-fifo", checkpoint(lambda path, data: os.mkfifo(path)), "plain-s0.pt"),
]


@pytest.mark.parametrize(
    "damage, named",
    [case[1:] for case in ROWS_DAMAGED + PROBES_DAMAGED + CHECKPOINT_DAMAGED],
    ids=[case[0] for case in ROWS_DAMAGED + PROBES_DAMAGED + CHECKPOINT_DAMAGED],
)
def test_damage_to_a_complete_run_is_named_and_repaired_by_resume(copy, complete, damage, named):
    """show names the damaged file and the repair; compare refuses to use damaged rows (naming the repair);
    --resume is not "nothing to do": it trains the damaged trials again, to the rows of the undamaged run."""
    run_dir = copy(damage)
    shown = summary(run_dir)
    assert named in (shown["damage"] or "") and shown["next"] == f"bnbench run --resume {run_dir}"
    if named in ("batches.csv", "epochs.csv", "evals.csv"):
        line = refused("compare", run_dir)
        assert named in line and f"repair with: bnbench run --resume {run_dir}" in line
    if named == "probes.csv":
        line = refused("compare", run_dir, "--probes")
        assert named in line
    if named == "probes.csv" and (run_dir / "probes.csv").exists() and (run_dir / "probes.csv").stat().st_size:
        assert f"repair with: bnbench run --resume {run_dir}" in line
    output = ok("run", "--resume", run_dir, "-v").replace("\n", " ")
    assert "nothing to do" not in output and named in output
    assert rows(run_dir) == rows(complete)
    assert summary(run_dir)["damage"] is None
    assert "nothing to do" in ok("run", "--resume", run_dir)


def test_a_checkpoint_replaced_by_hand_is_not_trusted_even_where_show_cannot_tell(copy):
    """A checkpoint of the same size but other bytes: `show` checks only sizes (reading every checkpoint whole is
    slow); --resume reads it whole and drops it, naming it."""
    run_dir = copy(checkpoint(lambda path, data: path.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])))
    assert summary(run_dir)["damage"] is None
    output = ok("run", "--resume", run_dir).replace("\n", " ")
    assert f"{run_dir}/checkpoints/plain-s0.pt: not the checkpoint written for it" in output
    assert not (run_dir / "checkpoints" / "plain-s0.pt").exists()


def swap(run_dir):
    folder = run_dir / "checkpoints"
    (folder / "plain-s0.pt").rename(folder / "x")
    (folder / "plain-s1.pt").rename(folder / "plain-s0.pt")
    (folder / "x").rename(folder / "plain-s1.pt")


def without_digests(run_dir):
    """A run made before digests."""
    recorded = meta(run_dir)
    del recorded["digests"]
    (run_dir / "meta.json").write_text(json.dumps(recorded, indent=2) + "\n")


def without_keys(run_dir):
    """Checkpoints written before they named their trial."""
    for path in (run_dir / "checkpoints").glob("*.pt"):
        state = torch.load(path, weights_only=True)
        del state["summary"]["key"]
        torch.save(state, path)


@pytest.mark.parametrize(
    "damage, said",
    [
        (swap, "it was written with (truncated, replaced or swapped): plain-s0 is trained again"),
        (lambda d: (swap(d), without_digests(d)), "checkpoints/plain-s0.pt: the checkpoint of plain-s1, not of"),
        (lambda d: (without_keys(d), swap(d), without_digests(d)), "checkpoints/plain-s0.pt: its last loss"),
    ],
    ids=["digest", "key", "loss"],
)
def test_swapped_checkpoints_are_named_and_never_continued(copy, three, damage, said):
    """Two trials' checkpoints swapped, then the run grown by an epoch: each checkpoint is checked against its own
    trial (its digest, the key it records, its loss against the rows), and a trial whose checkpoint is not its own
    is trained again from its start; the run then equals one run of 3 epochs."""
    run_dir = copy(damage)
    output = ok("run", "--resume", run_dir, "--set", "training.epochs=3", "-v").replace("\n", " ")
    assert said in output
    assert "plain-s0 is trained again from its start" in output and "plain-s1 is trained again" in output
    assert "batchnorm-s0 is trained again" not in output
    assert rows(run_dir) == rows(three)


def test_a_run_made_before_digests_reads_as_before(copy, complete):
    run_dir = copy(without_digests)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert summary(run_dir)["damage"] is None
    ok("compare", run_dir)
    ok("compare", run_dir, "--probes")
    assert "nothing to do" in ok("run", "--resume", run_dir)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_digests_do_not_depend_on_jobs(complete, config_file, tmp_path):
    """The digests come from each trial's own lines: a run with --jobs 2 records those of a run without (but for
    epochs.csv's and the checkpoint's, which hold wall-clock seconds)."""
    ok("run", config_file, "--out", tmp_path, "-q", "--jobs", "2")

    def timeless(run_dir):
        found = meta(run_dir)["digests"]
        return [
            (key, {k: v for k, v in entry.items() if k not in ("epochs.csv", "checkpoint")})
            for key, entry in found.items()
        ]

    assert timeless(run_of(tmp_path)) == timeless(complete)
    assert len(timeless(complete)) == 4 and all(len(entry) == 3 for _, entry in timeless(complete))


def test_a_foreign_seed_in_probes_csv_is_refused(copy):
    run_dir = copy(rewrite("probes.csv", lambda t: t.replace("\nplain,0,", "\nplain,7,", 1)))
    assert "trial plain seed 7 is not in config.yaml" in refused("compare", run_dir, "--probes")
    without_digests(run_dir)  # validated as it is read, with or without digests
    assert "trial plain seed 7 is not in config.yaml" in refused("compare", run_dir, "--probes")


def test_an_edited_config_of_a_complete_run_is_refused_by_resume_and_never_pooled(copy, config_file, tmp_path):
    """config.yaml edited to another learning rate: --resume refuses in one line; compare keeps the run apart
    from a genuine run of that learning rate (same config, other seeds), with a note."""
    run_dir = copy(rewrite("config.yaml", lambda t: t.replace("lr: 0.001", "lr: 0.01")))
    line = refused("run", "--resume", run_dir)
    assert f"{run_dir / 'config.yaml'}: edited since the run began (optimizer.lr: 0.001 -> 0.01" in line
    ok("run", config_file, "--out", tmp_path, "-q", "--set", "optimizer.lr=0.01", "--seeds", "2,3")
    comparisons, skipped = compare_runs([tmp_path / "integrity"])
    assert not skipped and len(comparisons) == 2
    edited = next(c for c in comparisons if c.results.dir == run_dir)
    assert any(
        "config.yaml edited since the run began (optimizer.lr: 0.001 -> 0.01)" in n for n in edited.results.notes
    )
    genuine = next(c for c in comparisons if c.results.dir != run_dir)
    assert sorted(genuine.results.config.seeds) == [2, 3]


def test_a_grow_after_prune_none_keeps_no_checkpoints(copy):
    run_dir = copy()
    ok("prune", run_dir, "--keep", "none")
    ok("run", "--resume", run_dir, "--seeds", "0-2", "-q")
    assert not any((run_dir / "checkpoints").iterdir())
    assert summary(run_dir)["checkpoints"].startswith("none")


def test_a_grow_by_epochs_stopped_midway_is_not_damage(copy, three, monkeypatch):
    """The digests of trials that train on (a grow by epochs) are dropped before their rows grow, and recorded
    anew when the run ends: a stopped grow reads as partial, not damaged, and resumes to the grown run."""
    from bnbench.rundir import checkpoint_files

    run_dir = copy()
    real, calls = checkpoint_files.save, []

    def stop_at_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(checkpoint_files, "save", stop_at_second)
    assert invoke("run", "--resume", run_dir, "--set", "training.epochs=3", "-q").exit_code == 130
    monkeypatch.undo()
    shown = summary(run_dir)
    assert shown["status"] == "partial" and shown["damage"] is None and not shown["problem"]
    ok("run", "--resume", run_dir, "-q")
    assert rows(run_dir) == rows(three) and summary(run_dir)["damage"] is None


@pytest.mark.parametrize(
    "damage",
    [case[1] for case in PROBES_DAMAGED if case[0] != "probe-nan"],
    ids=[case[0] for case in PROBES_DAMAGED if case[0] != "probe-nan"],
)
def test_probes_of_a_run_made_before_digests_are_repaired_by_resume(copy, complete, damage):
    """Without digests, a trial's probes are checked by their shape: one whole probe at every probe_every steps."""
    run_dir = copy(lambda d: (without_digests(d), damage(d)))
    output = ok("run", "--resume", run_dir, "-v").replace("\n", " ")
    assert "nothing to do" not in output and "probes.csv: the rows of" in output
    assert rows(run_dir) == rows(complete)
