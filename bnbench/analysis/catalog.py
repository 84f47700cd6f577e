"""What `bnbench list` shows: the configs in a folder and the runs under a results folder, as plain rows."""

from pathlib import Path
from typing import Optional

from bnbench.analysis.decisions import as_typed, overrides_text
from bnbench.errors import BnbenchError
from bnbench.experiment.config import describe_model
from bnbench.experiment.loading import SHIPPED, load_config
from bnbench.experiment.trials import expand
from bnbench.rundir import search
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.tags import has_tags, note_of, tags_of
from bnbench.rundir.tunes import is_tune


def config_rows(folder: Optional[Path]) -> list[dict]:
    """One row per *.yaml config; an invalid config gets its error message instead of its fields."""
    if folder is None:
        folder = Path("configs") if Path("configs").is_dir() else Path(str(SHIPPED))
    if not folder.is_dir():
        raise BnbenchError(f"--configs: '{folder}' is not a folder")
    rows = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            config, _ = load_config(str(path))
        except BnbenchError as e:
            rows.append({"file": path.name, "error": str(e)})
            continue
        rows.append(
            {
                "file": path.name,
                "name": config.name,
                "dataset": config.dataset.name,
                "model": describe_model(config),
                "variants": ", ".join(v.name for v in config.variants),
                "seeds": ", ".join(map(str, config.seeds)),
                "epochs": config.training.epochs,
                "sweep": ", ".join(f"{k} x{len(v)}" for k, v in config.sweep.items()),
                "trials": len(expand(config)),
            }
        )
    return rows


def run_rows(results: Path, tags: tuple[str, ...] = ()) -> list[dict]:
    """One row per run folder under `results` (newest first), or per run tagged with all of `tags`; unreadable
    runs say why (unless runs are selected by tag: theirs cannot be read)."""
    if not results.exists():
        return []
    rows = []
    for run_dir in search.find_runs([results]):
        folder = RunFolder(run_dir)
        try:
            meta = folder.meta()
        except BnbenchError as e:
            rows += [] if tags else [{"run": str(run_dir), "error": str(e)}]
            continue
        if not has_tags(meta, tags):
            continue
        try:
            config = folder.raw_config()  # as now (a run may have grown), else as it started
        except BnbenchError:
            config = meta.fields.config if isinstance(meta.fields.config, dict) else {}
        seeds, training = config.get("seeds"), config.get("training")
        staged = is_tune(run_dir.parent)  # a stage of a tune: <name>/<tune id>/<stage>
        rows.append(
            {
                "name": (run_dir.parent.parent if staged else run_dir.parent).name,
                "run": f"{run_dir.parent.name}/{run_dir.name}" if staged else run_dir.name,
                "path": str(run_dir),
                "started": meta.fields.started if isinstance(meta.fields.started, str) else "?",
                "status": folder.status(meta),
                "trials": f"{_or(meta, 'trials_done', '?')}/{_or(meta, 'trials_total', '?')}",
                "seeds": ", ".join(map(str, seeds if isinstance(seeds, list) else [])) or "?",
                "epochs": (training if isinstance(training, dict) else {}).get("epochs", "?"),
                "overrides": as_typed(meta).get("overrides", overrides_text(meta.overrides())),
                "device": f"{_or(meta, 'device', '?')} ({_or(meta, 'device_name', '')})",
                "tags": tags_of(meta),
                "note": note_of(meta),
                **held_out(meta),
            }
        )
    return rows


def held_out(meta) -> dict:
    """{"validation": the examples held out of training} for a run with a validation split (dataset.validation,
    as meta.json's `data` records it); {} for any other, whose row stays as it was."""
    data = meta.fields.data
    drawn = data.get("validation") if isinstance(data, dict) else None
    count = drawn.get("count") if isinstance(drawn, dict) else None
    return {"validation": count} if isinstance(count, int) else {}


def _or(meta, name: str, missing: str):
    """A field as the run recorded it, or `missing` where it recorded none (a run made before the field)."""
    return getattr(meta.fields, name) if meta.has(name) else missing
