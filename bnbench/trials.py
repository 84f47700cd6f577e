"""Trials: the variants x seeds x sweep points of one experiment, each a fully resolved config."""

from dataclasses import dataclass
from typing import Any

from .config import Config, VariantConfig, brief

MAX_KEY_BYTES = 200  # the key names checkpoints/<key>.pt, written as .<key>.pt.tmp<pid>: under 255 bytes


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
        return _file_safe("-".join(text for _, text in self.parts))

    @property
    def parts(self) -> list[tuple[str, str]]:
        """What the key is made of, each with the config field it comes from."""
        return [("variants", self.variant.name), ("seeds", f"s{self.seed}")] + [
            ("sweep", f"{path}={value}") for path, value in self.point.items()
        ]

    @property
    def labels(self) -> dict[str, Any]:
        """The columns that identify this trial's rows in the CSVs."""
        return {"variant": self.variant.name, "seed": self.seed, **self.point}


def expand(config: Config) -> list[Trial]:
    """All trials, grouped so that the variants of one (sweep point, seed) are neighbours.

    Raises ValueError, naming the field, where two trials would share a key or a key is too long for a file name.
    """
    _refuse_repeated_values(config)
    trials = []
    for point in config.sweep_points():
        resolved = config.with_values(point)
        typed = {path: resolved.get(path) for path in point}
        for seed in config.seeds:
            for variant in config.variants:
                trials.append(Trial(len(trials), variant, seed, typed, resolved))
                _refuse_long_key(trials[-1])
    return trials


def _file_safe(text: str) -> str:
    return text.replace("/", "_").replace(" ", "")


def _refuse_repeated_values(config: Config) -> None:
    """Two sweep values that are one value once typed (0.001 and 1.0e-3), or one file name, make every trial of
    theirs twice, with one key: both write one checkpoint and the runner cannot tell their rows apart."""
    for path, values in config.sweep.items():
        seen: dict[str, int] = {}
        for i, value in enumerate(values):
            text = _file_safe(f"{path}={config.with_values({path: value}).get(path)}")
            first = seen.setdefault(text, i)
            if first != i:
                raise ValueError(
                    f"sweep: {path}: values {first + 1} and {i + 1} ({brief(values[first])} and "
                    f"{brief(value)}) make the same trial ({text}); list each value once"
                )


def _refuse_long_key(trial: Trial) -> None:
    """A key longer than a file name may be fails when its checkpoint is written, after the trial has trained."""
    size = len(trial.key.encode())
    if size > MAX_KEY_BYTES:
        field, text = max(trial.parts, key=lambda part: len(part[1]))
        raise ValueError(
            f"{field}: {brief(text)} makes the checkpoint file name of trial {brief(trial.key)} "
            f"{size} bytes long, more than {MAX_KEY_BYTES}; shorten it"
        )
