"""The experiment config's schema: one YAML file describes one experiment; pydantic validates it, and every
check's message names the field and the fix. Dotted paths through the schema (`--set`, sweeps) live here too.
The model and variant sections are `model_variants`', the field types they share `fields`'; reading a file is
`safe_yaml`'s job, loading an experiment (overrides, trials) `loading`'s.
"""

import difflib
import itertools
import math
import os
import shlex
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, Field, NonNegativeInt, ValidationError, field_validator, model_validator

from bnbench.experiment.fields import Count, FiniteFloat, Name, Number, Strict, brief
from bnbench.experiment.model_variants import GROUPS, ModelConfig, VariantConfig

MAX_TRIALS = 10_000  # variants x seeds x sweep points of one run


class DatasetConfig(Strict):
    name: Literal["cifar10", "cifar100", "mnist", "fashion_mnist", "imagefolder", "digits"] = "cifar10"
    root: str = "./data"
    download: bool = True
    normalize: bool = False  # per-channel standardisation with the train split's mean/std (after the held-out part)
    limit: Optional[Count] = None  # training examples kept, stratified (bnbench.experiment.subsets)
    test_limit: Optional[Count] = None  # test examples kept, stratified
    validation: Optional[Union[int, float]] = None  # held out of train: a fraction in (0, 1) or a count
    augment: list[Literal["crop", "flip"]] = []  # per-batch augmentation of the training split (.augment)
    LATER = ("limit", "test_limit", "validation", "augment")

    @field_validator("root")
    @classmethod
    def _home(cls, root: str) -> str:
        """`~/data` as a shell would read it (a value from --set or a YAML file never passes through one)."""
        return os.path.expanduser(root)

    @field_validator("validation", mode="before")
    @classmethod
    def _held_out(cls, value: Any) -> Any:
        """A float is a fraction of the training split, an integer a count of its examples (0.5 and 50 are both
        meaningful, so neither is read as the other); '1e-1' (YAML reads it as text) is a float, as elsewhere."""
        if value is None:
            return None
        if isinstance(value, str):
            value = next((kind(value) for kind in (int, float) if _parses(kind, value)), value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{brief(value)} is not a number; use a fraction such as 0.1 or a count such as 200")
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError(f"{value} is no fraction in (0, 1); use e.g. 0.1 (10 %), or a count such as 200")
        if isinstance(value, int) and value < 1:
            raise ValueError(f"{value} holds out no example; use a count >= 1, a fraction such as 0.1, or remove it")
        return value

    @field_validator("augment")
    @classmethod
    def _once_each(cls, kinds: list[str]) -> list[str]:
        """Each kind once, in one order (crop, then flip: what is applied), so that equal recipes compare equal."""
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"{kinds} names a kind twice; list each of crop, flip at most once")
        return sorted(kinds)


def _parses(kind: type, text: str) -> bool:
    try:
        kind(text)
        return True
    except ValueError:
        return False


class OptimizerConfig(Strict):
    name: Literal["adam", "sgd", "adamw"] = "adam"
    lr: FiniteFloat = Field(1.0e-4, gt=0)
    momentum: FiniteFloat = Field(0.9, ge=0, lt=1)  # sgd only
    weight_decay: Optional[FiniteFloat] = Field(None, ge=0)  # None: the optimizer's own default
    nesterov: bool = False  # sgd only: Nesterov momentum
    norm_decay: bool = True  # false: no weight decay on 1-d parameters (norm layers' scales and shifts, biases)
    schedule: Literal["constant", "cosine", "step", "linear"] = "constant"  # the lr per step (engines.schedule)
    warmup_epochs: FiniteFloat = Field(0.0, ge=0)  # linear warmup from ~0 to lr, in epochs (fractions allowed)
    milestones: list[Annotated[int, Field(ge=1), Number]] = []  # step: the epochs after which lr is x gamma
    gamma: FiniteFloat = Field(0.1, gt=0, le=1)  # step: the factor at each milestone
    LATER = ("nesterov", "norm_decay", "schedule", "warmup_epochs", "milestones", "gamma")

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, milestones: list[int]) -> list[int]:
        if any(a >= b for a, b in zip(milestones, milestones[1:])):
            raise ValueError("list the epochs in increasing order, each once, e.g. [30, 60]")
        return milestones

    def decays(self) -> bool:
        """Whether weight decay is applied at all (adamw's default is 0.01; adam's and sgd's is 0)."""
        return bool(self.weight_decay) or (self.weight_decay is None and self.name == "adamw")


