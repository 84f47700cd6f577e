"""A run stopped in this process by a real SIGINT at a chosen moment: for the tests whose subject is what a stopped
run leaves and how `--resume` goes on from it, without an interpreter to start and a SIGKILL to race per test.
What only a separate process shows (meta.json still `running`, a dead holder's lock, workers and the verdict
process dying with their run, exit statuses 130 and 143) is checked end to end, in the slow tier
(runner/test_resume, runner/test_interrupts)."""

import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from support.cli_calls import invoke

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def interrupted_when(ready: Callable[[Path], bool], experiment: Path, *args) -> Path:
    """`bnbench ARGS` (a run into `experiment`'s parent folder, or a `--resume`), sent SIGINT as soon as
    `ready(run folder)` holds, polled while it trains as the subprocess tests poll theirs; it must stop as Ctrl-C
    stops it (exit status 130). Returns the run folder. This process's signal handlers are left as they were (the
    `bnbench` command ignores signals after a stop, as its process ends)."""
    before = {s: signal.getsignal(s) for s in SIGNALS}
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # a SIGINT that comes after the run's handler: dropped
    done, sent = threading.Event(), []

    def watch() -> None:
        while not done.is_set():
            runs = list(experiment.glob("[0-9]*"))
            if runs and ready(runs[0]):
                sent.append(runs[0])
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = invoke(*args)
    finally:
        done.set()
        watcher.join()
        for s, handler in before.items():
            signal.signal(s, handler)
    assert sent and result.exit_code == 130, result.output
    return sent[0]
