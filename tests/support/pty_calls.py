"""The `bnbench` command on a real pseudo-terminal of 24 x 80 that is its controlling terminal, for the tests of
what a user sees (as cli_calls is for what CliRunner sees): its exit status and every byte it wrote."""

import os
import select
import signal
import time

import pytest

from support.screen import ANSI
from support.terminal import start_on_terminal


def on_terminal(*args, stop_when=None, press: bytes = b"\x03", cwd=None, within: float = 120) -> tuple[int, str]:
    """`python -m bnbench ARGS` on the terminal; `press` typed (Ctrl-C by default) once `stop_when(output so far)`
    holds. The exit status and everything it wrote."""
    drop = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    process, master = start_on_terminal(args, env, cwd)
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
