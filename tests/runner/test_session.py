"""How `bnbench run` goes on (bnbench.runner.session): the --until-decided settings asked, and the way a plan
proceeds when no run folder is involved yet."""

import pytest

from bnbench.analysis.decisions import Settings
from bnbench.errors import BnbenchError
from bnbench.runner.execute import Plan
from bnbench.runner.session import asked_settings, proceeding


def test_the_settings_given_are_kept_in_order_and_the_rest_left_out():
    assert asked_settings(True, None, None, None, None, None) == {}
    assert asked_settings(True, 8, "test_loss", None, 0.5, "obf") == {
        "max_seeds": 8,
        "metric": "test_loss",
        "effect": 0.5,
        "spending": "obf",
    }


def test_a_setting_without_until_decided_is_refused_by_the_first_ones_name():
    assert asked_settings(False, None, None, None, None, None) == {}
    with pytest.raises(BnbenchError, match=r"^--max-seeds: only with --until-decided$"):
        asked_settings(False, 8, "test_acc", None, None, None)
    with pytest.raises(BnbenchError, match=r"^--alpha: only with --until-decided$"):
        asked_settings(False, None, None, 0.1, 0.5, None)


def test_a_new_run_is_sequential_only_with_until_decided():
    new = Plan("new", "a new run")
    assert proceeding(new, False, {}) is None
    settings = proceeding(new, True, {"max_seeds": 8})
    assert isinstance(settings, Settings) and settings.max_seeds == 8


def test_a_plain_run_goes_on_as_planned_or_not_at_all():
    assert proceeding(Plan("resume", "stopped"), False, {}) is None  # no run folder: not a sequential one
    assert proceeding(Plan("nothing", "complete"), False, {}) is False
