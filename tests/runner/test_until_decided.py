"""`bnbench run --until-decided` end to end on the digits set: a large effect is decided before the cap, rounds
grow one run folder until every comparison is decided or the cap is reached (with --jobs 2), a run stopped in a
round or between two resumes to the seeds, files and decisions of one that ran through, `show` and `compare`
say how it was decided, a sequential run is not pooled with a run of fixed seeds, and options that would change
the plan are refused in one line."""

import pytest
import yaml
from support.cli_calls import invoke, ok, refused
from support.configs import placements
from support.interrupt import interrupted_when
from support.run_files import meta, only_run, seeds
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.runner import until_decided

PLACEMENT = placements("rounds", {"name": "plain", "norm": "none"})  # bn_after against bn_before is close; plain is far
ROUNDS = ("--until-decided", "--effect", "2", "--max-seeds", "10")
FILES = ("batches.csv", "epochs.csv", "evals.csv")


def run_of(out, name="rounds"):
    return only_run(out, name)


def files(run_dir):
    """batches.csv and evals.csv whole; epochs.csv without its wall-seconds column."""
    out = {}
    for name in FILES:
        text = (run_dir / name).read_text()
        out[name] = [line.rsplit(",", 1)[0] for line in text.splitlines()] if name == "epochs.csv" else text
    return out


def decisions(run_dir):
    """The record's decisions and numbers, without anything about time."""
    return meta(run_dir)["sequential"]["record"]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "rounds.yaml"
    path.write_text(yaml.safe_dump(PLACEMENT))
    return path


@pytest.fixture(scope="module")
def through(config_file, tmp_path_factory):
    """The run as it goes uninterrupted, with two worker processes: every later run must equal it."""
    out = tmp_path_factory.mktemp("through")
    output = ok("run", config_file, *ROUNDS, "--jobs", "2", "--out", out)
    return run_of(out), output


def test_a_large_effect_is_decided_before_the_cap(tmp_path):
    output = ok("run", "quick", "--until-decided", "--set", "training.epochs=1", "--max-seeds", "15", "--out", tmp_path)
    run_dir = run_of(tmp_path, "quick-digits")
    assert "batchnorm vs plain: better test acc" in output and "decided after 10 seeds" in output
    assert seeds(run_dir) == list(range(10))  # the first look (5 pairs, below 8) decides nothing: two rounds
    record = decisions(run_dir)
    assert record["finished"] and record["looks_taken"] == 2
    (c,) = record["comparisons"]
    assert c["decision"] == "better" and c["decided_at"] == 1 and c["low"][1] > 0
    assert c["status"][0] == "undecided" and c["bound"][0] is None
    assert meta(run_dir)["sequential"]["plan"]["looks"] == [5, 10, 15]


def test_rounds_grow_one_run_until_every_comparison_is_decided_or_the_cap(through):
    run_dir, output = through
    plan, record = meta(run_dir)["sequential"]["plan"], decisions(run_dir)
    assert plan["seeds"] == list(range(10)) and plan["looks"] == [5, 10] and plan["comparisons"] == 2
    assert "look 1 (5 seeds): plain vs bn_before: undecided after 5 seeds" in output  # fewer than 8 pairs
    assert "the next round trains seeds 5, 6, 7, 8, 9" in output
    plain = next(c for c in record["comparisons"] if c["variant"] == "plain")
    after = next(c for c in record["comparisons"] if c["variant"] == "bn_after")
    assert plain["decision"] == "worse" and plain["decided_at"] == 1
    # bn_after: within a point or so of bn_before, not shown equivalent within ±2 by 10 seeds
    assert after["decision"] == "undecided" and after["n"] == [5, 10] and abs(after["mean"][1]) < 2
    assert record["finished"] and record["looks_taken"] == 2 and seeds(run_dir) == list(range(10))
    assert "bn_after vs bn_before: undecided after 10 seeds" in output and "could detect ≥" in output
    assert "alpha 0.05 over 2 comparisons (Bonferroni: 0.025 each)" in output
    log = (run_dir / "run.log").read_text()
    assert "note: look 2 (10 seeds): bn_after vs bn_before: undecided" in log
    assert "verdict: bn_after vs bn_before: undecided after 10 seeds" in log


def second_round(run_dir):
    """A moment to stop a run: its second round (seeds 5 to 9) has trained something."""
    return list(run_dir.glob("checkpoints/*-s5.pt"))


def test_a_run_stopped_in_its_second_round_resumes_to_the_same_seeds_files_and_decisions(
    config_file, through, tmp_path
):
    """Stopped here, by SIGINT, once the second round has trained something."""
    run_dir = interrupted_when(second_round, tmp_path / "rounds", "run", config_file, *ROUNDS, "--out", tmp_path, "-q")
    assert decisions(run_dir)["looks_taken"] == 1  # the first look was taken and written
    output = ok("run", "--resume", run_dir, "-q")
    assert "undecided after 10 seeds" in output
    assert seeds(run_dir) == seeds(through[0]) and files(run_dir) == files(through[0])
    assert decisions(run_dir) == decisions(through[0])


