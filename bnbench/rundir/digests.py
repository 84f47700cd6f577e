"""Digests of each finished trial's rows and checkpoint, so that damage to a finished trial -- an edited loss or
accuracy, a NaN, rows cut, repeated or reordered, a deleted row file, a swapped, garbage, truncated or non-regular
checkpoint -- is named with its repair (`bnbench run --resume RUN`, which trains that trial again) instead of being
read as a result. `show`, `compare` (bnbench.analysis.reading) and `--resume` (bnbench.runner.resume) check them.

Where: meta.json's `digests`, by trial key: {"batches.csv": ..., "epochs.csv": ..., "evals.csv": ...,
"probes.csv": ... (where the run has it), "checkpoint": {"file", "bytes", "sha256"} or null}. meta.json is already
the record of what each trial finished, replaced atomically after the rows and checkpoints it describes; a file
beside it could be lost, copied or left stale on its own, and its absence could not be told from a run made before
digests. Runs made before them have no `digests`, and are read as before.

When: at the end of every run, resume and grow, for each finished trial that has none yet, from the final rows. A
trial's lines in a row file are the same whatever order the trials ran in (each trial appends its own lines in step
order, and the end of a run sorts them by trial, keeping each trial's order), so a resumed or parallel run records
what an uninterrupted one does, and its row files stay byte-identical. A trial that finished in a run stopped
before its end gets its digest when the resumed run ends; until then its rows are checked against its checkpoint.

What: per row file, the first 128 bits of the sha256 of the trial's lines (each with its newline), in file order:
no edit matches by chance, and a 10,000-trial run's digests take some 2 MB. For the checkpoint the run keeps of the
trial (`<key>.pt`, `<key>.weights.pt`, or none: see bnbench.rundir.checkpoints), its name, size and whole sha256; a kept
checkpoint deleted later (to free space) is no damage: the rows are the result.
"""

import hashlib
from pathlib import Path
from typing import Iterable, Optional

from bnbench.experiment.trials import Trial
from bnbench.rundir import checkpoint_files
from bnbench.rundir.meta import Meta
from bnbench.rundir.rows import Lines


def of_lines(lines: Iterable[bytes]) -> str:
    """The digest of a trial's lines in one row file (each without its newline)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line + b"\n")
    return h.hexdigest()[:32]


def recorded(meta: Meta) -> dict[str, dict]:
    """meta.json's digests, by trial key (a hand-damaged entry is left out: that trial is read as an old run's)."""
    found = meta.fields.digests
    return {k: v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}


def record(run_dir: Path, meta: Meta, trials: list[Trial], lines: Lines) -> None:
    """At the end of a run (every trial finished): add to `meta` (not written here) the digests each trial lacks,
    from its final rows `lines` (see rows.rewrite_rows) and the checkpoint kept of it."""
    digests = recorded(meta)
    for trial in trials:
        entry = digests.setdefault(trial.key, {})
        for name, per_trial in lines.items():
            entry.setdefault(name, of_lines(line.encode() for line in per_trial[trial.index]))
        if "checkpoint" not in entry:
            entry["checkpoint"] = of_checkpoint(run_dir, trial)
    meta.update(digests={t.key: digests[t.key] for t in trials if t.key in digests})


def of_checkpoint(run_dir: Path, trial: Trial) -> Optional[dict]:
    """The checkpoint the run keeps of a finished trial: its file name, size and sha256 (None: it keeps none)."""
    for path in checkpoint_files.files(run_dir, trial):
        if path.is_file():
            return {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}
    return None


def checkpoint_damage(run_dir: Path, entry: dict, whole: bool = True) -> Optional[str]:
    """Why the checkpoint recorded in a trial's digest `entry` is not the one written (None: it is, or it was
    deleted); `whole`: read it all (resume), else only its type and size (show)."""
    kept = entry.get("checkpoint")
    if not isinstance(kept, dict) or not isinstance(kept.get("file"), str):
        return None
    path = run_dir / checkpoint_files.FOLDER / kept["file"]
    if not (path.exists() or path.is_symlink()):
        return None
    if not path.is_file():
        return f"{path}: not a regular file (a folder, named pipe or device)"
    size = path.stat().st_size
    if size != kept.get("bytes"):
        return f"{path}: {size} bytes, not the {kept.get('bytes')} it was written with (truncated, replaced or swapped)"
    if whole and _sha256(path) != kept.get("sha256"):
        return f"{path}: not the checkpoint written for it (replaced, swapped with another trial's, or damaged)"
    return None


def rows_damage(path: Path, key: str, entry: dict, lines: Optional[list[bytes]]) -> Optional[str]:
    """Why trial `key`'s `lines` in the row file `path` (None: the file is missing) are not those it finished with
    (None: they are, or no digest of the file was recorded)."""
    wanted = entry.get(path.name)
    if wanted is None:
        return None
    if lines is None:
        return f"{path}: missing, but {key} finished with rows in it"
    if of_lines(lines) != wanted:
        return f"{path}: the rows of {key} differ from those it finished with (edited, cut, reordered or damaged)"
    return None


def repair(run_dir: Path) -> str:
    """The repair of damage that digests find: resuming trains the damaged trials again."""
    return f"repair with: bnbench run --resume {run_dir}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
