"""`python -m bnbench ARGS` on a pseudo-terminal of its own, as a user runs it, and the ways a user or a scheduler
stops it (Ctrl-C, SIGTERM, paused, twice): for the tests that stop runs (runner/test_interrupts, backends/test_ray)
and those that show what a terminal shows (pty_calls)."""

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from support.screen import COLUMNS, ROWS

ENDS_WITHIN = 30  # seconds: a stop that takes longer hangs (it used to, for ever)
PAUSE = 3.0  # seconds the main process is paused before a stop, while its workers fill their pipes


class Terminal:
    """`python -m bnbench ARGS` on a pseudo-terminal of 24 x 80 that is its controlling terminal, in a session
    of its own: the live display is on, and Ctrl-C reaches the whole foreground process group (the main process,
    its workers, the verdict process), as a user's does."""

    def __init__(self, *args, env: Optional[dict] = None):
        env = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES")}
        self.process, self.master = start_on_terminal(args, env)
        self.chunks = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        """Everything the terminal shows, until no process holds it any more."""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the last process on the terminal is gone
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal sends SIGINT to its foreground process group

    def signal_group(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)

    def showing(self, text: str) -> bool:
        return text in self.output

    def ended(self) -> int:
        """The exit status, once the main process and everything else on the terminal are gone; a stop that
        takes longer than ENDS_WITHIN seconds fails."""
        try:
            code = self.process.wait(ENDS_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not end within {ENDS_WITHIN} s of its stop:\n{self.output[-3000:]}")
        self.reader.join(ENDS_WITHIN)
        assert not self.reader.is_alive(), f"a process outlived the run on its terminal:\n{self.output}"
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        """What a failed test left running on the terminal is killed."""
        if self.process.poll() is None or self.reader.is_alive():
            kill_session(self.process.pid)
        self.reader.join(5)
        os.close(self.master)


def start_on_terminal(args, env: dict, cwd=None) -> tuple[subprocess.Popen, int]:
    """`python -m bnbench ARGS` on a new pseudo-terminal of ROWS x COLUMNS that is its controlling terminal, in a
    session of its own, with `env` (and TERM=xterm-256color): the process, and the terminal's end to read what it
    shows and to type into."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", *map(str, args)],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env | {"TERM": "xterm-256color"},
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    return process, master


def take_terminal() -> None:
    """In the child, before exec: SIGINT back to its default (a test run in the background inherits it ignored),
    and the pseudo-terminal as its controlling terminal (its session is new). NOFLSH: a terminal drops what it
    has not shown yet when Ctrl-C is typed; a terminal emulator shows output at once, this test's reader thread
    may be a moment late under load, and a second Ctrl-C would drop a line the run did print."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    attributes = termios.tcgetattr(0)
    attributes[3] |= termios.NOFLSH
    termios.tcsetattr(0, termios.TCSANOW, attributes)


def kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def children(pid: int) -> list[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone meanwhile
        return ""


def workers_of(pid: int) -> list[int]:
    """The --jobs workers of a run: its children but the verdict process."""
    return [p for p in children(pid) if comm(p) != "bnbench-verdict"]


# ---- ways to stop a run: each returns the exit status and the message it must end with -----------------------


def ctrl_c(terminal: Terminal) -> tuple[int, str]:
    terminal.ctrl_c()
    return 130, "interrupted"


def paused_ctrl_c(terminal: Terminal) -> tuple[int, str]:
    """The main process stops reading its workers' pipes for 3 s (as under load, or stopped in a debugger),
    then Ctrl-C: the workers had filled the pipes and wait to send more (it hung 4 of 4 times)."""
    pid = terminal.process.pid
    os.kill(pid, signal.SIGSTOP)
    time.sleep(PAUSE)
    terminal.ctrl_c()
    os.kill(pid, signal.SIGCONT)
    return 130, "interrupted"


def sigterm(terminal: Terminal) -> tuple[int, str]:
    """To the whole process group, as Slurm sends it to a job step."""
    terminal.signal_group(signal.SIGTERM)
    return 143, "terminated (SIGTERM)"


def paused_sigterm(terminal: Terminal) -> tuple[int, str]:
    pid = terminal.process.pid
    os.kill(pid, signal.SIGSTOP)
    time.sleep(PAUSE)
    terminal.signal_group(signal.SIGTERM)
    os.kill(pid, signal.SIGCONT)
    return 143, "terminated (SIGTERM)"


def sigterm_to_main(terminal: Terminal) -> tuple[int, str]:
    """To the main process alone, as Kubernetes sends it to a container's first process."""
    terminal.process.send_signal(signal.SIGTERM)
    return 143, "terminated (SIGTERM)"


def ctrl_c_twice(terminal: Terminal, apart: float = 0.15) -> tuple[int, str]:
    """An impatient user: the second Ctrl-C lands while the first is handled, or as the process exits (it used
    to print two tracebacks ending in stopping.Terminated)."""
    terminal.ctrl_c()
    time.sleep(apart)
    terminal.ctrl_c()
    return 130, "interrupted"


def ctrl_c_during_the_stop(terminal: Terminal) -> tuple[int, str]:
    """A worker is stopped (SIGSTOP), so ending the workers takes seconds (SIGTERM waits on a stopped process;
    it is then killed): the second Ctrl-C surely lands in the middle of the stop."""
    os.kill(workers_of(terminal.process.pid)[0], signal.SIGSTOP)
    terminal.ctrl_c()
    time.sleep(1.0)
    terminal.ctrl_c()
    return 130, "interrupted"


def ctrl_c_then_sigterm(terminal: Terminal) -> tuple[int, str]:
    terminal.ctrl_c()
    time.sleep(0.3)
    terminal.signal_group(signal.SIGTERM)
    return 130, "interrupted"


def paused_ctrl_c_twice(terminal: Terminal) -> tuple[int, str]:
    paused_ctrl_c(terminal)
    time.sleep(0.05)
    terminal.ctrl_c()
    return 130, "interrupted"


def stop_cleanly(terminal: Terminal, run_dir: Path, how: Callable[[Terminal], tuple[int, str]]) -> None:
    """Stop the run on `terminal` as `how` says: it must end within seconds, with the exit status and message
    for the signal, the resume command and no traceback, and meta.json must say partial."""
    code, said = how(terminal)
    assert terminal.ended() == code, terminal.output[-3000:]
    output = terminal.output
    assert said in output and f"Resume with:\r\n  bnbench run --resume {run_dir}" in output, output[-3000:]
    for broken in ("Traceback", "Exception ignored", "Aborted"):
        assert broken not in output, output
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