class TrainingConfig(Strict):
    """Counts are bounded far above any real run, so that no counter can overflow a 64-bit tensor or a format."""

    epochs: Count = Field(5, le=100_000)
    batch_size: Count = Field(10, le=10_000_000)
    shuffle: bool = True
    log_every: Annotated[NonNegativeInt, Number] = Field(500, le=10**9)  # 0: no "Loss after mini-batch N" lines
    eval_every: Optional[Count] = Field(None, le=10**9)  # steps between test evaluations; None: epoch ends
    engine: Literal["auto", "eager", "graph", "stacked"] = "auto"
    checkpoints: Literal["resume", "final", "none"] = (
        "resume"  # what a finished trial keeps (bnbench.rundir.checkpoints)
    )
    probe_every: Optional[Count] = Field(None, le=10**9)  # steps between probes (bnbench.engines.probes); None: none
    probe_batch: Annotated[int, Number] = Field(256, ge=2, le=100_000)  # examples in each trial's fixed probe batch


DEFAULT_VARIANTS = [
    VariantConfig(name="batchnorm", norm="batchnorm", placement="before_activation"),
    VariantConfig(name="plain", norm="none"),
]
NOT_SWEEPABLE = {"name", "seeds", "variants", "baseline", "sweep"}
SWEEPABLE = "model.*, optimizer.*, training.* but training.engine and training.checkpoints"
PER_RUN = {  # what the runner sets up once per run: path -> (why, option and argument that set it)
    "dataset": ("the data set is loaded once per run", "--set", "{path}={value}"),
    "training.engine": ("one engine trains all trials of a run", "--set", "{path}={value}"),
    "training.checkpoints": ("one setting keeps the checkpoints of all trials of a run", "--set", "{path}={value}"),
    "device": ("all trials of a run share one device", "--device", "{value}"),
}


