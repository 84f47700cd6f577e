"""A run folder's lock, and the staging folder a new run is made in: one process works on a run at a time (a run
trains, resumes or grows; `prune` and `rm` change it), and a folder under its run id is always complete."""

import fcntl
import os
import shutil
import socket
import time
from contextlib import suppress
from pathlib import Path

from bnbench.errors import BnbenchError
from bnbench.rundir.store import unwritable

LOCK = "lock"  # the lock file's name in the run folder


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


def stage_run_dir_at(run_dir: Path) -> tuple[Path, Path, "RunLock"]:
    """As `stage_run_dir`, for a run folder at a path chosen by the caller (a stage of `bnbench tune`, in the tune
    folder): refused where it exists."""
    remove_stale_staging(run_dir.parent)
    staging = run_dir.with_name(f".{run_dir.name}.new")
    try:
        if run_dir.exists():
            raise FileExistsError(run_dir)
        staging.mkdir()
    except FileExistsError:
        raise BnbenchError(f"{run_dir}: exists already, or is being made by another process") from None
    except OSError as e:
        raise BnbenchError(
            f"--out: cannot write in '{run_dir.parent}' ({e.strerror or e}); choose a writable folder"
        ) from None
    try:
        return staging, run_dir, RunLock(staging).acquire()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


STALE_SECONDS = 60  # a staging folder without its lock file yet is another process's for at most this long


def remove_stale_staging(parent: Path) -> None:
    """Remove the staging folders (`.<run id>.new`) of runs killed while being set up: no live process holds
    their lock (a folder too new to hold a lock file yet is left alone)."""
    for staging in parent.glob(".*.new"):
        lock = staging / LOCK
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


class RunLock:
    """An exclusive flock on `<run>/lock`: the kernel drops it when the holder dies, so a stale lock never blocks.

    A forked worker inherits the open lock file, and the kernel keeps the lock while any copy is open: workers
    call `close_inherited` first, so that a lock never outlives the process that took it."""

    held: list = []  # the lock files this process opened (a forked child has copies of them)

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
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
        self.path = run_dir / LOCK

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
