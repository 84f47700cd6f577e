"""bnbench.views.exports: csv and json of a hand-made frame (full precision, missing values empty or null, numpy
numbers plain), and markdown and LaTeX of a hand-made grid, byte for byte."""

import numpy as np
import pandas as pd

from bnbench.views.exports import data, latex, markdown, tex
from bnbench.views.layout import Grid

FRAME = pd.DataFrame(
    {
        "variant": ["plain", "batchnorm"],
        "pairs": pd.array([None, 3], dtype="Int64"),
        "test_acc_delta": [np.nan, 6.123456789],
        "baseline": [True, False],
    }
)
GRID = Grid(
    "toy · run 1",
    ["variant", "test acc %"],
    [[["plain", "(baseline)"], ["85.33 ± 2.00"]], [["bn|x"], ["91.50", "Δ +6.17 [+4.84, +7.49]"]]],
    "Mean ± std over seeds; 50% of ~5 runs & more_{x}",
    ["note: pooled", "bn|x vs plain: better"],
)


def test_csv_at_full_precision_with_empty_missing_values():
    assert data(FRAME, "csv") == (
        "variant,pairs,test_acc_delta,baseline\nplain,,,True\nbatchnorm,3,6.123456789,False\n"
    )


def test_json_records_with_null_and_plain_numbers():
    assert data(FRAME, "json") == (
        "[\n"
        "  {\n"
        '    "variant": "plain",\n'
        '    "pairs": null,\n'
        '    "test_acc_delta": null,\n'
        '    "baseline": true\n'
        "  },\n"
        "  {\n"
        '    "variant": "batchnorm",\n'
        '    "pairs": 3,\n'
        '    "test_acc_delta": 6.123456789,\n'
        '    "baseline": false\n'
        "  }\n"
        "]\n"
    )


def test_markdown_leads_with_the_notes_and_escapes_pipes():
    assert markdown(GRID) == (
        "### toy · run 1\n"
        "\n"
        "- note: pooled\n"
        "- bn|x vs plain: better\n"
        "\n"
        "| variant | test acc % |\n"
        "|---|---|\n"
        "| plain<br>(baseline) | 85.33 ± 2.00 |\n"
        r"| bn\|x | 91.50<br>Δ +6.17 [+4.84, +7.49] |" + "\n"
        "\n"
        "Mean ± std over seeds; 50% of ~5 runs & more_{x}\n"
    )


def test_markdown_without_lead_has_no_list():
    assert markdown(Grid("t", ["a"], [[["1"]]], "c")) == "### t\n\n| a |\n|---|\n| 1 |\n\nc\n"


def test_latex_is_a_plain_tabular_with_nested_cells():
    assert latex(GRID) == (
        "% toy · run 1\n"
        "% note: pooled\n"
        "% bn|x vs plain: better\n"
        "% Mean ± std over seeds; 50% of ~5 runs & more_{x}\n"
        "\\begin{tabular}{ll}\n"
        "\\hline\n"
        "variant & test acc \\% \\\\ \\hline\n"
        "\\begin{tabular}[t]{@{}l@{}}plain \\\\ (baseline)\\end{tabular} & 85.33 $\\pm$ 2.00 \\\\ \\hline\n"
        "bn|x & \\begin{tabular}[t]{@{}l@{}}91.50 \\\\ $\\Delta$ +6.17 {[}+4.84, +7.49{]}\\end{tabular} \\\\ \\hline\n"
        "\\end{tabular}\n"
    )


def test_tex_escapes_every_special_character_and_symbol():
    assert tex(r"a\b & 5% $x #1 _{y} ~z ^w [1, 2]") == (
        r"a\textbackslash{}b \& 5\% \$x \#1 \_\{y\} \textasciitilde{}z \textasciicircum{}w {[}1, 2{]}"
    )
    assert tex("± Δ × ÷ · − ≥ ≤") == r"$\pm$ $\Delta$ $\times$ $\div$ $\cdot$ - $\geq$ $\leq$"
