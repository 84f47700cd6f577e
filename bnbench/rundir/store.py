"""The run folder: `<out>/<name>/<run id>/` with config.yaml, meta.json, batches.csv, epochs.csv, evals.csv (their
columns: bnbench.rundir.schema), checkpoints/.

Only the main process writes here. Every epoch appends its rows (flushed and fsynced) before the trial's
checkpoint is replaced, so after a crash the checkpoint never claims an epoch whose rows are missing; resuming
drops rows beyond each trial's checkpoint and a run's last act is to sort rows into trial order, so a resumed
or parallel run's files equal those of one uninterrupted sequential run, byte for byte.
"""

import csv
import errno
import fcntl
import io
import json
import math
import os
import re
import shutil
import socket
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import yaml

from bnbench.errors import BnbenchError
from bnbench.experiment.safe_yaml import yaml_problem
from bnbench.experiment.trials import Trial
from bnbench.rundir.schema import (
    CUT_FILES,
    PROBES,
    ROW_FILES,
    BatchRow,
    Columns,
    EpochRow,
    EvalRow,
    ProbeRow,
    csv_fields,
)

if TYPE_CHECKING:  # torch is imported only where checkpoints are touched, so `compare` and `list` start fast
    from bnbench.engines.events import EpochResult


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a temporary file beside `path` (named `_temporary`), then rename it over `path`; a failed write (a
    full disk) leaves the old file and no temporary one, and its OSError names `path` (a failed write() names no
    file), so that the line the user sees can."""
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):  # a read-only mount refuses even this
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def _temporary(path: Path) -> Path:
    """`atomic_write`'s temporary file for `path`: hidden, with the writer's pid (see `remove_temporaries`)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


FIXES = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space",
    errno.EROFS: "make its file system writable",
    errno.EACCES: "fix its permissions",
    errno.EPERM: "fix its permissions",
    errno.EIO: "check the disk",
}


def unwritable(path: Path | str, error: OSError, then: str = "run the command again") -> str:
    """The one line for a file the disk refused (full, read-only, no permission): the file, why, and what to do."""
    fix = FIXES.get(error.errno, "free space or fix its permissions")
    return f"{path}: cannot write ({error.strerror or error}); {fix}, then {then}"


def stage_run_dir(out: Path, name: str) -> tuple[Path, Path, "RunLock"]:
    """(staging folder, run folder, the staging folder's lock): a fresh run id named by the start time (two runs
    started in the same second get different suffixes), reserved by creating the hidden, locked staging folder
    `.<run id>.new`, to be renamed to `<run id>` once complete. Staging folders that a killed process left are
    removed first."""
    parent = out / name
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BnbenchError(f"--out: cannot create '{parent}' ({e.strerror or e}); choose a writable folder") from None
    remove_stale_staging(parent)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        run_dir = parent / (stamp if n == 0 else f"{stamp}-{n}")
        staging = run_dir.with_name(f".{run_dir.name}.new")
        if run_dir.exists():
            continue
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise BnbenchError(
                f"--out: cannot write in '{parent}' ({e.strerror or e}); choose a writable folder"
            ) from None
        if run_dir.exists():  # a run of the same second renamed its staging folder between the two checks
            staging.rmdir()
            continue
        try:
            return staging, run_dir, RunLock(staging).acquire()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    raise BnbenchError(f"--out: too many runs started this second in '{parent}'")


STALE_SECONDS = 60  # a staging folder without its lock file yet is another process's for at most this long


def remove_stale_staging(parent: Path) -> None:
    """Remove the staging folders (`.<run id>.new`) of runs killed while being set up: no live process holds
    their lock (a folder too new to hold a lock file yet is left alone)."""
    for staging in parent.glob(".*.new"):
        lock = staging / "lock"
        try:
            if not lock.exists():
                if time.time() - staging.stat().st_mtime > STALE_SECONDS:
                    shutil.rmtree(staging, ignore_errors=True)
                continue
            with open(lock) as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(staging, ignore_errors=True)
        except (BlockingIOError, FileNotFoundError):  # in use, or removed by another process meanwhile
            continue


