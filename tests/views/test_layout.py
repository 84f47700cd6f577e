"""bnbench.views.layout: tables never split a token, never exceed the width, switch layout exactly at natural width."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from bnbench.views.layout import Grid, laid_out, natural_width, render, tokens, wrap

PATH = "/tmp/pytest-of-root/pytest-12/test_list_reports_a_broken_run0/results/x/20250101-000000/meta.json"


def comparison() -> Grid:
    return Grid(
        "placement-cifar10 · cifar10, mlp [64, 32] · run 20261127-101502",
        ["variant", "seeds", "final train loss", "final test acc %", "steps to target"],
        [
            [["plain", "(baseline)"], ["5"], ["1.6795 ± 0.0101"], ["41.23 ± 0.55"], ["step 9,200", "5/5 reached"]],
            [
                ["bn_before"],
                ["5"],
                [
                    "1.5847 ± 0.0062",
                    "Δ -0.0948 [-0.1939, +0.0042]",
                    "5 pairs, p=0.054 (Holm 0.11, 2 tests)",
                    "wins 5/5",
                ],
                ["44.87 ± 0.41", "Δ +3.64 [+2.91, +4.37]", "5 pairs, p=0.0002 (Holm 0.0004, 2 tests)", "wins 5/5"],
                ["1.47× [1.21, 1.78]", "5/5 reached"],
            ],
            [
                ["bn_after", "diverged: seed 3 at epoch 2"],
                ["4"],
                [
                    "1.6012 ± 0.0088",
                    "Δ -0.0783 [-0.1101, -0.0465]",
                    "4 pairs, p=0.003 (Holm 0.006, 2 tests)",
                    "wins 4/4",
                ],
                ["43.90 ± 0.62", "Δ +2.67 [+1.80, +3.54]", "4 pairs, p=0.001 (Holm 0.002, 2 tests)", "wins 4/4"],
                ["1.31× [1.10, 1.52]", "3/4 reached"],
            ],
        ],
        caption="Mean ± std over seeds at epoch 10 of 10. Δ = variant − plain on the same seed, its 95% t-interval, "
        "paired t-test p (Holm-adjusted over the variants compared), and seeds won. Steps to target: first "
        "step at which the training loss (mean of the last 200 batches) reaches plain's final train loss; "
        "speedup = plain's steps ÷ that step.",
        lead=[
            "Verdict: bn_before trains faster than plain (speedup 1.47× [1.21, 1.78], 5/5 seeds) and ends with "
            "higher test accuracy (Δ +3.64 [+2.91, +4.37], p=0.0002)."
        ],
    )


def broken_runs() -> Grid:
    return Grid(
        "Runs under /tmp/pytest-of-root/pytest-12/results",
        ["name", "run", "status", "error"],
        [
            [["x"], ["20250101-000000"], ["broken"], [PATH, "meta.json: Expecting value: line 1 column 1"]],
            [["y"], ["20250102-000000"], ["complete"], [""]],
        ],
        caption=f"One run could not be read: {PATH}.",
    )


GRIDS = {"comparison": comparison, "broken runs": broken_runs}


def texts(grid: Grid) -> list[str]:
    """Every piece of text the grid shows: title, lead, caption, header and cell lines."""
    return [grid.title, *grid.lead, grid.caption, *grid.header, *(line for row in grid.rows for c in row for line in c)]


def is_boxed(text: str) -> bool:
    return text.count("┏") == 1


# ---- tokens and wrap -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("p=0.04 (Holm, 3 tests)", ["p=0.04", "(Holm, 3 tests)"]),
        ("Δ +6.98 [+0.72, +13.24]", ["Δ", "+6.98", "[+0.72, +13.24]"]),
        ("a {b [c (d e) f] g} h", ["a", "{b [c (d e) f] g}", "h"]),  # nested
        ("x(a b)y  z", ["x(a b)y", "z"]),  # brackets inside a word; runs of spaces are one break
        ("", []),
        ("   ", []),
        ("(a b", ["(a", "b"]),  # unclosed: protects nothing, no text lost
        ("a b) c", ["a", "b)", "c"]),  # closed without opening
        ("(a [b c] d", ["(a", "[b c]", "d"]),  # the matched pair inside an unclosed one still holds
        ("(a] b)", ["(a] b)"]),  # a mismatched closer is ignored
        ("[red]x[/] y", ["[red]x[/]", "y"]),
    ],
)
def test_tokens(text, expected):
    assert tokens(text) == expected


def test_wrap_is_greedy_with_indent_and_hanging():
    text = "1.5847 ± 0.0062 · Δ -0.0948 [-0.1939, +0.0042]"
    assert wrap(text, 24, "- ", "    ") == ["- 1.5847 ± 0.0062 · Δ", "    -0.0948", "    [-0.1939, +0.0042]"]
    assert wrap(text, 24, "  ") == ["  1.5847 ± 0.0062 · Δ", "  -0.0948", "  [-0.1939, +0.0042]"]
    assert wrap("a b c", 3) == ["a b", "c"]  # a line may be exactly the width
    assert wrap("a b c", 5) == ["a b c"]


def test_wrap_gives_a_token_wider_than_the_line_a_line_of_its_own():
    assert wrap(f"error: {PATH} (read at start)", 40, "  ", "    ") == [
        "  error:",
        f"    {PATH}",
        "    (read at start)",
    ]
    assert wrap("abcdef gh", 3) == ["abcdef", "gh"]


def test_wrap_without_width_is_one_line_and_empty_text_no_lines():
    long = " ".join(["word"] * 100)
    assert wrap(long, None, "> ") == ["> " + long]
    assert wrap("", 10, "  ") == [] and wrap("   ", None) == []


def test_wrap_counts_terminal_cells_not_characters():
    assert wrap("界界 ab", 6) == ["界界", "ab"]  # 界 is two cells wide: "界界 ab" needs 7
    assert wrap("±± ab", 5) == ["±± ab"]


@given(
    st.lists(st.sampled_from(["a", "bb", "Δ", "(x y)", "[+0.72, +13.24]", "loooooooooong", "±", "界"]), max_size=30),
    st.integers(1, 30),
    st.sampled_from(["", "  "]),
    st.sampled_from(["", "    "]),
)
def test_wrap_keeps_tokens_whole_in_order_and_within_width(words, width, indent, hanging):
    lines = wrap(" ".join(words), width, indent, hanging)
    assert [t for line in lines for t in tokens(line)] == tokens(" ".join(words))
    for i, line in enumerate(lines):
        assert line.startswith(hanging if i else indent) and line == line.rstrip()
        assert cell_len(line) <= width or len(tokens(line)) == 1


# ---- natural width and the choice of layout -------------------------------------------------------------------


@pytest.mark.parametrize("name", GRIDS)
def test_natural_width_is_the_boxed_tables_width(name):
    grid = GRIDS[name]()
    # by hand: each column as wide as its widest line plus 1 space of padding each side, plus a border per column + 1
    columns = [[h, *(line for row in grid.rows for line in row[i])] for i, h in enumerate(grid.header)]
    assert natural_width(grid) == sum(max(map(cell_len, c)) + 3 for c in columns) + 1
    table = [line for line in render(grid, None).splitlines() if line[:1] in "┏┃┡│├└"]
    assert {cell_len(line) for line in table} == {natural_width(grid)}


def test_sample_grid_widths():
    assert natural_width(comparison()) == 144
    assert natural_width(broken_runs()) == 137


@pytest.mark.parametrize("name", GRIDS)
def test_the_box_is_used_exactly_when_it_fits(name):
    grid = GRIDS[name]()
    n = natural_width(grid)
    fits, too_narrow = render(grid, n), render(grid, n - 1)
    assert is_boxed(fits) and not is_boxed(too_narrow)
    assert is_boxed(render(grid, None))
    assert all(cell_len(line) <= n for line in fits.splitlines())
    # the box at its natural width is the box drawn without a width: only title, lead and caption wrap differently
    assert [line for line in fits.splitlines() if line[:1] in "┏┃┡│├└"] == [
        line for line in render(grid, None).splitlines() if line[:1] in "┏┃┡│├└"
    ]


@pytest.mark.parametrize(
    "width, boxed", [(60, False), (80, False), (120, False), (143, False), (144, True), (200, True)]
)
@pytest.mark.parametrize("name", GRIDS)
def test_every_width_keeps_lines_within_it_and_tokens_whole(name, width, boxed):
    grid = GRIDS[name]()
    text = render(grid, width)
    lines = text.splitlines()
    assert is_boxed(text) == (natural_width(grid) <= width)
    if name == "comparison":
        assert is_boxed(text) == boxed
    for line in lines:
        assert line == line.rstrip()
        if cell_len(line) > width:  # only a token wider than the line, alone on it
            assert line.strip() in (PATH, PATH + ".") and len(line) - len(line.lstrip()) <= 4
    shown = texts(grid) if is_boxed(text) else [p for p in texts(grid) if p != grid.header[0]]  # records: no "variant:"
    for piece in shown:
        for token in tokens(piece):
            assert any(token in line for line in lines), (token, width)
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_long_path_gets_a_line_of_its_own_when_narrow():
    lines = render(broken_runs(), 80).splitlines()
    assert f"    {PATH}" in lines
    assert f"{PATH}." in lines  # the caption's path, with the full stop that ends the sentence
    assert lines[lines.index("  error:") + 2] == "    · meta.json: Expecting value: line 1 column 1"  # lines joined


def test_without_width_nothing_wraps():
    grid = comparison()
    lines = render(grid, None).splitlines()
    assert lines[0] == grid.title and lines[1] == grid.lead[0] and lines[-1] == grid.caption
    for row in grid.rows:
        for cell in row:
            for line in cell:
                assert any(f"│ {line} " in out for out in lines), line


# ---- the compact layout -----------------------------------------------------------------------------------------


def test_compact_layout_reads_as_records():
    grid = Grid(
        "t [a, b]",
        ["variant", "seeds", "loss", "steps"],
        [
            [["plain", "(baseline)"], ["5"], ["1.6795 ± 0.0101"], []],
            [["bn"], ["5"], ["1.5847 ± 0.0062", "Δ -0.0948 [-0.1939, +0.0042]", "wins 5/5"], [""]],
        ],
        caption="Mean ± std over seeds at epoch 10 of 10.",
        lead=["Verdict: bn is faster (1.47× [1.21, 1.78])."],
    )
    assert render(grid, 34) == (
        "t [a, b]\n"
        "Verdict: bn is faster\n"
        "  (1.47× [1.21, 1.78]).\n"
        "\n"
        "plain (baseline)\n"
        "  seeds: 5\n"
        "  loss: 1.6795 ± 0.0101\n"  # the empty steps cells are left out
        "\n"
        "bn\n"
        "  seeds: 5\n"
        "  loss: 1.5847 ± 0.0062 ·\n"  # a cell's lines stay whole where they fit
        "    Δ -0.0948 [-0.1939, +0.0042] ·\n"
        "    wins 5/5\n"
        "\n"
        "Mean ± std over seeds at epoch 10\n"
        "of 10.\n"
    )


def test_parts_between_separators_stay_together_and_long_asides_wrap():
    assert wrap("a b; c d e; f", 8, "", "  ", "; ") == ["a b;", "  c d e;", "  f"]
    assert wrap("x; y", None, sep="; ") == ["x; y"]
    aside = "(" + " ".join(["word"] * 10) + ")"  # 51 characters: prose, not a group kept whole
    assert max(map(len, wrap(f"see {aside} here", 20))) <= 20
    assert tokens("p=0.04 (Holm p=0.12, 3 tests)") == ["p=0.04", "(Holm p=0.12, 3 tests)"]


def test_grid_without_rows_keeps_title_and_caption():
    grid = Grid("Runs under /tmp/results", ["name", "run", "status"], [], caption="No runs yet.")
    assert render(grid, 10) == "Runs under\n/tmp/results\n\nNo runs\nyet.\n"
    wide = render(grid, 80).splitlines()
    assert wide[0] == "Runs under /tmp/results" and wide[-1] == "No runs yet." and is_boxed("\n".join(wide))


@pytest.mark.parametrize("width", [None, 12, 80])
def test_markup_like_text_prints_literally(width):
    grid = Grid(
        "[bold]t[/]",
        ["[b]name[/b]", "value"],
        [[["[red]x[/]"], ["[+0.72, +13.24]", ":warning:"]]],
        caption="[dim]c[/dim]",
    )
    text = render(grid, width)
    for piece in [
        "[bold]t[/]",
        "[b]name[/b]" if is_boxed(text) else "[red]x[/]",
        "[red]x[/]",
        "[+0.72, +13.24]",
        ":warning:",
        "[dim]c[/dim]",
    ]:
        assert piece in text
    assert "\x1b" not in text


LIST_HEADER = ["run", "status", "verdict", "options"]
LIST_ROWS = [
    ["toy/20261206-170053", "complete", "batchnorm better", "--set training.epochs=5 --seeds 0-9"],
    ["toy/20261205-090000", "partial", "—", ""],
]
ALL_COLUMNS = [
    "run                    status  verdict           options",
    "toy/20261206-170053  complete  batchnorm better  --set training.epochs=5 --seeds 0-9",
    "toy/20261205-090000   partial  —",
]
NO_OPTIONS = [
    "run                    status  verdict",
    "toy/20261206-170053  complete  batchnorm better",
    "toy/20261205-090000   partial  —",
]


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("width, lines", [(120, ALL_COLUMNS), (80, NO_OPTIONS), (60, NO_OPTIONS)])
def test_laid_out_leaves_columns_out_while_too_wide(width, lines, cut):
    shown = LIST_HEADER if lines is ALL_COLUMNS else LIST_HEADER[:-1]
    assert laid_out(LIST_HEADER, LIST_ROWS, width, [["options"]], {"status"}, cut) == (lines, shown)


def test_laid_out_then_cuts_the_last_column_or_reads_as_records():
    cut = ["run                    status  verdict", "toy/20261206-170053  complete  batchnor…", NO_OPTIONS[2]]
    assert laid_out(LIST_HEADER, LIST_ROWS, 40, [["options"]], {"status"}, cut=True) == (cut, LIST_HEADER[:-1])
    assert laid_out(LIST_HEADER, LIST_ROWS, 40, [["options"]], {"status"}) == (
        [
            "run: toy/20261206-170053 ·",
            "  status: complete ·",
            "  verdict: batchnorm better ·",
            "  options: --set training.epochs=5",
            "  --seeds 0-9",
            "run: toy/20261205-090000 ·",
            "  status: partial · verdict: —",
        ],
        LIST_HEADER,
    )
    assert laid_out(LIST_HEADER, LIST_ROWS, None, [["options"]]) == (  # no width: every column, left-aligned
        [
            "run                  status    verdict           options",
            "toy/20261206-170053  complete  batchnorm better  --set training.epochs=5 --seeds 0-9",
            "toy/20261205-090000  partial   —",
        ],
        LIST_HEADER,
    )
