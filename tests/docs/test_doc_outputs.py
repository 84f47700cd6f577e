"""The digits outputs the docs show are what the shown commands print now (docs/examples.py).

The fast tests check what needs no run: every output marker names an output the script makes, and every file the
docs show is the file of docs/examples/ that the sessions run. The slow test runs every session (about 2 minutes
on 2 idle cores) and fails on a stale output."""

import pytest


def test_every_marker_names_a_made_output(docs_script):
    examples = docs_script("examples")
    made = {step.block for steps in examples.SESSIONS.values() for step in steps} | set(examples.FILES)
    shown = examples.shown_blocks()
    assert set(shown) <= made, f"markers without a maker: {set(shown) - made}"
    assert made - {None} <= set(shown), f"outputs shown nowhere: {made - {None} - set(shown)}"


def test_shown_files_are_the_example_files(docs_script):
    examples = docs_script("examples")
    shown = examples.shown_blocks()
    for name in examples.FILES:
        assert shown[name][1] == examples.file_block(name), f"{name}: python docs/examples.py --write"


def test_normalising_hides_only_what_varies(docs_script):
    examples = docs_script("examples")
    a = "done: results/quick-digits/20261206-180131 (started 2026-12-06T18:01:31+0000) in 4.2 s: +4.11 pts"
    b = "done: results/quick-digits/20261206-194619 (started 2026-12-06T19:46:19+0000) in 0.7 s: +4.11 pts"
    assert examples.normalise(a, numbers=False) == examples.normalise(b, numbers=False)
    assert examples.normalise(a, numbers=False) != examples.normalise(a.replace("+4.11", "+4.12"), numbers=False)
    assert examples.normalise(a, numbers=True) == examples.normalise(a.replace("+4.11", "+4.12"), numbers=True)
    assert examples.normalise(a, numbers=True) != examples.normalise(a.replace("pts", "points"), numbers=True)


@pytest.mark.slow
def test_shown_outputs_are_current(docs_script):
    examples = docs_script("examples")
    problems = [p for p in examples.stale(examples.sessions_to_run([])) if not p.startswith("note:")]
    assert not problems, "\n".join(problems)