class Config(Strict):
    name: Name
    seeds: list[Annotated[NonNegativeInt, Field(lt=2**63), Number]] = Field(default=[42], min_length=1)
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
        if len({n.casefold() for n in names}) != len(names):
            raise ValueError(
                f"variant names must differ in more than case (they name checkpoint files, and macOS "
                f"and Windows ignore case), got {names}"
            )
        return variants

    @field_validator("sweep")
    @classmethod
    def _sweep_paths(cls, sweep):
        for path, values in sweep.items():
            if path.split(".")[0] in NOT_SWEEPABLE:
                raise ValueError(f"'{path}' cannot be swept (sweepable: {SWEEPABLE})")
            check_path(path.split("."), "sweep")
            _refuse_per_run(path, values)
            if not values:
                raise ValueError(f"'{path}' has no values")
        return sweep

    @model_validator(mode="after")
    def _bounded_trials(self):
        """Count the trials from the list lengths before any is built: listing 3 million sweep points took minutes."""
        points = math.prod(len(values) for values in self.sweep.values())
        trials = len(self.variants) * len(self.seeds) * points
        if trials > MAX_TRIALS:
            raise ValueError(
                f"variants x seeds x sweep points = {len(self.variants):,} x {len(self.seeds):,} x "
                f"{points:,} = {trials:,} trials, more than the {MAX_TRIALS:,} one run may hold; "
                f"sweep fewer values or split the sweep into several runs"
            )
        return self

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

    @model_validator(mode="after")
    def _layer_for_bn(self):
        """An mlp without hidden layers has no layer to normalise: its norm variants would be the plain network,
        unnoticed; so would an mlp's instancenorm (a dense feature has no positions to normalise over)."""
        normed = [v for v in self.variants if v.norm != "none"]
        if self.model.kind == "mlp" and not self.model.hidden and normed:
            raise ValueError(
                f"model.hidden: [] leaves the mlp no hidden layer to normalise, so variant "
                f"'{normed[0].name}' would be the plain network; add a width (e.g. model.hidden: [64]) "
                f"or use norm: none"
            )
        instance = [v.name for v in normed if v.norm == "instancenorm"]
        if self.model.kind == "mlp" and instance:
            raise ValueError(
                f"variant '{instance[0]}': instancenorm normalises each channel over its image positions, "
                f"and an mlp's features have none; use it with model.kind: cnn, or use layernorm"
            )
        return self

    @model_validator(mode="after")
    def _groups_below_dense_widths(self):
        """GroupNorm of a dense layer with as many groups as features puts each feature in a group of its own and
        normalises it to 0: the layer's output is its shift, unnoticed. The groups clip to the width, so the
        default and any larger count do it on the built-ins' narrowest hidden layer (conv features have positions
        to normalise over; models bnbench does not lay out are checked when built, nets/norms.py)."""
        if self.model.kind not in ("mlp", "cnn") or not self.model.hidden:
            return self
        narrowest = min(self.model.hidden)
        for v in self.variants:
            if v.norm == "groupnorm" and (v.groups or GROUPS) >= narrowest:
                fix = (
                    f"set groups below {narrowest} (e.g. groups: {max(1, narrowest // 8)})"
                    if narrowest > 1
                    else "widen model.hidden"
                )
                raise ValueError(
                    f"variant '{v.name}': groups {v.groups or f'{GROUPS} (the default)'} on the "
                    f"{narrowest}-wide hidden layer of model.hidden {self.model.hidden} puts each feature "
                    f"in a group of its own, which GroupNorm normalises to 0; {fix}, or use layernorm"
                )
        return self

    @model_validator(mode="after")
    def _model_takes_norms(self):
        """torchvision models and factories put their norm layers where their authors did: only the norm kind is
        the variant's, and a VGG only comes with and without BatchNorm."""
        for v in self.variants:
            if v.placement != "before_activation" and self.model.kind in ("torchvision", "timm", "factory"):
                raise ValueError(
                    f"variant '{v.name}': placement is for the mlp and cnn; a {self.model.kind} model "
                    f"places its norm layers itself (remove placement)"
                )
            if v.norm not in self.model.norms():
                raise ValueError(
                    f"variant '{v.name}': {self.model.name} cannot take norm: {v.norm}; it takes "
                    f"{', '.join(self.model.norms())}"
                )
        return self

    @model_validator(mode="after")
    def _variant_overrides(self):
        """A variant's own settings (`overrides`: each variant at its own tuned learning rate) are optimizer fields
        only, so that what compare reads per sweep point (batch size, epochs, seeds) stays one config; a swept
        path would be set twice, and is refused."""
        for v in self.variants:
            typed = {}
            for path, value in v.overrides.items():
                section, _, name = path.partition(".")
                if section != "optimizer" or name not in OptimizerConfig.model_fields:
                    raise ValueError(
                        f"variant '{v.name}': overrides {brief(path)}: only optimizer fields may differ per variant "
                        f"({', '.join('optimizer.' + f for f in OptimizerConfig.model_fields)})"
                    )
                if path in self.sweep:
                    raise ValueError(f"variant '{v.name}': overrides {path}, which the sweep sets; remove one of them")
                try:
                    optimizer = OptimizerConfig.model_validate({**self.optimizer.model_dump(), name: value})
                except ValidationError as e:
                    problem = e.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(f"variant '{v.name}': overrides {path}: {problem} (got {brief(value)})") from None
                typed[path] = getattr(optimizer, name)  # as the field reads it ('1e-3', YAML's string, is 0.001)
            if typed:
                v.__dict__["overrides"] = typed
        return self

    @model_validator(mode="after")
    def _nesterov(self):
        """torch's SGD takes nesterov only with momentum; adam and adamw have no such switch."""
        opt = self.optimizer
        if opt.nesterov and opt.name != "sgd":
            raise ValueError(
                f"optimizer.nesterov: true is sgd's (Nesterov momentum), optimizer.name {opt.name} has none; "
                f"use optimizer.name: sgd, or remove nesterov"
            )
        if opt.nesterov and opt.momentum == 0:
            raise ValueError(
                "optimizer.nesterov: true needs optimizer.momentum above 0 (without momentum it is plain SGD, "
                "which torch refuses to call Nesterov); set momentum (e.g. 0.9) or remove nesterov"
            )
        return self

    @model_validator(mode="after")
    def _schedule_in_run(self):
        """A warmup as long as the run never reaches optimizer.lr; a milestone at or past the last epoch never
        changes it; a step schedule without milestones is the constant one."""
        opt, epochs = self.optimizer, self.training.epochs
        if opt.warmup_epochs >= epochs:
            raise ValueError(
                f"optimizer.warmup_epochs: {opt.warmup_epochs:g} is the whole run of training.epochs {epochs} "
                f"or more, so the lr would never reach optimizer.lr; warm up for fewer epochs (e.g. {epochs / 10:g})"
            )
        if opt.schedule == "step" and not opt.milestones:
            raise ValueError(
                "optimizer.schedule: step needs optimizer.milestones, the epochs after which the lr is multiplied "
                "by optimizer.gamma (e.g. milestones: [30, 60])"
            )
        late = [m for m in opt.milestones if m >= epochs]
        if opt.schedule == "step" and late:
            raise ValueError(
                f"optimizer.milestones: epoch {late[0]} is not before the end of the run (training.epochs "
                f"{epochs}), so it never changes the lr; use milestones below {epochs}"
            )
        return self

    def sweep_points(self) -> list[dict[str, Any]]:
        """The cartesian product of the sweep, one dict {dotted path: value} per point ([{}] without a sweep)."""
        keys = list(self.sweep)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.sweep[k] for k in keys))]

    def with_values(self, point: dict[str, Any]) -> "Config":
        """This config with dotted-path values set (a sweep point); validated again, all but the sweep itself,
        which was checked with this config (validating it at every point made listing N points cost N x N)."""
        raw = self.model_dump(exclude={"sweep"})
        for path, value in point.items():
            set_path(raw, path.split("."), value)
        return Config.model_validate(raw).model_copy(update={"sweep": self.sweep})

    def ignored(self) -> dict[str, str]:
        """The fields this config takes but does not use, each with why: two sweep points that differ only in them
        make the same trials (the mlp takes model.channels, so that a sweep of model.kind can compare it with
        the cnn; only sgd uses optimizer.momentum)."""
        out = {}
        if self.model.kind == "mlp":
            out["model.channels"] = "model.kind mlp does not use model.channels"
        if self.optimizer.name != "sgd":
            out["optimizer.momentum"] = f"optimizer.name {self.optimizer.name} does not use optimizer.momentum"
        if self.optimizer.schedule != "step":
            for name in ("milestones", "gamma"):
                out[f"optimizer.{name}"] = f"optimizer.schedule {self.optimizer.schedule} does not use optimizer.{name}"
        if not self.optimizer.decays():
            out["optimizer.norm_decay"] = "without weight decay optimizer.norm_decay has nothing to leave out"
        return out

    def get(self, path: str) -> Any:
        node = self
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else getattr(node, part)
        return node


