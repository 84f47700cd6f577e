"""Experiment configs: one YAML file describes one experiment; pydantic validates it.

`load_config` resolves a path or a shipped config name, applies `--set` overrides, validates, and turns every
mistake into one `BnbenchError` line: "<file>: <field>: <what is wrong> (<fix>)".
"""
import copy
import difflib
import itertools
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import (BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError,
                      field_validator, model_validator)

from .errors import BnbenchError

SHIPPED = resources.files("bnbench") / "configs"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetConfig(Strict):
    name: Literal["cifar10", "cifar100", "mnist", "fashion_mnist", "imagefolder", "digits"] = "cifar10"
    root: str = "./data"
    download: bool = True
    normalize: bool = False  # per-channel standardisation with the train split's mean/std


class ModelConfig(Strict):
    kind: Literal["mlp", "cnn"] = "mlp"
    hidden: list[PositiveInt] = [64, 32]  # mlp: hidden widths; cnn: widths of the MLP head
    channels: list[PositiveInt] = [32, 64]  # cnn only: one 3x3 conv + 2x2 max-pool per entry


class VariantConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    norm: Literal["none", "batchnorm"] = "batchnorm"
    placement: Literal["before_activation", "after_activation"] = "before_activation"


class OptimizerConfig(Strict):
    name: Literal["adam", "sgd", "adamw"] = "adam"
    lr: PositiveFloat = 1.0e-4
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    weight_decay: Optional[float] = Field(None, ge=0)  # None: the optimizer's own default


class TrainingConfig(Strict):
    epochs: PositiveInt = 5
    batch_size: PositiveInt = 10
    shuffle: bool = True
    log_every: NonNegativeInt = 500  # 0: no "Loss after mini-batch N" lines
    eval_every: Optional[PositiveInt] = None  # steps between test-set evaluations; None: at epoch ends only
    engine: Literal["auto", "eager", "graph", "stacked"] = "auto"


DEFAULT_VARIANTS = [VariantConfig(name="batchnorm", norm="batchnorm", placement="before_activation"),
                    VariantConfig(name="plain", norm="none")]
NOT_SWEEPABLE = {"name", "seeds", "variants", "baseline", "sweep"}


class Config(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    seeds: list[NonNegativeInt] = Field(default=[42], min_length=1)
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    variants: list[VariantConfig] = Field(default=DEFAULT_VARIANTS, min_length=1)
    baseline: Optional[str] = None  # default: "plain" if present, else the first variant without BN
    optimizer: OptimizerConfig = OptimizerConfig()
    training: TrainingConfig = TrainingConfig()
    sweep: dict[str, list[Any]] = {}
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds):
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants):
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        return variants

    @field_validator("sweep")
    @classmethod
    def _sweep_paths(cls, sweep):
        for path, values in sweep.items():
            if path.split(".")[0] in NOT_SWEEPABLE:
                raise ValueError(f"'{path}' cannot be swept (sweepable: dataset.*, model.*, optimizer.*, training.*)")
            _check_path(path.split("."), "sweep")
            if not values:
                raise ValueError(f"'{path}' has no values")
        return sweep

    @model_validator(mode="after")
    def _baseline(self):
        names = [v.name for v in self.variants]
        if self.baseline is None:
            plain = [v.name for v in self.variants if v.norm == "none"]
            self.__dict__["baseline"] = "plain" if "plain" in names else (plain or names)[0]
        elif self.baseline not in names:
            raise ValueError(f"baseline '{self.baseline}' is not a variant; choose one of {names}")
        return self

    @model_validator(mode="after")
    def _batch_for_bn(self):
        sizes = self.sweep.get("training.batch_size", [self.training.batch_size])
        if 1 in sizes and any(v.norm == "batchnorm" for v in self.variants):
            raise ValueError("training.batch_size: BatchNorm cannot train on batches of 1 example; use 2 or more")
        return self

    def sweep_points(self) -> list[dict[str, Any]]:
        """The cartesian product of the sweep, one dict {dotted path: value} per point ([{}] without a sweep)."""
        keys = list(self.sweep)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.sweep[k] for k in keys))]

    def with_values(self, point: dict[str, Any]) -> "Config":
        """This config with dotted-path values set (a sweep point); validated again."""
        raw = self.model_dump()
        for path, value in point.items():
            _set_path(raw, path.split("."), value)
        return Config.model_validate(raw)

    def get(self, path: str) -> Any:
        node = self
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else getattr(node, part)
        return node


# ---- dotted paths ------------------------------------------------------------------------------------------------

