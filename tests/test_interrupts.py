"""A stopped run ends within seconds, cleanly, and resumes exactly; nothing hangs.

`bnbench run --jobs 2` runs on a pseudo-terminal of its own, as in an 80-column tmux pane (the live display on),
and is stopped again and again: Ctrl-C (the terminal's, to the whole foreground process group), SIGTERM (to the
group, as Slurm sends it, or to the main process alone, as Kubernetes does), with the main process paused for 3 s
first while its workers fill their pipes, twice in a row, and with a worker stopped so that the second Ctrl-C
comes while the first is still being handled. Each stop must end the run within seconds, with exit status 130
(143 for SIGTERM), the resume command and no traceback, and leave no process behind on the terminal; each chain of
stops, in a fresh run, a resumed one and a grow (`--seeds`), must end, resumed, with the files of a run that never
stopped. Also: a model factory that sets its own thread count trains in --jobs workers (it used to hang them in
their first convolution), and the verdict process of a killed run prints nothing.
"""

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
import torch
import yaml

CONFIG = {
    "name": "stops",
    "seeds": [0, 1],
    "dataset": {"name": "digits"},
    "device": "cpu",
    "optimizer": {"name": "adam", "lr": 1.0e-3},
    "training": {"epochs": 3, "batch_size": 8, "log_every": 0, "eval_every": 100},
}
GROWN = "0-2"  # every chain grows its run to these seeds, at one of its stops
FILES = ("batches.csv", "epochs.csv", "evals.csv")
ENDS_WITHIN = 30  # seconds: a stop that takes longer hangs (it used to, for ever)
PAUSE = 3.0  # seconds the main process is paused before a stop, while its workers fill their pipes


class Terminal:
    """`python -m bnbench ARGS` on a pseudo-terminal of 80 columns that is its controlling terminal, in a session
    of its own: the live display is on, and Ctrl-C reaches the whole foreground process group (the main process,
    its workers, the verdict process), as a user's does."""

    def __init__(self, *args, env: Optional[dict] = None):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bnbench", *map(str, args)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env | {"TERM": "xterm-256color"},
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.master, self.chunks = master, []
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
            _kill_session(self.process.pid)
        self.reader.join(5)
        os.close(self.master)


def _take_terminal() -> None:
    """In the child, before exec: SIGINT back to its default (a test run in the background inherits it ignored),
    and the pseudo-terminal as its controlling terminal (its session is new). NOFLSH: a terminal drops what it
    has not shown yet when Ctrl-C is typed; a terminal emulator shows output at once, this test's reader thread
    may be a moment late under load, and a second Ctrl-C would drop a line the run did print."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    attributes = termios.tcgetattr(0)
    attributes[3] |= termios.NOFLSH
    termios.tcsetattr(0, termios.TCSANOW, attributes)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def finish(*args, timeout: float = 600) -> str:
    """`python -m bnbench ARGS` to its end, in a session of its own: its output; one that has not ended within
    `timeout` seconds hangs, and fails (its processes are killed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(process.pid)
        pytest.fail(f"bnbench {' '.join(map(str, args))}: still running after {timeout} s")
    assert process.returncode == 0, output
    return output


def rows(run_dir: Optional[Path], name: str = "epochs.csv") -> int:
    try:  # polled while the run writes
        return (run_dir / name).read_text().count("\n") - 1
    except (FileNotFoundError, TypeError):
        return 0


def same_files(run_dir: Path, reference: dict) -> None:
    """batches.csv and evals.csv byte for byte; epochs.csv too, but for its last column (wall seconds)."""
    for name, text in reference.items():
        drop = (lambda t: [line.rsplit(",", 1)[0] for line in t.splitlines()]) if name == "epochs.csv" else str
        assert drop((run_dir / name).read_text()) == drop(text), name


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
    to print two tracebacks ending in _Terminated)."""
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


# ---- chains of stops ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """One process of a chain: `bnbench run` (the first), `--resume RUN`, or a grow (`--resume RUN --seeds`),
    stopped by `how` once its display shows a trial and the run has `epochs` trial-epochs in epochs.csv."""

    how: Callable[[Terminal], tuple[int, str]]
    epochs: int = 0
    grow: bool = False


CHAINS = {
    "ctrl-c": [
        Stop(ctrl_c),
        Stop(ctrl_c, 2),
        Stop(paused_ctrl_c, 4),
        Stop(ctrl_c, 7, grow=True),
        Stop(ctrl_c),
        Stop(paused_ctrl_c, 11),
        Stop(ctrl_c, 15),
    ],
    "sigterm": [
        Stop(sigterm, 1),
        Stop(paused_sigterm, 3),
        Stop(sigterm_to_main, 6, grow=True),
        Stop(sigterm_to_main),
        Stop(paused_sigterm, 10),
        Stop(sigterm, 15),
    ],
    "twice": [
        Stop(ctrl_c_twice),
        Stop(ctrl_c_during_the_stop, 3),
        Stop(ctrl_c_then_sigterm, 6, grow=True),
        Stop(ctrl_c_twice, 8),
        Stop(ctrl_c_during_the_stop, 10),
        Stop(paused_ctrl_c_twice, 12),
        Stop(ctrl_c_twice, 15),
    ],
}  # 20 stops, each of a process started for it; a trial-epoch takes about 0.5 s, of 18 when the run is whole


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "stops.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory) -> dict:
    """The files of one run of the grown seeds that nobody stopped."""
    out = tmp_path_factory.mktemp("reference")
    finish("run", config_file, "--seeds", GROWN, "--out", out, "-q", "--jobs", "2")
    (run_dir,) = (out / "stops").iterdir()
    return {name: (run_dir / name).read_text() for name in FILES}


def stopped(terminal: Terminal, stop: Stop, out: Path) -> Path:
    """Stop the run on `terminal` as `stop` says, once it is that far; returns the run folder."""
    deadline = time.time() + 300
    runs = lambda: list((out / "stops").glob("[0-9]*"))  # noqa: E731
    while not (terminal.showing(" epoch ") and runs() and rows(runs()[0]) >= stop.epochs):
        assert terminal.process.poll() is None and time.time() < deadline, terminal.output[-3000:]
        time.sleep(0.02)
    (run_dir,) = runs()
    stop_cleanly(terminal, run_dir, stop.how)
    return run_dir


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


@pytest.mark.parametrize("chain", CHAINS)
def test_every_stop_ends_in_seconds_cleanly_and_the_run_resumes_exactly(config_file, reference, tmp_path, chain):
    run_dir = None
    for stop in CHAINS[chain]:
        args = ["run", config_file, "--out", tmp_path] if run_dir is None else ["run", "--resume", run_dir]
        with Terminal(*args, *["--seeds", GROWN] * stop.grow, "--jobs", "2") as terminal:
            run_dir = stopped(terminal, stop, tmp_path)
    finish("run", "--resume", run_dir, "-q", "--jobs", "2")
    same_files(run_dir, reference)


# ---- other hangs -------------------------------------------------------------------------------------------------

THREADED_NET = '''
import torch
from torch import nn


def make_net(num_classes, in_shape, norm_layer, width=8):
    """Sets its own thread count, and sizes its head with a forward pass, as factories do."""
    torch.set_num_threads(2)
    features = nn.Sequential(nn.Conv2d(in_shape[0], width, 3, padding=1), norm_layer(width), nn.ReLU())
    flat = features(torch.zeros(2, *in_shape)).flatten(1).shape[1]
    return nn.Sequential(features, nn.Flatten(), nn.Linear(flat, num_classes))
'''


@pytest.fixture
def threaded_net(tmp_path, monkeypatch) -> str:
    """A module with THREADED_NET in a temporary working directory, as a user's file next to their config."""
    name = f"threaded_net_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(THREADED_NET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:make_net"


