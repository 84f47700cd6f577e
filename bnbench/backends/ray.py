"""Units trained as Ray tasks: on a Ray instance started for the run, or on a cluster (`--address`).

Each unit is a Ray generator task that yields its progress events and, at the end of each epoch, the unit's
results with the serialized trainer states; this process (the driver) records them as they arrive, so the run
folder lives on the driver's machine alone and workers need no shared file system. The data set goes into Ray's
object store once per run, not once per unit. Tasks run with max_retries=0, because Ray's own retry replays a
generator from its first epoch: a unit whose worker or node dies is submitted again from here, from the last
epoch the driver received, up to RETRIES times; then the run stops, resumable.

Ray is imported in this module only, and only when `--backend ray` is asked for (it is an optional extra).
"""

import io
import logging
import os
import queue
import signal
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from bnbench.backends import stopping
from bnbench.backends.dispatch import Job, Receiver, WorkerDied, checkpoints, cpu_settings, train_unit
from bnbench.errors import BnbenchError
from bnbench.experiment.trials import Trial, expand

RETRIES = 3  # resubmissions of one unit after its worker or node died
INSTALL = "pip install 'bnbench[ray]' (in a clone of bnbench: pip install -e '.[ray]')"
ANSWERS_WITHIN = 5.0  # seconds: a cluster's address that has not accepted a connection by then does not answer
OTHERWISE = "or leave --address out (the run starts a Ray instance of its own), or use --backend local"


def import_ray():
    try:
        import ray
    except ImportError:
        raise BnbenchError(f"--backend ray: Ray is not installed; install it with: {INSTALL}") from None
    return ray


def check_address(address: Optional[str]) -> None:
    """--address: a Ray cluster answers there, checked before the run folder exists. Ray itself retries an
    address that does not answer for minutes, printing warnings, then raises a ConnectionError (an OSError, so
    that it read as the run folder's disk failing, and left a partial run behind)."""
    if address in (None, "local"):
        return
    host, port = _bootstrap(address)
    try:
        socket.create_connection((host, port), timeout=ANSWERS_WITHIN).close()
    except OSError as e:
        raise BnbenchError(
            f"--address {address}: no Ray cluster answers at {host}:{port} ({e.strerror or e}); "
            f"start one there with: ray start --head --port {port}, {OTHERWISE}"
        ) from None


def _bootstrap(address: str) -> tuple[str, int]:
    """The host and port a driver connects to: auto is the cluster `ray start` left on this machine (or
    RAY_ADDRESS), found as Ray finds it."""
    target = address.removeprefix("ray://")
    if target == "auto":
        from ray._private.services import get_ray_address_from_environment

        try:
            target = get_ray_address_from_environment("auto", None)
        except ConnectionError:
            raise BnbenchError(
                f"--address auto: no Ray cluster runs on this machine; start one with: ray start --head, {OTHERWISE}"
            ) from None
    host, colon, port = target.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise BnbenchError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    return host.strip("[]"), int(port)


@contextmanager
def _ray_lines(quiet: bool):
    """Ray's own log lines while it starts or connects: its warnings ("Token authentication is enabled ...") but
    not its info; under -q (`bnbench run -q` prints notes and the verdict only) none, its C++ core's included,
    which write to the process's stderr before any log level of Ray's applies (a failure to connect is said in
    one line by `Ray._connect`)."""
    if not quiet:
        yield logging.WARNING
        return
    stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield logging.ERROR
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)


@dataclass
class _Unit:
    """A unit in flight: its unfinished trials and the trainer states to (re)start them from."""

    trials: list[Trial]
    start: Optional[list[dict]]
    failures: int = 0

    def advance(self, epoch: list) -> None:
        """The driver received an epoch: a resubmission starts after it, without the trials it finished."""
        go_on = {
            i: state
            for i, result, state in epoch
            if result.diverged_step is None and result.epoch < self.trials[0].config.training.epochs
        }
        self.trials = [t for t in self.trials if t.index in go_on]
        self.start = [torch.load(io.BytesIO(go_on[t.index]), weights_only=True) for t in self.trials]


