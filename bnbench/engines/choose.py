"""Which engine trains a run, in one place: the one asked for (`training.engine`, auto resolved), or eager where
that one cannot train the model (the reason goes to meta.json); what one trainer trains at once (its unit); and
building that trainer. (The eager engine's own hand-written MLP backward picks itself per model:
`direct.supported`.)"""

import itertools
from typing import Callable

import torch

from bnbench.engines import schedule
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.data import Dataset
from bnbench.experiment.trials import Trial


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if not available.get(name.split(":")[0], lambda: True)():
        raise BnbenchError(f"device: '{name}' is not available on this machine; use device: auto or cpu")
    return torch.device(name)


def requested(config: Config, device: torch.device) -> str:
    """`training.engine`, with auto resolved: graph on CUDA (adam/adamw), else eager.

    On the CPU eager is about as fast per trial as a stacked group of 6 or more trials (docs/performance.md), and
    --jobs multiplies eager's throughput by the cores; so stacked is opted into, not chosen.
    """
    engine = config.training.engine
    if engine == "auto":
        return "graph" if device.type == "cuda" and config.optimizer.name != "sgd" else "eager"
    if engine == "graph" and device.type != "cuda":
        raise BnbenchError(f"training.engine: graph needs a CUDA device, not '{device}'; use eager or stacked")
    if engine == "graph" and config.optimizer.name == "sgd":
        raise BnbenchError("training.engine: graph supports adam and adamw; use eager or stacked for sgd")
    return engine


def unsupported(config: Config, engine: str) -> str | None:
    """Why `engine` cannot train `config`'s model (None: it can).

    graph: a CUDA graph replays fixed kernels, so a model whose forward branches on its data (`if x.sum() > 0`,
    `.item()`) cannot be captured; the built-ins and bnbench's torchvision models never do, a factory's model may.
    Its captured steps also hold one learning rate (a Python float baked into each replayed step), so a schedule
    or warmup (`engines.schedule`) is trained by eager.

    stacked: the stacked forward walks the built-in Sequential with BatchNorm handled per trial slice; other module
    trees would need torch.func's vmap, whose batched kernels sum in other orders than eager's (no bitwise equality)
    and which cannot update BatchNorm's running statistics in place. The built-ins draw nothing while they train,
    which is why this engine never seeds the global RNGs (one set cannot hold K trials' streams); a model that draws
    (dropout) is a torchvision or factory model, which eager trains with them seeded per trial and epoch
    (`seeding.seed_globals`).

    Probes (`training.probe_every`) are the eager trainer's: it alone steps one trial's own model at a time.
    """
    if (config.training.probe_every or "training.probe_every" in config.sweep) and engine != "eager":
        return "training.probe_every: probes are taken by the eager engine"
    if engine == "graph" and config.model.kind == "factory":
        return "a factory's model may branch on its data, which a CUDA graph cannot capture"
    if engine == "graph" and config.dataset.augment:
        return "dataset.augment: the graph engine's captured steps gather batches without augmentation"
    if engine == "graph" and _lr_changes(config):
        return "optimizer.schedule: the graph engine's captured steps keep one learning rate"
    if engine != "stacked":
        return None
    if config.model.kind not in ("mlp", "cnn"):
        return f"stacked trains the built-in mlp and cnn, not a {config.model.kind} model"
    other = sorted({v.norm for v in config.variants} - {"none", "batchnorm"})
    return f"stacked trains norm: batchnorm and none, not {', '.join(other)}" if other else None


def _lr_changes(config: Config) -> bool:
    """Whether a trial's lr may change during its run (a schedule or warmup, in the config or its sweep)."""
    paths = ("optimizer", "optimizer.schedule", "optimizer.warmup_epochs")
    return schedule.scheduled(config.optimizer) or any(path in paths for path in config.sweep)


def note(config: Config, engine: str) -> str | None:
    """Why `engine` gives way to eager for this config (for meta.json); None if it trains it."""
    reason = unsupported(config, engine)
    return f"{engine} -> eager: {reason}" if reason else None


def choose(config: Config, device: torch.device, wanted: str | None = None) -> str:
    """The engine that trains this run: `wanted` (default: the one `requested`), or eager where that one cannot
    train the model (`note` says why)."""
    wanted = requested(config, device) if wanted is None else wanted
    return "eager" if note(config, wanted) else wanted


def units(pending: list[Trial], engine: str, epochs: Callable[[Trial], int]) -> list[list[Trial]]:
    """What one trainer trains at once: one trial, or for the stacked engine a group of compatible trials that
    have finished the same number of epochs (`epochs`: a resumed run may have some trials an epoch ahead)."""
    if engine != "stacked":
        return [[t] for t in pending]
    from bnbench.engines.stacked import StackedTrainer

    return [
        list(unit)
        for group in StackedTrainer.compatible(pending)
        for _, unit in itertools.groupby(sorted(group, key=epochs), key=epochs)
    ]


def build(engine: str, unit: list[Trial], data: Dataset, device: torch.device):
    """The trainer of a unit, an `epoch.Engine` with the group interface (active, epoch, state_dicts,
    load_state_dicts) that `backends.train_unit` drives."""
    if engine == "stacked":
        from bnbench.engines.stacked import StackedTrainer

        return StackedTrainer(unit, data, device)
    if engine == "graph":
        from bnbench.engines.graph import GraphTrainer

        return GraphTrainer(unit[0], data, device)
    from bnbench.engines.eager import Trainer

    return Trainer(unit[0], data, device)