def test_a_factory_that_sets_its_thread_count_trains_in_jobs_workers(threaded_net, tmp_path):
    """It used to hang both workers for good in their first convolution: a forked process's main thread inherits
    GNU OpenMP's pool of the main process's threads, without the threads, and waits for them in a parallel region
    of more than one thread."""
    config = CONFIG | {
        "model": {"kind": "factory", "factory": threaded_net},
        "training": CONFIG["training"] | {"epochs": 1, "batch_size": 64},
    }
    (tmp_path / "threads.yaml").write_text(yaml.safe_dump(config))
    finish("run", "threads.yaml", "--out", "out", "-q", "--jobs", "2", timeout=120)
    (run_dir,) = (tmp_path / "out" / "stops").iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["trials_done"] == 4


def test_a_factory_cannot_change_the_thread_count_trials_train_with(threaded_net):
    """One thread per trial (`backends.cpu_settings`): what a factory sets is undone as it returns."""
    from bnbench.experiment.config import ModelConfig, VariantConfig
    from bnbench.nets.models import build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_model(
            ModelConfig(kind="factory", factory=threaded_net),
            VariantConfig(name="bn", norm="batchnorm"),
            (1, 8, 8),
            10,
            0,
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_the_verdict_process_of_a_killed_run_ends_silently(config_file, tmp_path):
    """The run is SIGKILLed while its verdict process works out the lines it asked for (held there by SIGSTOP):
    the verdict process used to find the run gone as it answered, and print a BrokenPipeError traceback into the
    terminal (3 of 6 times)."""
    short = ["--seeds", "0", "--set", "training.epochs=1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bnbench", "run", config_file, *short, "--out", tmp_path, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while not (verdict := [p for p in children(process.pid) if comm(p) == "bnbench-verdict"]):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.01)
        os.kill(verdict[0], signal.SIGSTOP)
        while not any(
            json.loads(m.read_text()).get("status") == "complete" for m in tmp_path.glob("stops/*/meta.json")
        ):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # the run has sent its folder to the verdict process and waits for the lines
        process.kill()
        process.wait()
        try:
            os.kill(verdict[0], signal.SIGCONT)
        except ProcessLookupError:  # it died with the run
            pass
        output, _ = process.communicate(timeout=60)  # to the end: the verdict process holds the output too
    except BaseException:
        _kill_session(process.pid)  # what the failed test left running
        raise
    assert "Traceback" not in output and "Error" not in output, output
