"""The live display as a user sees it: `bnbench run --jobs 2` on a real pseudo-terminal of 24 x 80, its output
replayed by a small terminal emulator (`Screen`).

Every line drawn fits the 80 columns (a full one would be wrapped by the `^C` the terminal echoes), no count is
cut to `6336/4…`, every bar has its label, no rate explodes (`1,509,797 batch/s` between epochs), and when the
run ends, normally or by Ctrl-C, no bar is left on the screen or in its scrollback. Also, without a terminal:
the layout at 60 and 80 columns for a large run, and rates from updates that come in a burst.
"""

import fcntl
import io
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len
from rich.console import Console
from test_interrupts import _take_terminal  # the child's terminal set-up, as the Ctrl-C tests make it

from bnbench.engines.events import Progress
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import expand
from bnbench.views.progress import Rate, RichReporter

ROWS, COLUMNS = 24, 80
REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "name": "t-digits",
    "seeds": [0, 1],
    "dataset": {"name": "digits"},
    "device": "cpu",
    "optimizer": {"name": "adam", "lr": 1.0e-3},
    "training": {"epochs": 2, "batch_size": 16, "log_every": 20},
}
BAR = re.compile("[━╸╺]")  # rich's bar glyphs: nothing else bnbench prints has them
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
RATE = re.compile(r"([\d,]+)(k?) (?:batch|steps)/s")
MAX_RATE = 100_000  # steps/s: far above what digits trains at on a CPU
ENDS_WITHIN = 60  # seconds


class Screen:
    """Just enough of a terminal for what rich writes: printable characters (with the pending wrap at the last
    column), CR, LF, BS and the CSI sequences for the cursor (A, B, C, D, G) and erasing (K, J); colours and
    modes are ignored. `lines` holds the scrollback and the screen: what a user can scroll back to."""

    def __init__(self, rows: int = ROWS, columns: int = COLUMNS):
        self.rows, self.columns = rows, columns
        self.lines: list[list[str]] = [[]]
        self.row = self.col = 0
        self.pending = False  # the cursor sits past the last column: the next character wraps
        self.wraps = 0  # lines the terminal wrapped (a program's line wider than the terminal)

    @property
    def top(self) -> int:
        """The first line of the screen; the cursor cannot go up past it."""
        return max(0, len(self.lines) - self.rows)

    def feed(self, text: str) -> None:
        for match in re.finditer(r"\x1b\[([0-9;?]*)([ -/]*[@-~])|\x1b[()][0-9A-Za-z]|\x1b.|[\s\S]", text):
            token = match.group(0)
            if match.group(2) is not None:
                self._csi(match.group(1), match.group(2))
            elif token.startswith("\x1b"):
                continue
            elif token == "\r":
                self.col, self.pending = 0, False
            elif token == "\n":
                self._down()
            elif token == "\b":
                self.col, self.pending = max(0, self.col - 1), False
            elif token >= " ":
                self._put(token)

    def _down(self) -> None:
        self.row += 1
        self.pending = False
        if self.row == len(self.lines):
            self.lines.append([])

    def _put(self, char: str) -> None:
        width = cell_len(char)
        if width == 0:
            return
        if self.pending:
            self.wraps += 1
            self.col = 0
            self._down()
        line = self.lines[self.row]
        line.extend(" " * (self.col + width - len(line)))
        line[self.col] = char
        for i in range(1, width):
            line[self.col + i] = ""
        self.col += width
        if self.col >= self.columns:
            self.col, self.pending = self.columns - 1, True

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # ?25l / ?25h: the cursor hidden, shown
        numbers = [int(n) if n else 0 for n in params.split(";")] if params else []
        n = numbers[0] if numbers else 0
        line = self.lines[self.row]
        if final in "ABCDG":
            self.pending = False
        if final == "A":
            self.row = max(self.top, self.row - max(n, 1))
        elif final == "B":
            for _ in range(max(n, 1)):
                self._down()
        elif final == "C":
            self.col = min(self.columns - 1, self.col + max(n, 1))
        elif final == "D":
            self.col = max(0, self.col - max(n, 1))
        elif final == "G":
            self.col = min(self.columns - 1, max(n, 1) - 1)
        elif final == "K":
            if n == 0:
                del line[self.col :]
            elif n == 1:
                line[: self.col + 1] = " " * min(len(line), self.col + 1)
            else:
                line.clear()
        elif final == "J":
            if n == 0:
                del line[self.col :]
                del self.lines[self.row + 1 :]
            elif n in (2, 3):
                for i in range(self.top, len(self.lines)):
                    self.lines[i] = []

    def text(self) -> list[str]:
        return ["".join(line).rstrip() for line in self.lines]


def run_on_terminal(tmp_path: Path, epochs: int, stop_when=None, presses: int = 1) -> tuple[int, str]:
    """`python -m bnbench run <config> --jobs 2 --out <tmp>` on a pseudo-terminal of 24 x 80 that is its
    controlling terminal; Ctrl-C is typed (`presses` times at once) once `stop_when(output so far)` holds. The
    exit status and all of the output (the terminal's `^C` echo included)."""
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "training": {**CONFIG["training"], "epochs": epochs}}))
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", "run", str(config), "--jobs", "2", "--out", str(tmp_path / "out")],
        cwd=REPO,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env | {"TERM": "xterm-256color"},
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    chunks, stopped, deadline = [], False, time.monotonic() + ENDS_WITHIN
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: no process holds the terminal any more
                    break
                if not data:
                    break
                chunks.append(data)
            if stop_when and not stopped and stop_when(b"".join(chunks).decode(errors="replace")):
                for _ in range(presses):
                    os.write(master, b"\x03")  # the terminal sends SIGINT to its foreground process group
                stopped = True
        else:
            pytest.fail(f"the run did not end within {ENDS_WITHIN} s:\n{b''.join(chunks).decode()[-3000:]}")
        return process.wait(ENDS_WITHIN), b"".join(chunks).decode(errors="replace")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(master)


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
