"""Finding runs: the run folders under a results folder, the run a run id names, a config's runs."""

from pathlib import Path

from bnbench.errors import BnbenchError
from bnbench.rundir import checkpoint_files
from bnbench.rundir.folder import CONFIG, META, RunFolder

MARKERS = (META, CONFIG)  # a folder holding either is a run folder (one whose meta.json is damaged, too)


def holds_run(path: Path) -> bool:
    """Whether `path` is a run folder (holds meta.json or config.yaml)."""
    return any((path / marker).is_file() for marker in MARKERS)


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (holding meta.json or config.yaml) at or below `paths`, newest first; hidden folders below a
    path (a run still being set up, `.<run id>.new`) are not runs yet."""
    found = set()
    for path in paths:
        if not path.exists():
            raise BnbenchError(f"{path}: no such folder")
        for marker in MARKERS:
            found.update(
                p.parent
                for p in ([path / marker] if (path / marker).exists() else path.rglob(marker))
                if checkpoint_files.FOLDER not in p.parts
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
    return sorted(found, key=lambda p: (p.name, str(p)), reverse=True)


def find_run(ref: str, run_dirs: list[Path]) -> Path:
    """The run that `ref` names: a run folder (as found among `run_dirs` when it is one of them), or a run id
    ('20260101-120000', or '<name>/<run id>') of one of `run_dirs` or of a run in the results folders that hold
    them."""
    path = Path(ref)
    if holds_run(path):
        return next((d for d in run_dirs if d.resolve() == path.resolve()), path)
    matches = _named(ref, run_dirs)
    if not matches:
        results = list(dict.fromkeys(d.parent.parent for d in run_dirs))
        matches = _named(ref, find_runs(results))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BnbenchError(f"{ref}: names {len(matches)} runs ({', '.join(map(str, matches[:3]))}); pass its folder")
    raise BnbenchError(
        f"{ref}: not a run folder, nor the id of a run under "
        f"{', '.join(map(str, dict.fromkeys(d.parent.parent for d in run_dirs)))}; pass its folder "
        f"(results/<name>/<run id>)"
    )


def _named(ref: str, run_dirs: list[Path]) -> list[Path]:
    """The runs among `run_dirs` that `ref` names by run id, or by its end ('<name>/<run id>')."""
    return [d for d in run_dirs if d.name == ref or d.as_posix().endswith("/" + ref.strip("/"))]


def runs_of(out: Path, name: str) -> list[RunFolder]:
    """The runs of experiment `name` under the results folder `out` (those with a meta.json), newest first."""
    folder = out / name
    if not folder.is_dir():
        return []
    runs = (RunFolder(p) for p in folder.iterdir() if not p.name.startswith("."))
    return sorted((run for run in runs if run.has_meta()), key=lambda run: run.path, reverse=True)
