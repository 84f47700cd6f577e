"""Units trained in `--jobs` worker processes on this machine, forked (spawned on CUDA), each taking the next unit
from a queue and sending progress and finished epochs back to the main process through a pipe of its own.

A run that stops (Ctrl-C, SIGTERM, a failure) ends within seconds: a worker ignores Ctrl-C and ends at once on the
SIGTERM the main process sends it (`stopping`); it writes into its pipe itself, with no feeder thread that would
keep it alive, on exit, waiting to send into a pipe nobody reads any more; and the main process waits for it at
most STOP_WAIT seconds before it kills it. A worker that dies in the middle of a message closes its pipe, which
the main process reads as the worker's end, never as a wait for the rest.
"""

import os
import signal
import tempfile
import threading
import time
import traceback
from multiprocessing import connection, resource_tracker
from pathlib import Path
from typing import Callable, Union

import torch
import torch.multiprocessing as mp

from bnbench.backends import stopping
from bnbench.backends.dispatch import Job, Receiver, WorkerDied, checkpoints, cpu_settings, train_unit
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.data import Dataset
from bnbench.experiment.trials import Trial, expand
from bnbench.rundir.lock import RunLock

STOP_WAIT = 2.0  # seconds the workers have to end after SIGTERM (at once, unless stopped or stuck) before SIGKILL


def cap_jobs(jobs: int, units: int, note: Callable[[str], None]) -> int:
    """More worker processes than cores (or than units to train) only cost memory and time."""
    cores = os.cpu_count() or 1
    if jobs > cores:
        note(f"--jobs {jobs}: using {cores} worker processes, one per CPU core")
    return max(1, min(jobs, cores, units))


class Workers:
    def __init__(self, jobs: int):
        self.jobs = jobs

    def train(self, job: Job, units: list[list[Trial]], receiver: Receiver) -> None:
        """Workers share one uint8 copy of the data set and send back only plain data and bytes, so no tensor
        crosses a process boundary. On the CPU they are forked (no second torch import: benchmarks/startup.py), as
        DataLoader workers are, and read the parent's tensors (the cache file's mapped pages, or copy-on-write
        memory that nobody writes). CUDA cannot be forked: spawned workers map a temporary copy of the data
        (shared page cache)."""
        ctx = mp.get_context("fork" if job.device.type == "cpu" else "spawn")
        if ctx.get_start_method() == "spawn":
            resource_tracker.ensure_running()  # now: as it starts, it unblocks the signals `_start` blocks
        tasks = ctx.Queue()
        for unit in units:
            tasks.put([t.index for t in unit])
        for _ in range(self.jobs):
            tasks.put(None)
        tasks.cancel_join_thread()  # units left when the run stops are dropped, not waited for on exit
        with tempfile.TemporaryDirectory(prefix="bnbench-") as tmp:
            shared = job.data if ctx.get_start_method() == "fork" else job.data.save(Path(tmp) / "data.pt")
            args = (job.run_dir, job.config, shared, str(job.device), job.engine, tasks)
            workers: dict = {}  # the read end of each worker's pipe -> the worker
            try:
                for _ in range(self.jobs):
                    _start(ctx, args, workers)
                _collect(workers, sum(map(len, units)), receiver, {t.index: t for u in units for t in u})
            finally:
                with stopping.held():
                    _stop(list(workers.values()))


def _start(ctx, args: tuple, workers: dict) -> None:
    """Start a worker and add it to `workers` (by the read end of its pipe), with Ctrl-C held meanwhile, so that
    every worker started is there to be stopped. The write end is closed here as soon as the worker has its copy,
    so that the pipe reads as closed when the worker ends, and no worker forked later holds it."""
    pipe, end = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(*args, end), daemon=True)
    with stopping.held():
        worker.start()
        workers[pipe] = worker
        end.close()


