"""`--until-decided` against hostile input and bad luck: a hand-edited plan in meta.json, one variant, a huge
--max-seeds, a kill as the last look is written; and what it says: each interval labelled for what it is, each
decision once at the end of a run, and `show` with the options the user typed."""

import json
import shutil
import time

import pytest
import yaml
from support.cli_calls import ok, refused
from support.configs import placements
from support.pty_calls import on_terminal
from support.run_files import meta, only_run, seeds
from support.screen import ANSI, Screen

FAST = ("--set", "training.epochs=1")
CLOSE = placements("close")  # bn_after against bn_before is close: undecided after 5 seeds, so it takes a second round


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    """quick, decided at its second look (of 5, 10, 15 seeds: the first, with fewer than 8 pairs, decides
    nothing), started with seeds typed."""
    out = tmp_path_factory.mktemp("decided")
    output = ok("run", "quick", "--until-decided", *FAST, "--seeds", "0-4", "--max-seeds", "15", "--out", out, "-q")
    return only_run(out, "quick-digits"), output


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    """A run that takes its second and last round (looks after 5 and 10 seeds), the config's seeds not typed."""
    out = tmp_path_factory.mktemp("rounds")
    config = out / "close.yaml"
    config.write_text(yaml.safe_dump(CLOSE))
    output = ok("run", config, "--until-decided", "--effect", "0.01", "--max-seeds", "10", "--out", out, "-q")
    return only_run(out, "close"), output


def copy(run_dir, tmp_path):
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def edit_plan(run_dir, change):
    data = meta(run_dir)
    change(data["sequential"])
    (run_dir / "meta.json").write_text(json.dumps(data, indent=2))


def _set(field, value):
    return lambda sequential: sequential["plan"].__setitem__(field, value)


