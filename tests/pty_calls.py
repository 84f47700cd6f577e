"""The `bnbench` command on a real pseudo-terminal of 24 x 80 that is its controlling terminal, for the tests of
what a user sees (as cli_calls is for what CliRunner sees): its exit status and every byte it wrote."""

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from test_interrupts import _take_terminal
from test_progress_terminal import ANSI

ROWS, COLUMNS = 24, 80


def on_terminal(*args, stop_when=None, press: bytes = b"\x03", cwd=None, within: float = 120) -> tuple[int, str]:
    """`python -m bnbench ARGS` on the terminal; `press` typed (Ctrl-C by default) once `stop_when(output so far)`
    holds. The exit status and everything it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    drop = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", *map(str, args)],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env | {"TERM": "xterm-256color"},
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    chunks, stopped, deadline = [], False, time.monotonic() + within
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
                os.write(master, press)
                stopped = True
        else:
            pytest.fail(f"not ended within {within} s:\n{b''.join(chunks).decode(errors='replace')[-3000:]}")
        return process.wait(within), b"".join(chunks).decode(errors="replace")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(master)


def printed(*args, cwd=None) -> list[str]:
    """The lines a command that must succeed printed on the terminal (colours and carriage returns left out)."""
    code, output = on_terminal(*args, cwd=cwd)
    assert code == 0, output
    lines = ANSI.sub("", output).replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines
