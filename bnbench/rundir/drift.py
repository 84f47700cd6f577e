"""How a run's config has drifted: config.yaml edited since the run began (meta.json keeps the resolved config it
started with), and its source file changed since (meta.json keeps the file and the overrides). One reading for
the runner, which refuses to resume a drifted run (it would mix two experiments), and for `show`, which says it.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config, diff
from bnbench.experiment.loading import load_config, validate
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta


@dataclass
class Drift:
    edited: list[str]  # config.yaml's fields edited since the run began, 'field: as started -> as now'
    source: Optional[str]  # the config file the run was started from, if recorded
    source_state: str  # unchanged, or why the file was not checked, or how it changed
    changed: list[str] = field(default_factory=list)  # the file now (with the run's overrides) vs the run
    from_source: list[str] = field(default_factory=list)  # what the overrides changed: 'field: file -> run'
    error: Optional[BnbenchError] = None  # why the file no longer loads


def drift(run_dir: Path, meta: Meta, stored: Config, strict: bool = False) -> Drift:
    """The run's drift; `strict`: a recorded config that no longer validates is an error (the runner's reading),
    else it is compared as recorded."""
    resolved = stored.model_dump(mode="json")
    started = _started(meta.fields.config, RunFolder(run_dir).meta_file, strict)
    edited = diff(started, resolved) if started is not None else []
    source, overrides = meta.fields.source, meta.overrides()
    if not source:
        return Drift(edited, None, "not recorded")
    if overrides is None:
        return Drift(edited, source, "not checked: meta.json's overrides are damaged")
    if not Path(source).is_file():
        return Drift(edited, source, f"missing: {source} no longer exists")
    try:
        plain = load_config(source)[0].model_dump(mode="json")
        now = load_config(source, tuple(overrides.set), overrides.seeds, overrides.device, tuple(overrides.sweep))[
            0
        ].model_dump(mode="json")
    except BnbenchError as e:
        return Drift(edited, source, f"no longer loads: {e}", error=e)
    changed = diff(started or resolved, now)
    state = "unchanged" if not changed else f"changed since the run began ({'; '.join(changed)}; run -> file now)"
    return Drift(edited, source, state, changed, diff(plain, resolved))


def edited(meta: Meta, run_dir: Path, stored: Config) -> list[str]:
    """config.yaml's fields edited since the run began ('field: as started -> as now'), without reading the
    source file (for `compare` and a complete run's `--resume`); meta.json's config is compared as recorded if it
    no longer validates."""
    resolved = stored.model_dump(mode="json")
    raw = meta.fields.config
    if raw is None or raw == resolved:
        return []
    return diff(_started(raw, RunFolder(run_dir).meta_file, strict=False), resolved)


def _started(raw: Optional[dict], path: Path, strict: bool) -> Optional[dict]:
    """The recorded config with the fields added to bnbench since at their defaults (so that they do not read as
    differences); not strict: as recorded if it no longer validates."""
    if raw is None:
        return None
    if strict:
        return validate(raw, str(path)).model_dump(mode="json")
    try:
        return Config.model_validate(raw).model_dump(mode="json")
    except ValueError:
        return raw
