"""The whole resume command in `bnbench run`'s errors (bnbench.views.resume_hint)."""

import pytest

from bnbench.errors import BnbenchError, Interrupted
from bnbench.views.resume_hint import resume_flags, resume_in_full


def test_the_flags_given_are_kept_and_the_defaults_left_out():
    assert resume_flags(1, "local", None, None, False, 0) == []
    assert resume_flags(3, "local", None, None, True, 0) == ["--jobs", "3", "-q"]
    assert resume_flags(1, "ray", "auto", 0.25, False, 2) == [
        "--backend",
        "ray",
        "--address",
        "auto",
        "--gpus-per-trial",
        "0.25",
        "-vv",
    ]


def test_a_refused_options_line_ends_with_the_whole_command():
    with pytest.raises(BnbenchError) as raised:
        with resume_in_full(["--jobs", "2"]):
            raise BnbenchError("results/x/1: its plan is fixed; continue it with: bnbench run --resume results/x/1")
    assert str(raised.value) == (
        "results/x/1: its plan is fixed; continue it with: bnbench run --resume results/x/1 --jobs 2"
    )


def test_a_stopped_runs_command_is_a_line_of_its_own_and_keeps_its_exit_status():
    with pytest.raises(Interrupted) as raised:
        with resume_in_full(["-q"]):
            raise Interrupted("stopped. Resume with: bnbench run --resume my runs/1", code=143)
    assert str(raised.value) == "stopped. Resume with:\n  bnbench run --resume 'my runs/1' -q"
    assert raised.value.code == 143


def test_other_errors_pass_unchanged():
    with pytest.raises(BnbenchError, match=r"^--seeds x: bad$"):
        with resume_in_full(["-q"]):
            raise BnbenchError("--seeds x: bad")