def _refuse_per_run(path: str, values: list) -> None:
    """Sweeping what the runner sets up once per run would be ignored silently: every point would get the first."""
    for fixed, (why, option, argument) in PER_RUN.items():
        if path == fixed or path.startswith(fixed + "."):
            example = argument.format(path=path, value=_flow(values[0]) if values else "VALUE")
            raise ValueError(
                f"'{path}' cannot be swept: {why}; make one run per value instead, e.g. {option} {shlex.quote(example)}"
            )
        if fixed.startswith(path + "."):
            raise ValueError(
                f"'{path}' cannot be swept as a whole: it holds {fixed}, and {why}; sweep the other "
                f"fields one by one (sweepable: {SWEEPABLE})"
            )


def _flow(value: Any) -> str:
    """A value as one line of YAML, as --set takes it."""
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).removesuffix("\n...\n").strip()


# ---- dotted paths ------------------------------------------------------------------------------------------------


def check_path(parts: list[str], what: str) -> None:
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
            path = ".".join(parts)
            raise ValueError(f"{what} path {path!r}: unknown key {part!r}{suggest(part, model.model_fields)}")
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else list
            if part == "variants"
            else None
        )
        done.append(part)


def set_path(raw: dict, parts: list[str], value: Any) -> None:
    node = raw
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ValueError(f"'{part}' is not a mapping")
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(options)}"


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """'training.epochs: 10 -> 12' for each field that differs between two configs as mappings (model_dump)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(set(a) | set(b), key=str)
            for d in diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        ]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def describe_model(config: Config) -> str:
    """'mlp [64, 32]', 'cnn [16, 32] + [64]', 'resnet18 (torchvision) width 32', 'mymodule:make (factory)': the
    model as a person names it, for titles and lists (a torchvision model's width only when not its own 64)."""
    model = config.model
    if model.kind == "torchvision":
        return f"{model.name} (torchvision)" + (f" width {model.width}" if model.width != 64 else "")
    if model.kind == "timm":
        return f"{model.name} (timm)"
    if model.kind == "factory":
        return f"{model.factory} (factory)"
    return f"mlp {model.hidden}" if model.kind == "mlp" else f"cnn {model.channels} + {model.hidden}"
