"""The live display as a user sees it: `bnbench run --jobs 2` on a real pseudo-terminal of 24 x 80, its output
replayed by a small terminal emulator (`Screen`).

Every line drawn fits the 80 columns (a full one would be wrapped by the `^C` the terminal echoes), no count is
cut to `6336/4…`, every bar has its label, no rate explodes (`1,509,797 batch/s` between epochs), and when the
run ends, normally or by Ctrl-C, no bar is left on the screen or in its scrollback. Also, without a terminal:
the layout at 60 and 80 columns for a large run, and rates from updates that come in a burst.
"""

import io
import re
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len
from rich.console import Console
from support.configs import tiny_config
from support.pty_calls import on_terminal
from support.screen import ANSI, COLUMNS, Screen

from bnbench.engines.events import Progress
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand
from bnbench.views.progress import Rate, RichReporter

REPO = Path(__file__).resolve().parents[2]
CONFIG = tiny_config()
BAR = re.compile("[━╸╺]")  # rich's bar glyphs: nothing else bnbench prints has them
RATE = re.compile(r"([\d,]+)(k?) (?:batch|steps)/s")
MAX_RATE = 100_000  # steps/s: far above what digits trains at on a CPU
ENDS_WITHIN = 60  # seconds


def run_on_terminal(tmp_path: Path, epochs: int, stop_when=None, presses: int = 1) -> tuple[int, str]:
    """`python -m bnbench run <config> --jobs 2 --out <tmp>` on a pseudo-terminal of 24 x 80 that is its
    controlling terminal; Ctrl-C is typed (`presses` times at once) once `stop_when(output so far)` holds. The
    exit status and all of the output (the terminal's `^C` echo included)."""
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "training": {**CONFIG["training"], "epochs": epochs}}))
    run = ("run", config, "--jobs", "2", "--out", tmp_path / "out")
    return on_terminal(*run, stop_when=stop_when, press=b"\x03" * presses, cwd=REPO, within=ENDS_WITHIN)


def drawn_lines(output: str) -> list[str]:
    """Each line as drawn: the output cut at CR and LF, without its escape sequences (and the `^C` echo). Left
    out: the lines `bnbench run` prints whole after the display has gone (`done:`, `next:`, `interrupted;` and
    the command that resumes the run, each with a path to copy), which the terminal wraps."""
    lines = [ANSI.sub("", part).replace("^C", "") for part in re.split(r"[\r\n]", output)]
    return [line for line in lines if not re.match(r"done: |next: |interrupted; |  bnbench run --resume ", line)]


def replay(output: str) -> Screen:
    """The output on a `Screen`: up to the display's end (the cursor shown again) the terminal wraps no line."""
    screen, end = Screen(), output.rindex("\x1b[?25h")
    screen.feed(output[:end])
    assert screen.wraps == 0, "\n".join(screen.text())
    screen.feed(output[end:])
    return screen


def bar_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if BAR.search(line)]


def check_frames(output: str) -> list[str]:
    """What every frame of the live display must be; its bar lines."""
    lines = drawn_lines(output)
    too_wide = [line for line in lines if cell_len(line) > COLUMNS]
    assert not too_wide, too_wide
    bars = bar_lines(lines)
    assert bars, output[-3000:]
    assert not [line for line in bars if "…" in line]  # nothing cut: not `6336/4…`
    assert not [line for line in bars if not line.split(BAR.search(line).group(0))[0].strip()]  # labelled
    assert all(cell_len(line.rstrip()) <= COLUMNS - 4 for line in bars)  # room for the echo of ^C^C
    rates = [int(n.replace(",", "")) * (1000 if k else 1) for line in bars for n, k in RATE.findall(line)]
    assert max(rates, default=0) <= MAX_RATE, [line for line in bars if RATE.search(line)]
    return bars