HOSTILE = {  # an edit of meta.json's `sequential` -> the field its one line names
    "looks []": (_set("looks", []), "sequential.plan.looks: must increase"),
    "looks [10, 5]": (_set("looks", [10, 5]), "sequential.plan.looks: must increase"),
    "looks [1]": (_set("looks", [1]), "sequential.plan.looks: must increase"),
    "looks short of the cap": (_set("looks", [5, 10]), "sequential.plan.looks: the last must be max_seeds (15)"),
    "alpha x": (_set("alpha", "x"), "sequential.plan.alpha: Input should be a valid number (got 'x')"),
    "alpha null": (_set("alpha", None), "sequential.plan.alpha:"),
    "alpha 2": (_set("alpha", 2.0), "sequential.plan.alpha: Input should be less than or equal to 0.5"),
    "metric steps": (_set("metric", "steps"), "sequential.plan.metric:"),
    "metric zzz": (_set("metric", "zzz"), "sequential.plan.metric:"),
    "spending zzz": (_set("spending", "zzz"), "sequential.plan.spending: Input should be 'pocock' or 'obf'"),
    "effect x": (_set("effect", "x"), "sequential.plan.effect:"),
    "comparisons 0": (_set("comparisons", 0), "sequential.plan.comparisons: 0, but the run's config makes 1"),
    "comparisons true": (_set("comparisons", True), "sequential.plan.comparisons:"),
    "a key missing": (lambda s: s["plan"].pop("spending"), "sequential.plan.spending: is missing"),
    "an unknown key": (_set("rounds", 3), "sequential.plan.rounds:"),
    "seeds changed": (
        lambda s: s["plan"].__setitem__("seeds", [x + 100 for x in s["plan"]["seeds"]]),
        "sequential.plan.seeds: the run holds seeds [0, 1, 2, 3, 4, 5, 6, 7, ...], not the plan's first seeds",
    ),
    "seeds duplicated": (_set("seeds", [0] * 15), "sequential.plan.seeds: must be distinct seeds"),
    "seeds shortened": (
        lambda s: s["plan"].__setitem__("seeds", s["plan"]["seeds"][:10]),
        "sequential.plan.seeds: lists 10 seeds, not max_seeds (15)",
    ),
    "plan a string": (lambda s: s.__setitem__("plan", "x"), "sequential.plan: missing or not a mapping"),
    "plan missing": (lambda s: s.pop("plan"), "sequential.plan: missing or not a mapping"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hand_edited_plan_is_one_line_in_show_compare_and_resume(decided, tmp_path, case):
    change, said = HOSTILE[case]
    run_dir = copy(decided[0], tmp_path)
    edit_plan(run_dir, change)
    where = f"{run_dir / 'meta.json'}: {said}"
    fix = "put back the plan the run was started with, or start a new run with --until-decided"
    for line in (refused("compare", run_dir), refused("run", "--resume", run_dir)):
        assert line.startswith(f"error: {run_dir / 'meta.json'}: sequential.plan") and where in line and fix in line
    shown = ok("show", run_dir).replace("\n  ", " ")
    assert f"cannot compare: {where}" in shown
    assert seeds(run_dir) == list(range(10))  # nothing trained, no round added


def test_a_sequential_field_that_is_not_a_mapping_is_one_line(decided, tmp_path):
    run_dir = copy(decided[0], tmp_path)
    data = meta(run_dir) | {"sequential": "x"}
    (run_dir / "meta.json").write_text(json.dumps(data))
    line = refused("run", "--resume", run_dir)
    assert f"{run_dir / 'meta.json'}: sequential.plan: missing or not a mapping" in line  # not a run of fixed seeds


def test_until_decided_with_one_variant_is_refused_before_a_run_folder(tmp_path):
    one = ("--set", "variants=[{name: plain, norm: none}]")
    line = refused("run", "quick", "--until-decided", *one, "--out", tmp_path)
    assert "--until-decided: the config has one variant (plain)" in line and "second variant" in line
    assert not (tmp_path / "quick-digits").exists()


def test_an_old_sequential_run_of_one_variant_is_one_line(tmp_path):
    """A folder made before one variant was refused: its plan has 0 comparisons."""
    ok("run", "quick", *FAST, "--set", "variants=[{name: plain, norm: none}]", "--seeds", "0-4", "--out", tmp_path)
    run_dir = only_run(tmp_path, "quick-digits")
    plan = {
        "metric": "test_acc",
        "alpha": 0.05,
        "effect": None,
        "spending": "pocock",
        "max_seeds": 20,
        "round": 5,
        "seeds": list(range(20)),
        "looks": [5, 10, 15, 20],
        "comparisons": 0,
    }
    (run_dir / "meta.json").write_text(json.dumps(meta(run_dir) | {"sequential": {"plan": plan, "record": None}}))
    said = f"{run_dir}: a run of one variant (plain) made with --until-decided has nothing to decide"
    assert said in refused("run", "--resume", run_dir)
    assert said in refused("compare", run_dir)
    assert said in refused("compare", tmp_path)  # the whole results folder
    assert said in ok("show", run_dir).replace("\n  ", " ")


@pytest.mark.parametrize(
    "cap, said",
    [
        ("1000000", "--max-seeds 1,000,000: more seeds than the 10,000 trials one run may hold"),
        ("100000000", "--max-seeds 100,000,000: more seeds than the 10,000 trials one run may hold"),
        ("10" + "0" * 22, "more seeds than the 10,000 trials one run may hold"),
        ("20001", "--max-seeds 20,001: more seeds than the 10,000 trials one run may hold"),
        (
            "5001",
            "--max-seeds 5,001: 5,001 seeds x 2 trials a seed, more than the 10,000 trials one run may hold; "
            "use --max-seeds 5000 or fewer",
        ),
    ],
)
def test_max_seeds_is_bounded_by_the_trials_a_run_may_hold(tmp_path, cap, said):
    started = time.monotonic()
    assert said in refused("run", "quick", "--until-decided", "--max-seeds", cap, "--out", tmp_path)
    assert time.monotonic() - started < 30 and not (tmp_path / "quick-digits").exists()


def test_a_kill_as_the_last_look_is_written_is_finished_on_resume(two_rounds, tmp_path):
    """The state a kill at the last meta.json rename leaves: every trial done and the run complete, the record
    still at look 1, no ending in run.log, a temporary file beside meta.json."""
    through = two_rounds[0]
    run_dir = copy(through, tmp_path)
    final = meta(through)["sequential"]["record"]
    assert final["looks_taken"] == 2 and final["finished"]
    edit_plan(run_dir, lambda s: s.__setitem__("record", final | {"looks_taken": 1, "seeds": 5, "finished": False}))
    log = (run_dir / "run.log").read_text().splitlines(keepends=True)
    last_look = next(i for i, line in enumerate(log) if " note: look 2 " in line)
    (run_dir / "run.log").write_text("".join(log[:last_look]))
    (run_dir / ".meta.json.tmp4242").write_text('{"status": "comp')
    output = ok("run", "--resume", run_dir)
    assert "bn_after vs bn_before: " in output and "nothing to do" not in output
    assert meta(run_dir)["sequential"]["record"] == final
    assert not list(run_dir.glob(".*.tmp*"))
    ending = (run_dir / "run.log").read_text().splitlines()
    assert " note: look 2 (10 seeds): bn_after vs bn_before:" in "".join(ending[-5:])
    assert ending[-1].endswith("finished: every trial trained")
    assert seeds(run_dir) == list(range(10))
    assert "nothing to do" in ok("run", "--resume", run_dir)


def test_a_complete_run_whose_first_look_was_never_written_is_finished_on_resume(decided, tmp_path):
    run_dir = copy(decided[0], tmp_path)
    final = meta(run_dir)["sequential"]["record"]
    edit_plan(run_dir, lambda s: s.__setitem__("record", None))
    ok("run", "--resume", run_dir)
    assert meta(run_dir)["sequential"]["record"] == final


def test_each_number_has_its_interval_labelled_for_what_it_is(two_rounds):
    run_dir, output = two_rounds
    record = meta(run_dir)["sequential"]["record"]
    after = next(c for c in record["comparisons"] if c["variant"] == "bn_after")
    interval = f"[{after['low'][1]:+.2f}, {after['high'][1]:+.2f}]"
    assert f"test acc {after['mean'][1]:+.2f} pts, repeated 95% CI {interval}" in output
    compared = ok("compare", run_dir).replace("\n  ", " ")
    assert f"repeated 95% CI {interval}" in compared
    assert "(its CI is a fixed-n one, narrower than the repeated CI above)" in compared


def test_the_run_ends_with_each_decision_once(two_rounds):
    run_dir, output = two_rounds
    assert output.count("bn_after vs bn_before: undecided after 5 seeds") == 1  # look 1, rounds to go
    assert output.count("bn_after vs bn_before: undecided after 10 seeds") == 1  # the verdict, not the look too
    log = (run_dir / "run.log").read_text()
    assert "note: look 2 (10 seeds): bn_after vs bn_before" in log  # run.log keeps every look


@pytest.mark.slow
def test_on_a_terminal_the_decision_is_printed_once(tmp_path):
    """A real pty of 24 x 80: the run's last lines hold the decision once."""
    args = ["run", "quick", "--until-decided", *FAST, "--max-seeds", "15", "--out", str(tmp_path)]
    code, output = on_terminal(*args, cwd=tmp_path)
    assert code == 0, output
    screen = Screen(rows=1000)
    screen.feed(output)
    text = ANSI.sub("", "\n".join(screen.text()))
    assert text.count("batchnorm vs plain: better test acc") == 1, text
    assert "decided after 10 seeds" in text


def test_show_says_what_the_user_ran(decided, two_rounds):
    typed = ok("show", decided[0]).replace("\n  ", " ")
    assert "overrides: --set training.epochs=1 --seeds 0,1,2,3,4 --until-decided --max-seeds 15\n" in typed
    shown = ok("show", two_rounds[0]).replace("\n  ", " ")
    assert "overrides: --until-decided --max-seeds 10 --effect 0.01\n" in shown  # no --seeds: none typed
    assert "resumed" not in shown  # its second round reopened it; the user never resumed it
    assert meta(two_rounds[0])["resumed"]  # as meta.json records it


def test_list_says_what_the_user_ran(two_rounds):
    listed = json.loads(ok("list", "--results", two_rounds[0].parent.parent, "--format", "json"))
    (run,) = listed["runs"]
    assert run["overrides"] == "--until-decided --max-seeds 10 --effect 0.01"  # not the rounds' --seeds


def test_the_plot_leads_with_the_decision_and_labels_the_tables_interval(decided):
    """The plot's verdict text showed the table's fixed-n interval, unlabelled, beside a decision made with a
    wider repeated CI."""
    from bnbench.analysis.reading import load_run
    from bnbench.analysis.summary import compare_run
    from bnbench.views.plots import _verdicts

    text = _verdicts(compare_run(load_run(decided[0])))
    first, *_, last = text.splitlines()
    assert "repeated 95% CI [" in first and "decided after 10 seeds" in first
    assert "fixed-n CI [" in last and "repeated" not in last
