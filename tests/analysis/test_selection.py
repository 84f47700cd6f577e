"""Which runs `compare` reads and which run --baseline VARIANT@RUN names (bnbench.analysis.selection)."""

import pytest

from bnbench.analysis.selection import compared, reference
from bnbench.errors import BnbenchError


def runs(results, *ids, name="quick-digits"):
    """Run folders as `find_runs` knows them: a folder holding meta.json."""
    for run_id in ids:
        (results / name / run_id).mkdir(parents=True)
        (results / name / run_id / "meta.json").write_text("{}")
    return [results / name / run_id for run_id in ids]


def test_the_paths_given_else_the_results_folder(tmp_path):
    assert compared([tmp_path / "a"], tmp_path / "nowhere", latest=False) == [tmp_path / "a"]
    assert compared([], tmp_path, latest=False) == [tmp_path]
    with pytest.raises(BnbenchError, match=r"--results .*nowhere: no such folder; .* bnbench run quick$"):
        compared([], tmp_path / "nowhere", latest=False)


def test_latest_is_the_newest_run_alone(tmp_path):
    older, newer = runs(tmp_path, "20260101-000000", "20260102-000000")
    assert compared([], tmp_path, latest=True) == [newer]
    assert compared([older], tmp_path, latest=True) == [older]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BnbenchError, match=r"^--latest: no runs under .*empty; train one: bnbench run quick$"):
        compared([tmp_path / "empty"], tmp_path, latest=True)


def test_a_baseline_run_id_outside_the_compared_runs_is_looked_up_under_results(tmp_path):
    (reference_run,) = runs(tmp_path, "20260101-000000", name="plain-digits")
    (compared_run,) = runs(tmp_path / "elsewhere", "20260102-000000")
    assert reference(None, [compared_run], tmp_path) is None
    assert reference("plain", [compared_run], tmp_path) == "plain"
    assert reference("plain@20260101-000000", [compared_run], tmp_path) == f"plain@{reference_run}"
    assert reference(f"plain@{reference_run}", [compared_run], tmp_path) == f"plain@{reference_run}"
    assert reference("plain@20260102-000000", [compared_run], tmp_path) == "plain@20260102-000000"  # among them
    assert reference("plain@20260101-000000", [compared_run], tmp_path / "nowhere") == "plain@20260101-000000"