@pytest.mark.slow
def test_a_run_draws_within_80_columns_and_leaves_no_bar(tmp_path):
    code, output = run_on_terminal(tmp_path, epochs=2)
    assert code == 0, output[-3000:]
    bars = check_frames(output)
    assert any(re.match(r"batchnorm-s\d epoch \d/2 ", line) for line in bars)  # the trials' labels
    assert any(line.startswith("run: ") for line in bars)
    screen = replay(output)
    shown = screen.text()
    assert not bar_lines(shown), "\n".join(shown)  # nor in the scrollback
    assert any(line.startswith("batchnorm vs plain: ") for line in shown)
    assert any(line.startswith("done: ") for line in shown)
    verdict = shown[
        next(i for i, line in enumerate(shown) if line.startswith("batchnorm vs plain: ")) : next(
            i for i, line in enumerate(shown) if line.startswith("done: ")
        )
    ]
    assert all(line.count("[") == line.count("]") for line in verdict), verdict  # no interval split over lines


@pytest.mark.parametrize("presses", [1, 2])
@pytest.mark.slow
def test_ctrl_c_leaves_no_bar(tmp_path, presses):
    """Ctrl-C, once or twice in a row, while the trials' bars are drawn: the terminal echoes `^C` (`^C^C`) at
    the end of the last one, and a line it wraps would leave the run's bar behind."""
    code, output = run_on_terminal(
        tmp_path, epochs=30, stop_when=lambda out: re.search(r"loss \d", out), presses=presses
    )
    assert code == 130, output[-3000:]
    check_frames(output)
    screen = replay(output)
    shown = screen.text()
    assert not bar_lines(shown), "\n".join(shown)  # the last frame left, and the scrollback
    assert any(line.startswith("interrupted; nothing finished is lost") for line in shown), "\n".join(shown)
    assert "Traceback" not in output


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_large_run_fits_narrow_terminals(tmp_path, width):
    """CIFAR-sized counts (a run total of 6 digits) and long labels: every column whole, within the width."""
    config = validate(
        {
            "name": "p",
            "seeds": list(range(10)),
            "dataset": {"name": "digits"},
            "variants": [{"name": "batchnorm-resnet", "norm": "batchnorm"}, {"name": "plain-resnet", "norm": "none"}],
            "training": {"epochs": 30, "batch_size": 128},
        },
        "p.yaml",
    )
    trials = expand(config)
    out = io.StringIO()
    with RichReporter(Console(file=out, force_terminal=True, width=width)) as reporter:
        reporter.started(tmp_path, trials, {}, train_size=50_000)  # 391 steps an epoch
        reporter.progress(Progress(trial=19, epoch=30, batch=390, batches=391, running_loss=12345.6789))
        reporter.progress(Progress(trial=0, epoch=1, batch=3, batches=391, running_loss=2.3))
        frame = [
            "".join(segment.text for segment in line)
            for line in reporter.console.render_lines(reporter.bar.get_renderable(), pad=False)
        ]
    assert len(frame) == 3 and all(cell_len(line) <= width - 4 for line in frame), frame
    assert not [line for line in frame if "…" in line], frame
    label = "plain-resnet-s9 epoch 30/30 " if width >= 80 else "plain-resnet-s9 e30/30 "  # short when narrow
    assert "/234600" in frame[0] and frame[1].startswith(label) and "390/391" in frame[1]
    assert ("loss 1.2e+04" in frame[1]) == (width >= 80)


def test_a_burst_of_updates_makes_no_absurd_rate():
    """Updates read at once from a worker's pipe, and an epoch's end: no rate until 1 s has passed, then steps
    over the window's seconds."""
    rate = Rate()
    assert rate.add(0.0, 0) is None
    assert rate.add(0.000001, 20) is None and rate.add(0.000002, 40) is None  # a burst: no rate
    assert rate.add(2.0, 60) == pytest.approx(30)
    assert rate.add(2.000001, 80) == pytest.approx(40, rel=1e-3)  # bounded by the window's span
    for second in range(3, 30):
        last = rate.add(float(second), 80 + 10 * (second - 2))
    assert last == pytest.approx(10)
