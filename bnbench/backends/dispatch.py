"""The one interface every backend trains behind: a `Job`, the `Receiver` it reports to, choosing a backend for a
`Dispatch` (`--jobs`, `--backend`), and `train_unit`, the one way any of them trains a unit."""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

import torch

from bnbench.engines import choose as engine_choice  # looked up per call (tests replace its build)
from bnbench.engines.epoch import run_epoch
from bnbench.engines.events import EpochResult, Progress
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.data import Dataset
from bnbench.experiment.trials import Trial
from bnbench.rundir import checkpoint_files


@dataclass
class Job:
    """What every unit of a run shares."""

    run_dir: Path
    config: Config
    data: Dataset
    device: torch.device
    engine: str


class Receiver(Protocol):
    def progress(self, p: Progress) -> None: ...
    def epoch_done(self, trial: int, result: EpochResult, state: bytes) -> None: ...


class Backend(Protocol):
    def train(self, job: Job, units: list[list[Trial]], receiver: Receiver) -> None:
        """Train every unit to its last epoch (or divergence); raise WorkerDied if a unit's process is lost."""


class WorkerDied(Exception):
    """A process (or node) training units ended without finishing them (killed: the OOM killer, a signal)."""


@dataclass(frozen=True)
class Dispatch:
    """Where the user asked a run's units to train; checked when made, before a run folder exists."""

    backend: str = "local"  # local: this process or `jobs` worker processes; ray: Ray tasks
    jobs: int = 1  # worker processes on this machine (1: this process)
    address: Optional[str] = None  # ray: the cluster's address (None: a Ray instance started for the run)
    gpus_per_trial: Optional[float] = None  # ray: GPUs each unit reserves (None: 1 for a CUDA run, else 0)
    quiet: bool = False  # ray: none of Ray's own log lines (-q)

    def __post_init__(self):
        if self.backend not in ("local", "ray"):
            raise BnbenchError(f"--backend {self.backend}: expected local or ray")
        if not isinstance(self.jobs, int) or self.jobs < 1:  # the CLI's parser refuses it first; bnbench.run here
            raise BnbenchError(f"--jobs {self.jobs}: expected a number of worker processes, 1 or more")
        if self.backend == "local":
            for option, value in (("--address", self.address), ("--gpus-per-trial", self.gpus_per_trial)):
                if value is not None:
                    raise BnbenchError(f"{option}: only with --backend ray")
            return
        if self.jobs != 1:
            raise BnbenchError(
                f"--jobs {self.jobs}: not used with --backend ray (Ray runs as many trials at once "
                f"as the cluster's CPUs and GPUs hold: 1 CPU and --gpus-per-trial each); leave it out"
            )
        if self.gpus_per_trial is not None and not 0 <= self.gpus_per_trial < float("inf"):
            raise BnbenchError(f"--gpus-per-trial {self.gpus_per_trial}: expected a finite 0 or more, e.g. 0.25")
        from bnbench.backends.ray import check_address, import_ray

        import_ray()  # not installed: one line saying how to install it
        check_address(self.address)  # no cluster there: one line, before a run folder exists


def choose(dispatch: Dispatch, units: int, note: Callable[[str], None]) -> Backend:
    """Ray tasks for --backend ray; else this process for one job (or one unit), or `jobs` worker processes, at
    most one per core."""
    if dispatch.backend == "ray":
        from bnbench.backends.ray import Ray

        return Ray(dispatch.address, dispatch.gpus_per_trial, note, dispatch.quiet)
    from bnbench.backends.local import Local
    from bnbench.backends.workers import Workers, cap_jobs

    jobs = cap_jobs(dispatch.jobs, units, note)
    return Workers(jobs) if jobs > 1 else Local()


@contextmanager
def cpu_settings():
    """Settings for training, in-process or in a worker; restored afterwards (they are process-wide).

    One thread per trial: the thread count changes the order of float sums inside a matmul, so fixing it makes
    results independent of --jobs; parallelism comes from --jobs (trials side by side), which is where it pays
    for models this small (a model factory that sets its own count has it undone as it returns). Flushing
    denormals to zero: without BN, Adam's tiny second moments go denormal and make the plain MLP's step much
    slower (docs/performance.md); values below 1e-38 change nothing a loss can show.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)


def checkpoints(run_dir: Path, unit: list[Trial]) -> Optional[list[dict]]:
    """The trainer states a unit resumes from, or None when it starts from scratch (a unit's trials are at one
    epoch: all have a checkpoint or none)."""
    states = [checkpoint_files.load(run_dir, t) for t in unit]
    return None if states[0] is None else states


def train_unit(
    unit: list[Trial],
    data: Dataset,
    device: torch.device,
    engine: str,
    start: Optional[list[dict]],
    on_progress: Callable[[Progress], None],
) -> Iterator[list[tuple[int, EpochResult, bytes]]]:
    """Yield, for each remaining epoch of a unit, (trial index, epoch result, serialized trainer state) of each
    trial it trained; `start` are the states to resume from (None: from scratch). A trial stops at divergence.

    The graph engine has not run on a GPU yet: if capturing or replaying a CUDA graph fails, the epoch is trained
    again with eager from the state the last finished epoch left, and so are the epochs after it; the result
    says so (`fallback`), so that a GPU user gets a run, and meta.json the reason, rather than a traceback."""
    trainer = engine_choice.build(engine, unit, data, device)
    if start is not None:
        trainer.load_state_dicts(start)
    finished = None  # the serialized states of the last epoch trained here (a fallback starts from them)
    while trainer.active and trainer.epoch < unit[0].config.training.epochs:
        active = trainer.active
        try:
            results = run_epoch(trainer, on_progress)
        except RuntimeError as error:  # torch raises CUDA errors, and those of graph capture, as RuntimeError
            if engine != "graph":
                raise
            engine, trainer = "eager", engine_choice.build("eager", unit, data, device)
            resume = [checkpoint_files.deserialize(state) for state in finished] if finished else start
            if resume is not None:
                trainer.load_state_dicts(resume)
            results = run_epoch(trainer, on_progress)
            reason = str(error).splitlines()[0] if str(error) else ""
            results[0].fallback = f"graph -> eager at epoch {results[0].epoch} ({type(error).__name__}: {reason})"
        states = trainer.state_dicts()
        epoch = [
            (trial.index, result, checkpoint_files.serialize(states[unit.index(trial)]))
            for trial, result in zip(active, results)
        ]
        finished = [state for _, _, state in epoch]
        yield epoch
