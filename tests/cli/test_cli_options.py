"""The CLI's choices (bnbench.cli.options): each Enum holds the values the library takes, and a bad value is the
library's one line, not click's 'Invalid value for ...'."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnbench.analysis.decisions import TESTED
from bnbench.analysis.sequential import SPENDING
from bnbench.analysis.summary import TESTS
from bnbench.cli import app, options
from bnbench.errors import BnbenchError
from bnbench.rundir.checkpoints import KEEP
from bnbench.views.compare_text import FORMATS


@pytest.mark.parametrize(
    "choice, library",
    [
        (options.Format, FORMATS),
        (options.Test, TESTS),
        (options.Tested, TESTED),
        (options.Spending, SPENDING),
        (options.Keep, KEEP[1:]),
        (options.ListFormat, ["table", "json"]),
        (options.Backend, ["local", "ray"]),
    ],
)
def test_each_choice_holds_the_values_the_library_takes(choice, library):
    assert [member.value for member in choice] == list(library)


def test_a_choice_parses_to_its_member_and_refuses_others_in_one_line():
    parse = options._choice(options.Keep, "--keep {}: choose final or none")
    assert parse("none") is options.Keep.none
    with pytest.raises(BnbenchError, match=r"^--keep resume: choose final or none$"):
        parse("resume")


@pytest.mark.parametrize(
    "args, line",
    [
        (["run", "quick", "--backend", "slurm"], "error: --backend slurm: expected local or ray"),
        (
            ["compare", "--format", "xml"],
            "error: --format xml: unknown format; choose one of table, markdown, csv, json, latex, html",
        ),
        (["compare", "--test", "z"], "error: --test z: unknown test; choose t or exact"),
        (["list", "-f", "csv"], "error: --format csv: unknown format; choose table or json"),
        (["show", "x", "--format", "csv"], "error: --format csv: unknown format; choose table or json"),
        (["prune", "x", "--keep", "resume"], "error: --keep resume: choose final (the weights only) or none"),
        (
            ["run", "quick", "--until-decided", "--metric", "seconds"],
            "error: --metric seconds: not a tested metric; choose one of train_loss, test_loss, test_acc, val_loss, "
            "val_acc, best_acc",
        ),
        (["run", "quick", "--until-decided", "--spending", "x"], "error: --spending x: choose pocock or obf"),
    ],
)
def test_a_bad_choice_is_refused_before_anything_runs(args, line, tmp_path):
    result = CliRunner().invoke(app, [*args, "--results" if args[0] != "run" else "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr == line + "\n"
    assert list(tmp_path.iterdir()) == []


def test_a_path_is_read_with_the_home_folder_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert options._home(Path("~/runs")) == tmp_path / "runs"
    assert options._home([Path("~/a"), Path("b")]) == [tmp_path / "a", Path("b")]
    assert options._home(None) is None


def test_the_default_dpi_is_the_plots():
    pytest.importorskip("matplotlib")
    from bnbench.views import plots

    assert options.DPI == plots.DPI


def test_an_optional_choice_is_its_value_or_none():
    assert options.value(options.Spending.obf) == "obf" and type(options.value(options.Spending.obf)) is str
    assert options.value(None) is None
