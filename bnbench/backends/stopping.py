"""How `bnbench run` stops: the signals that stop it (Ctrl-C, SIGTERM), and its child processes (the `--jobs`
workers, the verdict process).

The signals are the main process's to handle: it records how the run stopped, then ends its children itself. A
child therefore ignores Ctrl-C (a terminal sends it to the whole process group), ends at once on SIGTERM, and
dies with the main process. It is started with both signals blocked and sets that up before it unblocks them: a
forked child inherits the main process's Python handlers, under which a signal in its first moments would raise
inside it and print a traceback (a spawned one keeps the blocked mask through exec, so its interpreter's start-up
is covered too).
"""

import ctypes
import os
import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Set by the `bnbench` command, whose process ends when a run stops: once a signal has stopped a run, the process
# ignores the ones after it to its end, instead of restoring its handlers (a second Ctrl-C would break into what
# is left: the display's end, Python's shutdown, with a traceback or another exit status).
process_ends_with_run = False


@contextmanager
def held():
    """Ctrl-C and SIGTERM wait until the block is done, then take effect: for what a signal must not cut short
    (starting a child, which then starts with both blocked; ending the children). Only in the main thread, where
    Python raises them; elsewhere the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    handlers = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for s, handler in handlers.items():
            signal.signal(s, handler)
    for signum in caught[:1]:
        signal.raise_signal(signum)


def detach() -> None:
    """First thing in a child: Ctrl-C ignored, SIGTERM ends it at once (the inherited handler would raise inside
    it instead: a worker then hung on exit, waiting to send into a pipe nobody read), and it dies with the main
    process; then the two signals are unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGKILL when its parent dies (SIGKILL, SIGTERM, a crash), so that no
    orphan trains on, holds the terminal, keeps memory, or prints into the terminal; elsewhere, nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


class Terminated(Exception):
    """SIGTERM (what Slurm and Kubernetes send before killing a job), raised in the main thread."""


@contextmanager
def sigterm_as_interrupt():
    """Stop on SIGTERM as on Ctrl-C: meta.json says partial and the run resumes. The first of them stops the run;
    the ones after it are ignored while it stops (ending the workers, recording the run), so that a second Ctrl-C
    cannot cut the stop short and print a traceback from the middle of it; in the `bnbench` command, to the end of
    its process (`process_ends_with_run`). A signal this process was started ignoring (nohup, a
    background job) stays ignored. Only in the main thread (where Python delivers signals); elsewhere the
    defaults stay."""
    taken = []

    def handler(signum, frame):
        if not taken:
            taken.append(signum)
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()

    try:
        previous = {s: signal.signal(s, handler) for s in SIGNALS if signal.getsignal(s) != signal.SIG_IGN}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        ignore = taken and process_ends_with_run
        for s, before in previous.items():
            signal.signal(s, signal.SIG_IGN if ignore else before)
