"""Trials: the variants x seeds x sweep points of one experiment, each a fully resolved config."""

import json
from dataclasses import dataclass
from typing import Any

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.fields import brief
from bnbench.experiment.model_variants import VariantConfig

MAX_KEY_BYTES = 200  # the key names checkpoints/<key>.pt, written as .<key>.pt.tmp<pid>: under 255 bytes


@dataclass
class Trial:
    index: int
    variant: VariantConfig
    seed: int
    point: dict[str, Any]  # sweep values, {dotted path: value}; {} without a sweep
    config: Config  # the experiment config with this sweep point (then the variant's overrides) applied

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
        own = {v.name: resolved.with_values(v.overrides) if v.overrides else resolved for v in config.variants}
        for seed in config.seeds:
            for variant in config.variants:
                trials.append(Trial(len(trials), variant, seed, typed, own[variant.name]))
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


def refuse_same_trials(trials: list[Trial]) -> None:
    """Two sweep points whose configs differ in nothing a trial uses (-0.0 and 0.0; model.channels of an mlp)
    train the same trials twice under two keys, counted as two results: refused for a new run (a stored run is
    read as it was made)."""
    seen: dict[str, Trial] = {}
    first_variant = trials[0].variant if trials else None  # variants' own overrides differ within a point
    for trial in {id(t.config): t for t in trials if t.variant is first_variant}.values():  # one per sweep point
        first = seen.setdefault(_what_trains(trial.config), trial)
        if first is not trial:
            ignored = trial.config.ignored().items()
            why = [why for path, why in ignored if first.config.get(path) != trial.config.get(path)]
            raise ValueError(
                f"sweep: {_point_text(first.point)} and {_point_text(trial.point)} make the same trials "
                f"({'; '.join(why) or 'equal values'}); sweep only values that change a trial"
            )


def _what_trains(config: Config) -> str:
    """The config as far as training uses it, as text: without the sweep and the fields it ignores, and with
    -0.0 as 0.0 (equal numbers)."""
    raw = config.model_dump(mode="json", exclude={"sweep"})
    for path in config.ignored():
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node.pop(last, None)  # a field of Strict.LATER at its default is not in the dump
    return json.dumps(_without_negative_zero(raw), sort_keys=True)


def _without_negative_zero(value: Any) -> Any:
    if isinstance(value, float):
        return value + 0.0  # -0.0 + 0.0 is 0.0
    if isinstance(value, dict):
        return {k: _without_negative_zero(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_negative_zero(v) for v in value]
    return value


def _point_text(point: dict[str, Any]) -> str:
    """'optimizer.name=adam, model.hidden=[64, 32]' (valid values: a string is a name)."""
    return ", ".join(f"{path}={value if isinstance(value, str) else brief(value)}" for path, value in point.items())


def _refuse_long_key(trial: Trial) -> None:
    """A key longer than a file name may be fails when its checkpoint is written, after the trial has trained."""
    size = len(trial.key.encode())
    if size > MAX_KEY_BYTES:
        field, text = max(trial.parts, key=lambda part: len(part[1]))
        raise ValueError(
            f"{field}: {brief(text)} makes the checkpoint file name of trial {brief(trial.key)} "
            f"{size} bytes long, more than {MAX_KEY_BYTES}; shorten it"
        )


def refuse_large_probe_batch(trials: list[Trial], train_size: int) -> None:
    """A probe batch is drawn from the training set: one larger than it would be cut to it silently, probing
    another batch than the config says. Checked once the data set is loaded, before a run folder exists."""
    sizes = [t.config.training.probe_batch for t in trials if t.config.training.probe_every is not None]
    if sizes and max(sizes) > train_size:
        raise BnbenchError(
            f"training.probe_batch: {max(sizes)} is more examples than the training set's {train_size}; "
            f"use at most {train_size}"
        )
