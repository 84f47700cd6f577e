"""Trials: the variants x seeds x sweep points of one experiment, each a fully resolved config."""
from dataclasses import dataclass
from typing import Any

from .config import Config, VariantConfig


@dataclass
class Trial:
    index: int
    variant: VariantConfig
    seed: int
    point: dict[str, Any]  # sweep values, {dotted path: value}; {} without a sweep
    config: Config  # the experiment config with this sweep point applied

    @property
    def key(self) -> str:
        """A readable, file-safe id: 'batchnorm-s42-optimizer.lr=0.001'."""
        parts = [self.variant.name, f"s{self.seed}"] + [f"{k}={v}" for k, v in self.point.items()]
        return "-".join(parts).replace("/", "_").replace(" ", "")

    @property
    def labels(self) -> dict[str, Any]:
        """The columns that identify this trial's rows in the CSVs."""
        return {"variant": self.variant.name, "seed": self.seed, **self.point}


def expand(config: Config) -> list[Trial]:
    """All trials, grouped so that the variants of one (sweep point, seed) are neighbours."""
    trials = []
    for point in config.sweep_points():
        resolved = config.with_values(point)
        typed = {path: resolved.get(path) for path in point}
        for seed in config.seeds:
            for variant in config.variants:
                trials.append(Trial(len(trials), variant, seed, typed, resolved))
    return trials
