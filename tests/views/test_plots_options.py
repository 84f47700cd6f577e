"""`compare --plot` options on a real 1-epoch digits run: a name without an extension, --title, --dpi, one colour
per variant whatever the order, and the x axis of a short run."""

import pytest
from matplotlib.colors import to_hex
from support.cli_calls import invoke

from bnbench.analysis import compare_runs
from bnbench.views.plots import BASELINE_COLOUR, COLOURS, page


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    result = invoke("run", "quick", "--set", "training.epochs=1", "--seeds", "0,1", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (out / "quick-digits").iterdir()
    return run_dir


def png_size(path):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_a_name_without_extension_becomes_png_and_dpi_scales_it(run_dir, tmp_path):
    result = invoke("compare", run_dir, "--plot", tmp_path / "figure", "-f", "csv")
    assert result.exit_code == 0 and f"plot: {tmp_path / 'figure.png'}\n" in result.stderr
    assert png_size(tmp_path / "figure.png") == (1430, 506)  # 13 x 4.6 inches at 110 dpi
    assert invoke("compare", run_dir, "--plot", tmp_path / "small.png", "--dpi", 55).exit_code == 0
    assert png_size(tmp_path / "small.png") == (715, 253)
    result = invoke("compare", run_dir, "--plot", tmp_path / "figure.jpg")
    assert result.exit_code == 2 and result.stderr == (
        f"error: --plot {tmp_path / 'figure.jpg'}: unknown format '.jpg'; use .png, .pdf or .svg\n"
    )
    assert invoke("compare", run_dir, "--plot", tmp_path / "f.png", "--dpi", 5000).exit_code == 2


def test_title_replaces_the_run_title(run_dir, tmp_path):
    assert invoke("compare", run_dir, "--plot", tmp_path / "f.svg", "--title", "BN on digits").exit_code == 0
    svg = (tmp_path / "f.svg").read_text()
    assert "BN on digits" in svg and f"run {run_dir.name}" not in svg  # matplotlib writes each text as a comment
    assert invoke("compare", run_dir, "--plot", tmp_path / "g.svg").exit_code == 0
    assert f"run {run_dir.name}" in (tmp_path / "g.svg").read_text()


@pytest.mark.parametrize("baseline", ["plain", "batchnorm"])
def test_the_baseline_is_always_black_and_other_variants_keep_their_order(run_dir, baseline):
    (comparison,), _ = compare_runs([run_dir], baseline=baseline)
    loss = page([comparison], None).subfigs[0].axes[0]
    colours = {
        line.get_label().removesuffix(" (baseline)"): to_hex(line.get_color())
        for line in loss.get_lines()
        if not line.get_label().startswith("target")
    }
    other = "batchnorm" if baseline == "plain" else "plain"
    assert colours == {baseline: to_hex(BASELINE_COLOUR), other: to_hex(COLOURS[0])}


def test_a_one_epoch_run_has_round_step_ticks_from_zero(run_dir):
    (comparison,), _ = compare_runs([run_dir])
    for ax in page([comparison], None).subfigs[0].axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert (low, high) == (0, 144)  # 1 epoch of 144 steps
        step = ticks[1] - ticks[0]  # round steps from zero, never crowded (9 ticks on the loss panel, 5 beside)
        assert ticks[0] == 0 and step in (20, 25, 50) and ticks == [step * i for i in range(len(ticks))]
        assert len(ticks) <= 10


def test_a_run_where_every_trial_diverged_is_drawn_empty(tmp_path):
    """No curve to draw (every trial's loss became inf): empty panels from step 0 to 1, not a TypeError."""
    out = tmp_path / "results"
    diverging = ["--set", "optimizer.name=sgd", "--set", "optimizer.lr=1e12"]
    result = invoke("run", "quick", "--set", "training.epochs=1", *diverging, "--seeds", "0", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (out / "quick-digits").iterdir()
    result = invoke("compare", run_dir, "--plot", tmp_path / "diverged.png", "-f", "csv")
    assert result.exit_code == 0 and f"plot: {tmp_path / 'diverged.png'}\n" in result.stderr
    (comparison,), _ = compare_runs([run_dir])
    assert [ax.get_xlim() for ax in page([comparison], None).subfigs[0].axes[:2]] == [(0, 1), (0, 1)]
