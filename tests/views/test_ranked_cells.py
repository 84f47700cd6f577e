"""What `compare` shows where a diverged trial made test acc a rank comparison (issue 31, item 3): the glance's
Δ and wins cells, the full table's test-acc cell and caption, and a detectable effect beyond the 0–100 scale. Each
test fails on the code before it (commit bcbf97d)."""

import pytest
from analysis.test_summary import NAN, curve, write_run
from support.cli_calls import ok

from bnbench.analysis import compare_runs
from bnbench.views import plots

DIVERGED = {"losses": [[2.0, 1.9, NAN]], "acc": [NAN]}


def finished(seed: int, acc: float, slope: float = 0.05) -> dict:
    return {"losses": [list(curve(seed, slope, 10, 0.01))], "acc": [acc]}


@pytest.fixture(scope="module")
def survivor(tmp_path_factory):
    """10 seeds; plain diverges on 8, bn on none and is 10 points better on the other 2."""
    trials = {}
    for s in range(10):
        trials[("bn", s)] = finished(s + 20, 0.90, 0.08)
        trials[("plain", s)] = DIVERGED if s < 8 else finished(s, 0.80)
    return write_run(tmp_path_factory.mktemp("survivor"), trials)


def test_the_glance_shows_the_rank_rule_and_its_wins(survivor):
    """Old code: "bn  90.00  +10.00  1  2/2  0/10" (the Holm p of a test on 2 survivors, their wins)."""
    out = ok("compare", survivor)
    (line,) = [line.split() for line in out.splitlines() if line.startswith("bn  ")]  # the table's row
    assert line[2:5] == ["ranked", "0.0078", "10/10"]
    assert "ranked: some seed diverged, so test acc is decided on every pair by the sign test" in " ".join(out.split())


def test_the_full_table_gives_the_sign_test_in_the_test_acc_cell(survivor):
    """Old code: the cell "Δ +10.00 (2 pairs) / t p=-, exact p=0.5, Holm 1 (4) / wins 2/2"."""
    out = " ".join(ok("compare", survivor, "--full").split())
    assert "Δ +10.00 (2 pairs)" in out  # the survivors' difference, said to be theirs
    assert "sign test p=0.002, Holm 0.0078 (4)" in out and "wins 10/10, a diverged trial the worst" in out
    assert "Test acc where a seed diverged: decided over every pair where both trials ended by the sign test" in out


def test_the_full_table_never_prints_a_detectable_effect_beyond_100_points(tmp_path):
    """Differences +80, -80 and +1 pts on 3 seeds. Old code: "could detect ≥ 523.70" in the test acc cell."""
    trials = {}
    for s, (b, p) in enumerate([(0.9, 0.1), (0.1, 0.9), (0.51, 0.5)]):
        trials[("bn", s)], trials[("plain", s)] = finished(s + 20, b), finished(s, p)
    out = " ".join(ok("compare", write_run(tmp_path, trials), "--full").split())
    assert "detects no difference within 0–100" in out
    assert "could detect ≥ 5" not in out


def test_the_plot_title_names_the_rank_comparison_not_the_survivors(survivor):
    """Old code: "bn: Δ test acc +10.00 · to loss 1.37×" (the 2 survivors' difference as the comparison)."""
    (comparison,), _ = compare_runs([survivor])
    assert plots._verdicts(comparison) == "bn: test acc 10/10 seeds better (a diverged trial the worst) · to loss 1.37×"
