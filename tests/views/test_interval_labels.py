"""Intervals at the level the decision uses (issue 31, item 2): a test acc interval is 95% for test acc alone, while
its decision is Holm-adjusted over the verdict family, so an interval that excludes 0 could stand beside "no
difference shown" and read as a contradiction ("no difference shown … +4.69 pts [+2.12, +7.26], 7/8 seeds better
(Holm p=0.063)"). Every format now says the interval is unadjusted where its family has more than one test: the
verdict, the glance's legend, the --full caption (markdown, LaTeX), and csv/json columns; with a family of one test,
nothing is labelled."""

import io
import json

import pandas as pd
import pytest
from analysis.test_summary import invoke, table, write_run

DIFFERENCES = [0.5, 1.0, 1.5, 2.0, 2.5]  # pts, symmetric: t = 4.24 on 4 d.o.f., p = 0.013; x 8 tests, Holm p > 0.05
LABEL = "unadjusted 95% CI ["


def trials(variants) -> dict:
    """plain and each variant on 5 seeds, the same loss curves (speedups of 1, p = 1), test acc 80% for plain and
    80% + DIFFERENCES for each variant (and a test loss lower by DIFFERENCES / 9)."""
    out = {}
    for seed, d in enumerate(DIFFERENCES):
        out[("plain", seed)] = {"losses": [[1.0, 0.8, 0.6, 0.4]], "acc": [0.80]}
        for variant in variants:
            out[(variant, seed)] = {"losses": [[1.0, 0.8, 0.6, 0.4]], "acc": [0.80 + d / 100], "test_loss": [1 - d / 9]}
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two variants against plain: the verdict family holds 2 x 4 tests."""
    return write_run(tmp_path_factory.mktemp("labels"), trials(["bn", "bn2"]))


def data(run, fmt: str, *options) -> pd.DataFrame:
    result = invoke("compare", run, "--format", fmt, *options)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        return pd.DataFrame(json.loads(result.stdout)).set_index("variant")
    return pd.read_csv(io.StringIO(result.stdout)).set_index("variant")


def test_an_interval_excluding_0_beside_no_difference_shown_is_labelled_unadjusted_in_every_format(run):
    t = table(run)
    bn = t.loc["bn"]
    assert bn.test_acc_ci_low > 0 and bn.test_acc_p_holm > 0.05 and bn.test_acc_tests == 8  # the case
    low, high = f"{bn.test_acc_ci_low:+.2f}", f"{bn.test_acc_ci_high:+.2f}"
    claim = f"no difference shown in test acc: +1.50 pts, unadjusted 95% CI [{low}, {high}], 5/5 seeds better (Holm p="
    assert claim in bn.verdict and t.loc["bn2"].verdict.count(LABEL) == bn.verdict.count(LABEL)
    for fmt in ("csv", "json"):
        rows = data(run, fmt)
        assert rows.loc["bn", "test_acc_ci_level"] == 0.95 and bool(rows.loc["bn", "test_acc_ci_unadjusted"])
        assert pd.isna(rows.loc["plain", "test_acc_ci_level"])  # the baseline's row has no interval
        assert rows.loc["bn", "verdict"] == bn.verdict and rows.loc["bn", "test_acc_ci_low"] == pytest.approx(
            bn.test_acc_ci_low
        )
    glance = invoke("compare", run).stdout
    assert claim.split(": ", 1)[1][:40] in " ".join(glance.split())  # the verdict line, wrapped
    assert "95% CI unadjusted, Holm p adjusted over 8 tests" in " ".join(glance.split())  # the legend
    for fmt in ("markdown", "latex"):
        full = " ".join(invoke("compare", run, "--format", fmt).stdout.split())
        assert "Intervals are 95% each, unadjusted for the Holm family" in full, fmt


def test_a_family_of_one_test_labels_nothing(run, tmp_path):
    """test loss is Holm-adjusted over its own comparisons: with one variant, a family of one, whose interval is
    at the decision's level; test acc's family is 4 tests even then (test acc, two speedups, divergence)."""
    one = write_run(tmp_path, trials(["bn"]))
    rows = data(one, "csv")
    assert rows.loc["bn", "test_loss_tests"] == 1 and rows.loc["bn", "test_loss_ci_level"] == 0.95
    assert not rows.loc["bn", "test_loss_ci_unadjusted"]
    assert rows.loc["bn", "test_acc_tests"] == 4 and rows.loc["bn", "test_acc_ci_unadjusted"]
    shown = " ".join(invoke("compare", one, "--format", "markdown", "--metric", "test_loss").stdout.split())
    assert "unadjusted for the Holm family" not in shown.split("Mean ± std")[1]  # the caption
    two = " ".join(invoke("compare", run, "--format", "markdown", "--metric", "test_loss").stdout.split())
    assert "unadjusted for the Holm family" in two.split("Mean ± std")[1]  # 2 comparisons: a family of 2
