"""Units trained in `--jobs` worker processes on this machine, forked (spawned on CUDA), each taking the next unit
from a queue and sending progress and finished epochs back to the main process."""
import ctypes
import os
import queue
import signal
import tempfile
import traceback
from pathlib import Path
from typing import Callable, Union

import torch
import torch.multiprocessing as mp

from .. import store
from ..config import Config
from ..data import Dataset
from ..trials import Trial, expand
from . import Job, Receiver, WorkerDied, checkpoints, cpu_settings, train_unit


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
        crosses a process boundary. On the CPU they are forked (no second torch import: 1.6 s less per run), as
        DataLoader workers are, and read the parent's tensors (the cache file's mapped pages, or copy-on-write
        memory that nobody writes). CUDA cannot be forked: spawned workers map a temporary copy of the data
        (shared page cache)."""
        ctx = mp.get_context("fork" if job.device.type == "cpu" else "spawn")
        tasks, results = ctx.Queue(), ctx.Queue()
        for unit in units:
            tasks.put([t.index for t in unit])
        with tempfile.TemporaryDirectory(prefix="bnbench-") as tmp:
            shared = job.data if ctx.get_start_method() == "fork" else job.data.save(Path(tmp) / "data.pt")
            workers = [ctx.Process(target=_worker, args=(job.run_dir, job.config, shared, str(job.device),
                                                         job.engine, tasks, results), daemon=True)
                       for _ in range(self.jobs)]
            for w in workers:
                tasks.put(None)
                w.start()
            try:
                _collect(results, workers, sum(map(len, units)), receiver, {t.index: t for u in units for t in u})
            finally:
                for w in workers:
                    if w.is_alive():
                        w.terminate()
                for w in workers:
                    w.join()


def _collect(results, workers, remaining: int, receiver: Receiver, trials: dict[int, Trial]) -> None:
    taken: dict[int, list[int]] = {}  # worker pid -> the trials it is training
    finished: set[int] = set()
    while remaining:
        try:
            kind, *payload = results.get(timeout=1.0)
        except queue.Empty:
            _check_workers(workers, taken, finished, trials)
            continue
        if kind == "taken":
            taken[payload[0]] = payload[1]
        elif kind == "progress":
            receiver.progress(payload[0])
        elif kind == "epoch":
            receiver.epoch_done(*payload)
        elif kind == "done":
            finished.add(payload[0])
            remaining -= 1
        else:
            raise RuntimeError(f"a bnbench worker failed:\n{payload[0]}")


def _check_workers(workers, taken: dict[int, list[int]], finished: set[int], trials: dict[int, Trial]) -> None:
    """Raise WorkerDied, naming the trials and the signal, if a worker died with trials unfinished."""
    for w in workers:
        busy = [i for i in taken.get(w.pid, []) if i not in finished]
        if w.exitcode is not None and w.exitcode != 0 and busy:
            cause = (f"killed by {signal.Signals(-w.exitcode).name}" if w.exitcode < 0 else f"exit status {w.exitcode}")
            hint = " (the kernel's OOM killer sends SIGKILL when memory runs out)" * (w.exitcode == -signal.SIGKILL)
            keys = ", ".join(trials[i].key for i in busy)
            raise WorkerDied(f"worker process {w.pid} died ({cause}{hint}) while training {keys}")
    if not any(w.is_alive() for w in workers):
        raise RuntimeError("all bnbench workers exited before finishing their trials")


def _worker(run_dir: Path, config: Config, shared: Union[Dataset, Path], device: str, engine: str, tasks,
            results) -> None:
    """Worker process: train the units it takes from `tasks`; Ctrl-C is left to the main process. `shared` is the
    data set (forked workers) or the file that holds it (spawned ones)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    store.RunLock.close_inherited()
    trials = expand(config)
    device = torch.device(device)
    data = (Dataset.load(shared) if isinstance(shared, Path) else shared).to(device)
    try:
        with cpu_settings():
            for indices in iter(tasks.get, None):
                results.put(("taken", os.getpid(), indices))
                unit = [trials[i] for i in indices]
                for epoch in train_unit(unit, data, device, engine, checkpoints(run_dir, unit),
                                        lambda p: results.put(("progress", p))):
                    for trial, result, state in epoch:
                        results.put(("epoch", trial, result, state))
                for i in indices:
                    results.put(("done", i))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _die_with_parent() -> None:
    """Linux: the kernel sends this worker SIGKILL when its parent dies (SIGKILL, SIGTERM, a crash), so that no
    orphan trains on, holds the terminal, or keeps memory; elsewhere, nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)