class Ray:
    def __init__(
        self,
        address: Optional[str],
        gpus_per_trial: Optional[float],
        note: Callable[[str], None],
        quiet: bool = False,
    ):
        self.ray = import_ray()
        self.address, self.gpus_per_trial, self.note, self.quiet = address, gpus_per_trial, note, quiet

    def train(self, job: Job, units: list[list[Trial]], receiver: Receiver) -> None:
        ray = self.ray
        connected_here = not ray.is_initialized()
        if connected_here:  # "local": always a new instance on this machine, never one found by chance
            on_sigterm = signal.getsignal(signal.SIGTERM)
            self._connect()
            if on_sigterm is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, on_sigterm)  # Ray's core worker put in its own, which aborts
        flights: dict = {}  # ObjectRefGenerator -> _Unit
        try:
            task = ray.remote(_unit_task).options(
                name="bnbench_unit", num_cpus=1, num_gpus=self._gpus(job), max_retries=0
            )
            data, config = ray.put(job.data), ray.put(job.config)

            def submit(unit: _Unit) -> None:
                flights[task.remote(config, data, [t.index for t in unit.trials], job.engine, unit.start)] = unit

            for trials in units:
                submit(_Unit(trials, checkpoints(job.run_dir, trials)))
            lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)
            while flights:
                ready, _ = ray.wait(list(flights), num_returns=1, timeout=1.0)  # a timeout, so Ctrl-C gets in
                for generator in ready:
                    unit = flights[generator]
                    try:
                        kind, payload = ray.get(next(generator))
                    except StopIteration:
                        del flights[generator]
                        continue
                    except lost as e:
                        del flights[generator]
                        if unit.trials:
                            submit(self._again(unit, e))
                        continue
                    if kind == "progress":
                        receiver.progress(payload)
                    else:
                        for index, result, state in payload:
                            receiver.epoch_done(index, result, state)
                        unit.advance(payload)
        finally:
            with stopping.held():  # Ray's work here is ended, whatever signal comes meanwhile
                for generator in flights:
                    ray.cancel(generator, force=True)
                if connected_here:
                    ray.shutdown()

    def _connect(self) -> None:
        """A Ray instance of the run's own, or the cluster at --address (checked as the run began: one that has
        gone since is said as such, not as a failing disk)."""
        with _ray_lines(self.quiet) as level:
            try:
                self.ray.init(
                    address=self.address or "local",
                    include_dashboard=False if not self.address else None,
                    logging_level=level,
                    log_to_driver=not self.quiet,
                )
            except ConnectionError as e:
                why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                if self.address is None:
                    raise BnbenchError(f"--backend ray: Ray did not start on this machine ({why}); use --backend local")
                raise BnbenchError(
                    f"--address {self.address}: cannot connect to the Ray cluster ({why}); start it again, {OTHERWISE}"
                ) from None

    def _gpus(self, job: Job) -> float:
        """GPUs each unit reserves: by default 1 for a CUDA run and 0 for a CPU one. A unit without a GPU trains
        on the CPU, whatever GPUs its node has."""
        device = job.device.type
        if device not in ("cpu", "cuda"):
            raise BnbenchError(f"--backend ray: device {job.device} is not supported; use device: cpu or cuda")
        gpus = self.gpus_per_trial if self.gpus_per_trial is not None else float(device == "cuda")
        if device == "cuda" and gpus <= 0:
            raise BnbenchError(
                "--gpus-per-trial 0: the run's device is cuda; give each trial a share of a GPU, "
                "e.g. --gpus-per-trial 0.25, or set --device cpu"
            )
        if device == "cpu" and gpus > 0:
            raise BnbenchError(
                f"--gpus-per-trial {self.gpus_per_trial:g}: the run's device is cpu; set --device "
                f"cuda (or leave --gpus-per-trial out)"
            )
        if gpus > 0 and self.ray.cluster_resources().get("GPU", 0) < gpus:
            raise BnbenchError(
                f"--gpus-per-trial {gpus:g}: the Ray cluster has "
                f"{self.ray.cluster_resources().get('GPU', 0):g} GPUs; start its nodes with GPUs "
                f"or use --device cpu"
            )
        return gpus

    def _again(self, unit: _Unit, error: Exception) -> _Unit:
        keys = ", ".join(t.key for t in unit.trials)
        cause = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        if unit.failures >= RETRIES:
            raise WorkerDied(f"Ray lost the worker training {keys} {RETRIES + 1} times (last: {cause})")
        unit.failures += 1
        epoch = unit.start[0]["epoch"] if unit.start else 0
        self.note(
            f"Ray lost the worker training {keys} ({cause}); submitted again from epoch {epoch} "
            f"(retry {unit.failures} of {RETRIES})"
        )
        return unit


def _unit_task(config, data, indices: list[int], engine: str, start: Optional[list[dict]]):
    """The Ray task: train a unit, yielding ("progress", Progress) at the trainer's ticks and ("epoch", [(trial
    index, result, state bytes), ...]) at each epoch's end. Training runs in a thread so that the progress
    callback, called inside an epoch, can hand its events to this generator while the epoch goes on."""
    import ray

    trials = expand(config)
    unit = [trials[i] for i in indices]
    device = torch.device("cuda", 0) if ray.get_gpu_ids() else torch.device("cpu")  # CUDA_VISIBLE_DEVICES: its own
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            with cpu_settings():  # in this thread: denormal flushing is a per-thread CPU flag
                for epoch in train_unit(
                    unit, data.to(device), device, engine, start, lambda p: events.put(("progress", p))
                ):
                    events.put(("epoch", epoch))
            events.put(("end", None))
        except BaseException as e:  # handed to the generator, which raises it in the task
            events.put(("error", e))

    threading.Thread(target=work, daemon=True).start()
    while True:
        kind, payload = events.get()
        if kind == "end":
            return
        if kind == "error":
            raise payload
        yield kind, payload
