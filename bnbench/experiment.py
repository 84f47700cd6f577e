"""Loading an experiment: a config file (or a shipped config's name) read safely, `--set` overrides applied along
dotted paths, seeds and device set, and the result validated down to its trials. It sits above the schema
(`config`) and the trial list (`trials`), so that neither imports the other."""

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ValidationError

from .config import DEFAULT_VARIANTS, Config, VariantConfig, brief, check_path, set_path, suggest
from .errors import BnbenchError
from .safe_yaml import load_yaml, read_yaml, yaml_problem
from .trials import expand

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


def validate(raw: dict, source: str) -> Config:
    """A raw config as a Config, with every trial checked (each sweep point valid, each trial's file name distinct
    and short enough), so that no mistake surfaces after the data set is loaded."""
    try:
        config = Config.model_validate(raw)
        expand(config)
        return config
    except ValidationError as e:
        raise BnbenchError(f"{source}: {_explain(e)}") from None
    except ValueError as e:
        raise BnbenchError(f"{source}: {e}") from None


def load_config(
    ref: str, overrides: tuple[str, ...] = (), seeds: Optional[list[int]] = None, device: Optional[str] = None
) -> tuple[Config, Path]:
    """Read, override and validate a config; returns it with the file it came from."""
    path = resolve(ref)
    raw = copy.deepcopy(read_yaml(path))
    if any(o.startswith("variants.") for o in overrides):  # `--set variants.1.name=x` edits the default list too
        raw.setdefault("variants", [v.model_dump() for v in DEFAULT_VARIANTS])
    try:
        for text in overrides:
            parts, value = parse_override(text)
            set_path(raw, parts, value)
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