# ---- locking -----------------------------------------------------------------------------------------------------


class RunLock:
    """An exclusive flock on `<run>/lock`: the kernel drops it when the holder dies, so a stale lock never blocks.

    A forked worker inherits the open lock file, and the kernel keeps the lock while any copy is open: workers
    call `close_inherited` first, so that a lock never outlives the process that took it."""

    held: list = []  # the lock files this process opened (a forked child has copies of them)

    def __init__(self, run_dir: Path):
        self.path = run_dir / "lock"
        self.file = None

    @classmethod
    def close_inherited(cls) -> None:
        """In a forked child: close its copies of the parent's lock files (the parent's lock stays held)."""
        for f in cls.held:
            f.close()
        cls.held.clear()

    def acquire(self) -> "RunLock":
        """Take the lock and write who holds it; a folder that cannot be written (a full disk, a read-only mount)
        is one line, and the lock is not kept."""
        try:
            f = open(self.path, "a+")
        except OSError as e:
            raise BnbenchError(unwritable(self.path, e)) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise BnbenchError(f"{self.path.parent}: in use by {holder}; wait for it to finish or stop it") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            f.flush()
        except OSError as e:
            with suppress(OSError):
                f.close()
            raise BnbenchError(unwritable(self.path, e)) from None
        self.file = f
        self.held.append(f)
        return self

    def moved(self, run_dir: Path) -> None:
        """The folder holding the lock was renamed (the lock itself moves with the open file)."""
        self.path = run_dir / "lock"

    def release(self) -> None:
        if self.file:
            self.held.remove(self.file)
            self.file.close()
            self.file = None

    def held_elsewhere(self) -> bool:
        """True while some live process holds the lock (used to tell 'running' from 'partial'). Only a regular file
        is one of ours (opening a named pipe would wait for a writer forever)."""
        if not self.path.is_file():
            return False
        with open(self.path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False
            except BlockingIOError:
                return True


# ---- writing -----------------------------------------------------------------------------------------------------


def header(trials: list[Trial], columns: Columns) -> str:
    """A row file's header line (`columns`: one of ROW_FILES, see bnbench.rundir.schema)."""
    return columns.header(list(trials[0].labels))


def append_epoch(run_dir: Path, trial: Trial, result: "EpochResult", first_step: int) -> None:
    """Append one epoch's rows to batches.csv and epochs.csv, durably, before the checkpoint moves on."""
    prefix = csv_fields(list(trial.labels.values()))
    steps = range(first_step + 1, first_step + len(result.losses) + 1)
    rows = {
        "batches.csv": [
            BatchRow(result.epoch, b, s, loss)
            for b, (s, loss) in enumerate(zip(steps, result.losses.tolist()), start=1)
        ],
        "epochs.csv": [
            EpochRow(
                result.epoch, result.train_loss, result.train_acc, result.test_loss, result.test_acc, result.seconds
            )
        ],
        "evals.csv": [EvalRow(result.epoch, step, loss, acc) for step, loss, acc in result.evals],
    }
    for name, columns in ROW_FILES.items():
        if columns.optional and not (run_dir / name).exists():
            continue
        with open(run_dir / name, "a") as f:
            f.write(columns.text(prefix, rows[name]))
            f.flush()
            os.fsync(f.fileno())
    if result.probes:  # probes.csv begins with the first probe (bnbench.engines.probes)
        path = run_dir / PROBES.file
        head = "" if path.exists() else PROBES.header(list(trial.labels))
        with open(path, "a") as f:
            f.write(head + PROBES.text(prefix, [ProbeRow(result.epoch, *row) for row in result.probes]))
            f.flush()
            os.fsync(f.fileno())


def serialize(state: dict) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def deserialize(data: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def checkpoint_files(run_dir: Path, trial: Trial) -> tuple[Path, Path]:
    """A trial's resume checkpoint and its weights-only file (bnbench.rundir.checkpoints)."""
    folder = run_dir / "checkpoints"
    return folder / f"{trial.key}.pt", folder / f"{trial.key}.weights.pt"


def save_checkpoint(run_dir: Path, trial: Trial, state: bytes, summary: dict) -> None:
    """The trainer state (already serialized, possibly by a worker) and the trial's summary, atomically."""
    path = checkpoint_files(run_dir, trial)[0]
    path.parent.mkdir(exist_ok=True)
    atomic_write(path, serialize({"summary": summary, "state": state}))


def _read_checkpoint(run_dir: Path, trial: Trial) -> Optional[dict]:
    import pickle

    import torch

    path = checkpoint_files(run_dir, trial)[0]
    if path.exists() and not path.is_file():  # opening a named pipe would wait for a writer forever
        raise BnbenchError(f"{path}: damaged checkpoint (not a regular file)")
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as e:
        raise BnbenchError(
            f"{path}: damaged checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None


def checkpoint_summary(run_dir: Path, trial: Trial) -> Optional[dict]:
    checkpoint = _read_checkpoint(run_dir, trial)
    if checkpoint is not None and not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("summary"), dict)):
        raise BnbenchError(f"{checkpoint_files(run_dir, trial)[0]}: damaged checkpoint (no summary)")
    return checkpoint and checkpoint["summary"]


def drop_checkpoint(run_dir: Path, trial: Trial) -> None:
    checkpoint_files(run_dir, trial)[0].unlink(missing_ok=True)


def load_checkpoint(run_dir: Path, trial: Trial) -> Optional[dict]:
    """The trainer state of a trial's last finished epoch, or None if it has not finished one."""
    checkpoint = _read_checkpoint(run_dir, trial)
    return checkpoint and deserialize(checkpoint["state"])


Kept = dict[str, dict[int, list[int]]]  # per file and trial, the epoch of each row kept
Lines = dict[str, dict[int, list[str]]]  # per file and trial, the lines kept (without their newline), in order


def rewrite_rows(run_dir: Path, trials: list[Trial], keep_epochs: dict[int, int]) -> tuple[Kept, Lines]:
    """Keep each trial's rows up to epoch keep_epochs[trial.index] (see `kept_rows`), in trial order, under the
    right header. Returns, per file and trial, the epoch of each row kept and the lines, for the caller to check
    against the checkpoints and digests (bnbench.rundir.digests).

    Used when resuming (rows past a checkpoint are recomputed) and at the end of a run (rows sorted into trial
    order, so that --jobs and resumes do not change the file).
    """
    texts, kept, lines = kept_rows(run_dir, trials, keep_epochs)
    for name, text in texts.items():
        atomic_write(run_dir / name, text)
    return kept, lines


def kept_rows(run_dir: Path, trials: list[Trial], keep_epochs: dict[int, int]) -> tuple[dict[str, str], Kept, Lines]:
    """What `rewrite_rows` would write, without writing: per file, its new text (header and each trial's rows up
    to epoch keep_epochs[trial.index], in trial order; a torn last line and any row that is not one of ours --
    another trial's labels, a wrong number of fields, a field that is not a number -- dropped), and per file and
    trial the epoch of each row kept, and the row's line. A file whose text equals its new text holds nothing that
    resuming drops."""
    n_labels = len(trials[0].labels)
    order = {tuple(str(v) for v in _parse(csv_fields(list(t.labels.values())))): t.index for t in trials}
    texts, kept, groups_of = {}, {}, {}
    for name, columns in CUT_FILES.items():
        path = run_dir / name
        if columns.optional and not path.exists():
            continue
        lines = read_regular(path).decode(errors="replace").split("\n") if path.exists() else [""]
        groups: dict[int, list[str]] = {t.index: [] for t in trials}
        kept[name], groups_of[name] = {t.index: [] for t in trials}, groups
        for line in lines[1:-1]:  # the header is written anew; the last element is "" or a torn line
            fields = _parse(line)
            index = order.get(tuple(fields[:n_labels]))
            values = fields[n_labels:]
            if (
                index is not None
                and len(values) == len(columns)
                and all(_is_number(value) for value, number in zip(values, columns.numbers) if number)
                and values[0].isdigit()
                and int(values[0]) <= keep_epochs.get(index, 0)
            ):
                groups[index].append(line)
                kept[name][index].append(int(values[0]))
        texts[name] = header(trials, columns) + "".join(line + "\n" for t in trials for line in groups[t.index])
    return texts, kept, groups_of


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


TEMPORARY = re.compile(r"\..+\.(json|yaml|csv|pt)\.tmp[0-9]+")  # `_temporary`'s names for the run's own files


def remove_temporaries(run_dir: Path) -> None:
    """Drop the temporary files of atomic writes that a killed process (a run, a prune) left behind: only names
    `_temporary` gives the run's files, never another file of the user's. Call it holding the run's lock (a live
    writer's temporary is about to be renamed)."""
    for path in [*run_dir.glob(".*.tmp*"), *run_dir.glob("checkpoints/.*.tmp*")]:
        if TEMPORARY.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _parse(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # a NUL byte or a stray quote: not a row of ours
        return []


def read_regular(path: Path) -> bytes:
    """A run file's bytes. Anything else in its place (a named pipe, a device, a folder) is refused in one line
    before it is opened: opening a pipe waits for a writer forever, and reading a device may never end."""
    if path.exists() and not path.is_file():
        raise BnbenchError(f"{path}: not a regular file (a folder, named pipe or device); restore the run's file")
    return path.read_bytes()


def _read_mapping(path: Path, parse, kind: str, expected: str) -> dict:
    try:
        raw = parse(read_regular(path).decode())
    except FileNotFoundError:
        raise BnbenchError(f"{path}: missing; is '{path.parent}' a bnbench run folder?") from None
    except OSError as e:
        raise BnbenchError(f"{path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise BnbenchError(f"{path}: not readable {kind} ({yaml_problem(e)})") from None
    except ValueError as e:
        raise BnbenchError(f"{path}: not readable {kind} ({e})") from None
    if not isinstance(raw, dict):
        raise BnbenchError(f"{path}: expected {expected}")
    return raw


def read_config(run_dir: Path) -> dict:
    """The run's resolved config.yaml as a raw mapping (validate it with experiment.validate)."""
    return _read_mapping(run_dir / "config.yaml", yaml.safe_load, "YAML", "a mapping of config fields")


# ---- meta ----------------------------------------------------------------------------------------------------------


def write_meta(run_dir: Path, meta: dict) -> None:
    """allow_nan=False: Python would write NaN or Infinity, which is not JSON; every number it holds is checked to
    be finite where it comes in, so one that is not is a bug (a traceback), never an unreadable meta.json."""
    atomic_write(run_dir / "meta.json", json.dumps(meta, indent=2, default=str, allow_nan=False) + "\n")


def read_meta(run_dir: Path) -> dict:
    return _read_mapping(run_dir / "meta.json", _strict_json, "JSON", "a JSON object")


def _strict_json(text: str) -> Any:
    """JSON as write_meta writes it: Python's reader takes NaN, Infinity and 1e999 (as infinity), which the run's
    next write of meta.json would refuse; a hand edit that wrote one is damage, named on read."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a finite number; write one in its place")

    def finite(number: str) -> float:
        value = float(number)
        return value if math.isfinite(value) else refuse(number)

    return json.loads(text, parse_constant=refuse, parse_float=finite)


def overrides(meta: dict) -> Optional[dict]:
    """The options a run was started with, as meta.json records them: {"set": [PATH=VALUE, ...], "seeds": [...] or
    None, "device": ... or None, "sweep": [PATH=V1,V2, ...]}; None when the record is damaged (a hand edit), which
    readers show rather than fail on."""
    recorded = meta.get("overrides") or {}
    if not isinstance(recorded, dict):
        return None
    sets, seeds, device = recorded.get("set") or [], recorded.get("seeds"), recorded.get("device")
    sweeps = recorded.get("sweep") or []
    if not (
        all(isinstance(texts, list) and all(isinstance(text, str) for text in texts) for texts in (sets, sweeps))
        and (seeds is None or isinstance(seeds, list) and all(type(seed) is int for seed in seeds))
        and (device is None or isinstance(device, str))
    ):
        return None
    return {"set": sets, "seeds": seeds, "device": device, "sweep": sweeps}


def overrides_text(meta: dict) -> str:
    """The options a run was started with on top of its config file, as typed: '--set training.epochs=1 --seeds
    0,1' ('' for none). A path set more than once (a run grown by epochs twice) shows its last value, where it was
    first set: what the run holds."""
    recorded = overrides(meta)
    if recorded is None:
        return "(damaged in meta.json)"
    last = {text.partition("=")[0].strip(): text for text in recorded["set"]}
    parts = [f"--set {text}" for text in last.values()] + [f"--sweep {text}" for text in recorded["sweep"]]
    if recorded["seeds"] is not None:
        parts.append("--seeds " + ",".join(map(str, recorded["seeds"])))
    if recorded["device"]:
        parts.append(f"--device {recorded['device']}")
    return " ".join(parts)


def typed_field(mapping: dict, key: str, kind: type, default: Any = None) -> Any:
    """A field of meta.json or config.yaml if it holds a `kind`, else `default`: a damaged field is left out, so
    that it cannot stop `show` or `list` from reading the run (or every run beside it)."""
    value = mapping.get(key, default)
    return value if isinstance(value, kind) else default


def run_status(run_dir: Path, meta: dict) -> str:
    """complete, running (a live process holds the lock), or partial (stopped or crashed; resumable)."""
    if meta.get("status") == "complete":
        return "complete"
    return "running" if RunLock(run_dir).held_elsewhere() else "partial"


def trial_status(epochs: int, needed: int, diverged: bool, begun: bool, live: bool) -> str:
    """The one set of words for a trial's state: diverged, complete (all `needed` epochs), pending (not begun),
    running (begun, in a run a live process holds), stopped (begun, in a run no process holds: resumable)."""
    if diverged:
        return "diverged"
    if epochs >= needed:
        return "complete"
    if not begun:
        return "pending"
    return "running" if live else "stopped"


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (holding meta.json or config.yaml) at or below `paths`, newest first; hidden folders below a
    path (a run still being set up, `.<run id>.new`) are not runs yet."""
    found = set()
    for path in paths:
        if not path.exists():
            raise BnbenchError(f"{path}: no such folder")
        for marker in ("meta.json", "config.yaml"):
            found.update(
                p.parent
                for p in ([path / marker] if (path / marker).exists() else path.rglob(marker))
                if "checkpoints" not in p.parts and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
    return sorted(found, key=lambda p: (p.name, str(p)), reverse=True)


def find_run(ref: str, run_dirs: list[Path]) -> Path:
    """The run that `ref` names: a run folder (as found among `run_dirs` when it is one of them), or a run id
    ('20260101-120000', or '<name>/<run id>') of one of `run_dirs` or of a run in the results folders that hold
    them."""
    path = Path(ref)
    if (path / "meta.json").is_file() or (path / "config.yaml").is_file():
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
    return [d for d in run_dirs if d.name == ref or d.as_posix().endswith("/" + ref.strip("/"))]