def test_a_run_stopped_between_two_rounds_continues_on_resume(config_file, through, tmp_path, monkeypatch):
    def stop_before_growing(todo, *args, **kwargs):
        if todo.kind == "grow":
            raise KeyboardInterrupt
        return execute(todo, *args, **kwargs)

    execute = until_decided.execute
    monkeypatch.setattr(until_decided, "execute", stop_before_growing)
    invoke("run", config_file, *ROUNDS, "--out", tmp_path, "-q")
    run_dir = run_of(tmp_path)
    assert meta(run_dir)["status"] == "complete" and seeds(run_dir) == [0, 1, 2, 3, 4]  # complete, but not decided
    shown = ok("show", run_dir)
    assert f"continue with: bnbench run --resume {run_dir}" in shown
    monkeypatch.undo()
    ok("run", "--resume", run_dir, "-q")
    assert files(run_dir) == files(through[0]) and decisions(run_dir) == decisions(through[0])
    assert "nothing to do" in ok("run", "--resume", run_dir)


def test_show_and_compare_say_how_it_was_decided(through):
    run_dir, _ = through
    shown = ok("show", run_dir)
    assert "verdict: plain vs bn_before: worse test acc" in shown
    assert "looks after 5, 10 seeds" in shown.replace("\n  ", " ")
    compared = ok("compare", run_dir).replace("\n  ", " ")
    assert "plain vs bn_before: worse test acc" in compared
    assert "Pocock-type alpha spending" in compared and "boundaries |t| ≥" in compared
    assert "the table tests the seeds as if their number had been fixed in advance" in compared
    narrow = CliRunner().invoke(app, ["compare", str(run_dir)], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0 and max(len(line) for line in narrow.stdout.splitlines()) <= 80
    full = ok("compare", run_dir, "--full")
    assert "decided after 10 seeds" in full


def test_a_sequential_run_is_not_pooled_with_a_run_of_fixed_seeds(config_file, through, tmp_path):
    ok("run", config_file, "--seeds", "10-12", "--out", tmp_path, "-q")
    compared = ok("compare", through[0], run_of(tmp_path), "--all").replace("\n  ", " ")  # each run's notes
    assert "not pooled with" in compared and "seeds chosen until decided vs in advance" in compared


@pytest.mark.parametrize(
    "args, said",
    [
        (("--max-seeds", "8"), "--max-seeds: only with --until-decided"),
        (("--until-decided", "--metric", "seconds"), "--metric seconds: not a tested metric"),
        (("--until-decided", "--alpha", "0"), "--alpha 0: must lie in (0, 0.5]"),
        (("--until-decided", "--effect", "-1"), "--effect -1: the equivalence margin must be a finite number above 0"),
        (("--until-decided", "--spending", "linear"), "--spending linear: choose pocock or obf"),
        (("--until-decided", "--seeds", "0-9", "--max-seeds", "8"), "--max-seeds 8: below the 10 seeds"),
        (("--until-decided", "--max-seeds", "5"), "--max-seeds 5: a decision needs at least 8 seeds"),
    ],
)
def test_bad_options_are_refused_in_one_line_before_a_run_folder(config_file, tmp_path, args, said):
    assert said in refused("run", config_file, *args, "--out", tmp_path)
    assert not (tmp_path / "rounds").exists()


def test_a_sequential_run_keeps_its_plan_and_a_plain_run_cannot_become_one(config_file, through, tmp_path):
    run_dir = through[0]
    assert "its sequential plan is fixed" in refused("run", "--resume", run_dir, "--until-decided", "--alpha", "0.1")
    assert "adds the seeds its plan says" in refused("run", "--resume", run_dir, "--seeds", "10-12")
    ok("run", config_file, "--out", tmp_path, "-q")
    plain = run_of(tmp_path)
    assert "was not started with --until-decided" in refused("run", "--resume", plain, "--until-decided")


def test_ctrl_c_while_a_look_is_taken_is_one_line_and_resumes(config_file, through, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(until_decided, "look", interrupted)
    result = invoke("run", config_file, *ROUNDS, "--out", tmp_path, "-q")
    run_dir = run_of(tmp_path)
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-2:] == [
        "interrupted between two rounds; nothing finished is lost. Resume with:",
        f"  bnbench run --resume {run_dir} -q",
    ]
    monkeypatch.undo()
    ok("run", "--resume", run_dir, "-q")
    assert files(run_dir) == files(through[0]) and decisions(run_dir) == decisions(through[0])
