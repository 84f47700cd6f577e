"""Loading an experiment: a config file (or a shipped config's name; or its fields as a dict) read safely,
`--set` overrides applied along dotted paths, seeds and device set, and the result validated down to its trials.
It sits above the schema (`config`) and the trial list (`trials`), so that neither imports the other."""

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ValidationError

from bnbench.errors import BnbenchError
from bnbench.experiment.config import DEFAULT_VARIANTS, Config, DatasetConfig, check_path, set_path, suggest
from bnbench.experiment.fields import brief
from bnbench.experiment.model_variants import VariantConfig
from bnbench.experiment.safe_yaml import load_yaml, read_yaml, yaml_problem
from bnbench.experiment.trials import expand, refuse_same_trials

SHIPPED = resources.files("bnbench") / "configs"


def shipped_configs() -> dict[str, Path]:
    """The configs installed with the package, by name."""
    return {p.name[:-5]: Path(str(p)) for p in SHIPPED.iterdir() if p.name.endswith(".yaml")}


def resolve(ref: str) -> Path:
    """A config path (`~` as a shell reads it), or the name of a shipped config ("mlp" -> the installed mlp.yaml)."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    shipped = shipped_configs()
    if ref in shipped:
        return shipped[ref]
    if path.exists():
        raise BnbenchError(f"{ref}: is not a file; pass a YAML config file or a shipped config name")
    raise BnbenchError(
        f"{ref}: no such config file or shipped config{suggest(ref, sorted(shipped))}".replace(
            "valid keys", "shipped configs"
        )
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """'training.epochs=1' -> (['training', 'epochs'], 1); the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BnbenchError(f"--set {text}: expected PATH=VALUE, e.g. --set training.epochs=1")
    parts = key.strip().split(".")
    try:
        check_path(parts, "--set")
    except ValueError as e:
        raise BnbenchError(f"--set {text}: {e}") from None
    try:
        return parts, load_yaml(value)
    except yaml.YAMLError as e:
        raise BnbenchError(f"--set {text}: value is not valid YAML ({yaml_problem(e)})") from None


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """'optimizer.lr=1e-4,1e-3' -> ('optimizer.lr', [0.0001, 0.001]): Hydra's sweep habit, values separated by
    commas outside brackets and quotes, each parsed as YAML as --set parses one ('model.hidden=[64,32],[128,64]'
    sweeps two lists; 'model.hidden=[64,32]' is a sweep of one value). The values read as the items of the YAML
    flow list `[VALUES]`, which splits them exactly so."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise BnbenchError(f"--sweep {text}: expected PATH=V1,V2,..., e.g. --sweep optimizer.lr=1e-4,1e-3")
    key = key.strip()
    try:
        check_path(key.split("."), "--sweep")
        parsed = load_yaml(f"[{values}]")
    except ValueError as e:
        raise BnbenchError(f"--sweep {text}: {e}") from None
    except yaml.YAMLError as e:
        raise BnbenchError(
            f"--sweep {text}: values are not comma-separated YAML ({yaml_problem(e)}); e.g. "
            f"--sweep 'model.hidden=[64,32],[128,64]'"
        ) from None
    return key, parsed


def validate(raw: dict, source: str, new: bool = False) -> Config:
    """A raw config as a Config, with every trial checked (each sweep point valid, each trial's file name distinct
    and short enough), so that no mistake surfaces after the data set is loaded. `new`: the config of a new run,
    whose sweep must not make one trial twice (a stored run's is read as it was made)."""
    try:
        config = Config.model_validate(raw)
        trials = expand(config)
        if new:
            refuse_same_trials(trials)
        return config
    except ValidationError as e:
        raise BnbenchError(f"{source}: {_explain(e)}") from None
    except ValueError as e:
        raise BnbenchError(f"{source}: {e}") from None


FACTORY_FOLDERS: list[Path] = []  # the folders of the factory configs loaded in this process (`factories_beside`)


def factories_beside(config_file: Path) -> None:
    """A factory config's folder is searched for its module too (after the working directory): a config and its
    module kept side by side run from any folder. (A forked --jobs worker inherits the list.)"""
    folder = config_file.resolve().parent
    if folder not in FACTORY_FOLDERS:
        FACTORY_FOLDERS.append(folder)


DICT_SOURCE = "config"  # how a message names a config given as a dict (bnbench.run's argument), as a file's path


def load_config(
    ref: Union[str, dict],
    overrides: tuple[str, ...] = (),
    seeds: Optional[list[int]] = None,
    device: Optional[str] = None,
    sweeps: tuple[str, ...] = (),
) -> tuple[Config, Optional[Path]]:
    """Read, override and validate a config; returns it with the file it came from (None for a dict: `ref` may be
    a config's fields as a YAML file holds them, checked the same way). `sweeps` ('PATH=V1,V2') each add a sweep
    axis, or replace the file's axis of that path (in its place: the trials keep the file's order)."""
    path = None if isinstance(ref, dict) else resolve(ref)
    raw = copy.deepcopy(ref if path is None else read_yaml(path))
    source = DICT_SOURCE if path is None else str(path)
    named = raw.get("name"), data_name(raw)
    if any(o.startswith("variants.") for o in overrides):  # `--set variants.1.name=x` edits the default list too
        raw.setdefault("variants", [v.model_dump() for v in DEFAULT_VARIANTS])
    try:
        for text in overrides:
            parts, value = parse_override(text)
            set_path(raw, parts, value)
    except (ValueError, IndexError, TypeError, AttributeError) as e:
        raise BnbenchError(f"--set: cannot apply to {source}: {e}") from None
    renamed = named_for_data(*named, data_name(raw))
    if renamed != named[0] and raw.get("name") == named[0]:  # not named by --set name=...
        raw["name"] = renamed
    if seeds is not None:
        raw["seeds"] = seeds
    if device is not None:
        raw["device"] = device
    axes = _sweep_axes(sweeps)
    if axes and isinstance(raw.get("sweep", {}), dict):
        raw["sweep"] = {**raw.get("sweep", {}), **{key: values for key, (_, values) in axes.items()}}
    try:
        config = validate(raw, source, new=True)
        if config.model.kind == "factory" and path is not None:
            factories_beside(path)
        return config, path
    except BnbenchError:
        _blame_sweeps(raw, axes, source)
        raise


def named_for_data(name, dataset: Optional[str], other: Optional[str]):
    """A config named after its data set ('resnet18-cifar10') run on another one (`--set dataset.name=digits`):
    named after the data it runs on ('resnet18-digits'), so that its run folder, `list` and `compare` say it. Any
    other name is the user's choice, and stays."""
    suffix = f"-{dataset}"
    if isinstance(name, str) and other and other != dataset and name.endswith(suffix):
        return f"{name[: -len(suffix)]}-{other}"
    return name


def data_name(raw: dict) -> Optional[str]:
    """The data set a raw config names (its default when it names none; an image folder by its root's folder
    name, as `data.load_dataset` names it: 'cifar10' for /tmp/cifar10); None where it is malformed (validation
    says so)."""
    dataset = raw.get("dataset", {})
    name = dataset.get("name", DatasetConfig.model_fields["name"].default) if isinstance(dataset, dict) else None
    root = dataset.get("root") if isinstance(dataset, dict) else None
    if name == "imagefolder" and isinstance(root, str) and Path(root).name:
        return Path(root).name
    return name if isinstance(name, str) else None


def _sweep_axes(sweeps: tuple[str, ...]) -> dict[str, tuple[str, list[Any]]]:
    """{path: (the option's text, values)} of the --sweep options; one path given twice is refused (which one
    was meant?)."""
    axes: dict[str, tuple[str, list[Any]]] = {}
    for text in sweeps:
        key, values = parse_sweep(text)
        if key in axes:
            raise BnbenchError(f"--sweep {text}: {key} is already swept by --sweep {axes[key][0]}; give each path once")
        axes[key] = (text, values)
    return axes


def _blame_sweeps(raw: dict, axes: dict[str, tuple[str, list[Any]]], source: str) -> None:
    """A config that does not validate with its --sweep axes: where the file (with --set) is valid alone, the
    first axis that is not valid with it is refused under its own option, with the YAML sweep's message."""
    if not axes:
        return
    alone = {**raw, "sweep": {}}
    try:
        validate(alone, source, new=True)
    except BnbenchError:
        return  # the file's own problem: its message stands
    for key, (text, values) in axes.items():
        validate({**alone, "sweep": {key: values}}, f"--sweep {text}", new=True)


def _explain(error: ValidationError) -> str:
    """The first validation error as 'field: problem (fix)', plus how many more there are."""
    errors = error.errors()
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    field = ".".join(p if p.isprintable() else repr(p) for p in loc)  # a key of '\n' must not break the line
    if first["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        message = f"unknown key {loc[-1]!r}{suggest(loc[-1], parent.model_fields if parent else [])}"
    elif first["type"] == "missing":
        message = "is required"
    elif not loc:  # a check across fields (a model validator): its message names the fields, the input is all
        message = first["msg"].removeprefix("Value error, ")
    else:
        message = f"{first['msg'].removeprefix('Value error, ')} (got {brief(first.get('input'))})"
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
