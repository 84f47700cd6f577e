"""What `bnbench compare` shows (bnbench.views.comparing): notes said as they come, the width each table gets,
--plot checked first, --output written or refused in one line."""

import pytest

from bnbench.errors import BnbenchError
from bnbench.views import comparing
from bnbench.views.comparing import Figure, Shown, comparison_text, save_text


@pytest.fixture
def rendered(monkeypatch):
    """comparison_text over a stand-in comparison: one run skipped; the text says the width it was given."""
    monkeypatch.setattr(comparing, "compare_runs", lambda paths, baseline, **compared: (["c"], ["skipped r: bad"]))
    monkeypatch.setattr(comparing, "comparison_output", lambda comparisons, fmt, *a, width, **k: f"{fmt} {width}")

    def render(shown: Shown, width=100, terminal=False):
        notes = []
        return comparison_text([], None, None, notes.append, width, terminal, {}, shown), notes

    return render


def test_a_skipped_run_is_a_warning_before_the_text(rendered):
    assert rendered(Shown()) == ("table 100", ["warning: skipped r: bad"])


def test_the_glance_fits_the_width_and_a_detailed_table_is_whole_in_a_pipe(rendered):
    assert rendered(Shown(fmt="csv"))[0] == "csv 100"
    assert rendered(Shown(full=True))[0] == "table None"
    assert rendered(Shown(metrics=["test_acc"]))[0] == "table None"
    assert rendered(Shown(windows=True), terminal=True)[0] == "table 100"
    assert rendered(Shown(), width=None)[0] == "table None"


def test_no_figure_without_plot():
    assert Figure.asked(None, "a title", 110) is None


def test_the_text_goes_to_output_or_one_line_says_why_not(tmp_path):
    save_text("a table\n", tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "a table\n"
    with pytest.raises(BnbenchError, match=r"^--output .*missing/out.txt: cannot write \(No such file or directory\)$"):
        save_text("a table\n", tmp_path / "missing" / "out.txt")