def _check_path(parts: list[str], what: str) -> None:
    """Raise ValueError unless `parts` is a path through the Config schema (list items by index)."""
    model, done = Config, []
    for part in parts:
        if model is None:
            raise ValueError(f"{what} path '{'.'.join(parts)}': '{'.'.join(done)}' has no fields")
        if model is list:
            if not part.isdigit():
                raise ValueError(f"{what} path '{'.'.join(parts)}': '{part}' should be a list index")
            model, done = VariantConfig, done + [part]
            continue
        if part not in model.model_fields:
            raise ValueError(f"{what} path '{'.'.join(parts)}': unknown key '{part}'{_suggest(part, model.model_fields)}")
        annotation = model.model_fields[part].annotation
        model = (annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel)
                 else list if part == "variants" else None)
        done.append(part)


def _set_path(raw: dict, parts: list[str], value: Any) -> None:
    node = raw
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ValueError(f"'{part}' is not a mapping")
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(options)}"


# ---- loading -----------------------------------------------------------------------------------------------------

def shipped_configs() -> dict[str, Path]:
    """The configs installed with the package, by name."""
    return {p.name[:-5]: Path(str(p)) for p in SHIPPED.iterdir() if p.name.endswith(".yaml")}


def resolve(ref: str) -> Path:
    """A config path, or the name of a shipped config ("mlp" -> the installed mlp.yaml)."""
    path = Path(ref)
    if path.is_file():
        return path
    shipped = shipped_configs()
    if ref in shipped:
        return shipped[ref]
    if path.exists():
        raise BnbenchError(f"{ref}: is not a file; pass a YAML config file or a shipped config name")
    raise BnbenchError(f"{ref}: no such config file or shipped config{_suggest(ref, sorted(shipped))}"
                       .replace("valid keys", "shipped configs"))


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise BnbenchError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BnbenchError(f"{path}: malformed YAML: {yaml_problem(e)}") from None
    if not isinstance(raw, dict):
        raise BnbenchError(f"{path}: expected a mapping of config fields at the top level, got {type(raw).__name__}")
    return raw


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error as one line: 'line 3, column 7: <problem>'."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + " ".join(str(getattr(error, "problem", None) or error).split())


def parse_override(text: str) -> tuple[list[str], Any]:
    """'training.epochs=1' -> (['training', 'epochs'], 1); the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BnbenchError(f"--set {text}: expected PATH=VALUE, e.g. --set training.epochs=1")
    parts = key.strip().split(".")
    try:
        _check_path(parts, "--set")
    except ValueError as e:
        raise BnbenchError(f"--set {text}: {e}") from None
    try:
        return parts, yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise BnbenchError(f"--set {text}: value is not valid YAML ({yaml_problem(e)})") from None


def validate(raw: dict, source: str) -> Config:
    try:
        config = Config.model_validate(raw)
        for point in config.sweep_points():
            config.with_values(point)
        return config
    except ValidationError as e:
        raise BnbenchError(f"{source}: {_explain(e)}") from None
    except ValueError as e:
        raise BnbenchError(f"{source}: sweep: {e}") from None


def load_config(ref: str, overrides: tuple[str, ...] = (), seeds: Optional[list[int]] = None,
                device: Optional[str] = None) -> tuple[Config, Path]:
    """Read, override and validate a config; returns it with the file it came from."""
    path = resolve(ref)
    raw = copy.deepcopy(read_yaml(path))
    if any(o.startswith("variants.") for o in overrides):  # `--set variants.1.name=x` edits the default list too
        raw.setdefault("variants", [v.model_dump() for v in DEFAULT_VARIANTS])
    try:
        for text in overrides:
            parts, value = parse_override(text)
            _set_path(raw, parts, value)
    except (ValueError, IndexError, TypeError, AttributeError) as e:
        raise BnbenchError(f"--set: cannot apply to {path}: {e}") from None
    if seeds is not None:
        raw["seeds"] = seeds
    if device is not None:
        raw["device"] = device
    return validate(raw, str(path)), path


def _explain(error: ValidationError) -> str:
    """The first validation error as 'field: problem (fix)', plus how many more there are."""
    errors = error.errors()
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    field = ".".join(loc)
    if first["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        message = f"unknown key '{loc[-1]}'{_suggest(loc[-1], parent.model_fields if parent else [])}"
    elif first["type"] == "missing":
        message = "is required"
    elif not loc:  # a check across fields (a model validator): its message names the fields, the input is all
        message = first["msg"].removeprefix("Value error, ")
    else:
        message = f"{first['msg'].removeprefix('Value error, ')} (got {first.get('input')!r})"
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
    return f"{message}{more}" if not loc else f"{field}: {message}{more}"


def _model_at(loc: list[str]):
    model = Config
    for part in loc:
        if part.isdigit():
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        model = VariantConfig if part == "variants" else annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return model


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