def _collect(workers: dict, remaining: int, receiver: Receiver, trials: dict[int, Trial]) -> None:
    """Hand the workers' events to `receiver` as they come, until `remaining` trials are done."""
    running = dict(workers)
    busy: dict = {}  # pipe -> the trials its worker is training and has not finished
    while remaining:
        if not running:
            raise RuntimeError("all bnbench workers exited before finishing their trials")
        for pipe in connection.wait(list(running)):
            try:
                kind, *payload = pipe.recv()
            except (EOFError, OSError):  # the worker ended (OSError: in the middle of a message)
                _ended(running.pop(pipe), busy.pop(pipe, []), trials)
                continue
            if kind == "taken":
                busy[pipe] = payload[0]
            elif kind == "progress":
                receiver.progress(payload[0])
            elif kind == "epoch":
                receiver.epoch_done(*payload)
            elif kind == "done":
                busy[pipe].remove(payload[0])
                remaining -= 1
            elif kind == "user error":
                raise BnbenchError(payload[0])
            else:
                raise RuntimeError(f"a bnbench worker failed:\n{payload[0]}")


def _ended(worker, busy: list[int], trials: dict[int, Trial]) -> None:
    """A worker's pipe closed: fine when it ended, after its last unit, for want of units; else raise WorkerDied,
    naming the trials it was training and the signal or status it ended with."""
    worker.join(STOP_WAIT)  # the pipe closed as it exited: its status follows at once
    code = worker.exitcode
    if code == 0 and not busy:
        return
    cause = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
    hint = " (the kernel's OOM killer sends SIGKILL when memory runs out)" * (code == -signal.SIGKILL)
    training = f" while training {', '.join(trials[i].key for i in busy)}" if busy else ""
    raise WorkerDied(f"worker process {worker.pid} died ({cause}{hint}){training}")


def _stop(workers: list) -> None:
    """End the workers still running: SIGTERM ends one at once; one that has not ended within STOP_WAIT seconds
    (stopped by SIGSTOP, or stuck in the kernel) is killed. Never waits without bound."""
    for worker in workers:
        worker.terminate()  # nothing for a worker that has ended
    deadline = time.monotonic() + STOP_WAIT
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.exitcode is None:
            worker.kill()
            worker.join(STOP_WAIT)


def _worker(run_dir: Path, config: Config, shared: Union[Dataset, Path], device: str, engine: str, tasks, pipe) -> None:
    """Worker process: trains the units it takes from `tasks`, in a thread of its own, and sends what happens
    down `pipe`. The thread, because this process's main thread inherits from a fork GNU OpenMP's thread pool of
    the main process without its threads: a parallel region of more than one thread there (a model factory that
    calls torch.set_num_threads(2)) waits for them forever, where a new thread starts a pool of its own."""
    stopping.detach()
    RunLock.close_inherited()
    work = threading.Thread(
        target=_train, args=(run_dir, config, shared, device, engine, tasks, pipe), name="bnbench-train"
    )
    work.start()
    work.join()


def _train(run_dir: Path, config: Config, shared: Union[Dataset, Path], device: str, engine: str, tasks, pipe) -> None:
    """`shared` is the data set (forked workers) or the file that holds it (spawned ones). A failure is sent as
    its traceback, for the main process to raise."""
    try:
        trials = expand(config)
        device = torch.device(device)
        data = (Dataset.load(shared) if isinstance(shared, Path) else shared).to(device)
        with cpu_settings():
            for indices in iter(tasks.get, None):
                pipe.send(("taken", indices))
                unit = [trials[i] for i in indices]
                for epoch in train_unit(
                    unit, data, device, engine, checkpoints(run_dir, unit), lambda p: pipe.send(("progress", p))
                ):
                    for trial, result, state in epoch:
                        pipe.send(("epoch", trial, result, state))
                for i in indices:
                    pipe.send(("done", i))
    except BrokenPipeError:  # the main process is gone (where the kernel does not end its children with it)
        return
    except BnbenchError as e:  # the user's to fix (a checkpoint that no longer fits its model): one line
        pipe.send(("user error", str(e)))
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
