"""`bnbench rm`: a run folder deleted whole, never under a live run: its lock is taken first (a run holds it while
it trains, resumes or grows), and held while the user is asked and the folder goes."""

import shutil
from contextlib import suppress
from pathlib import Path
from typing import Callable

from bnbench.errors import BnbenchError
from bnbench.rundir.folder import RunFolder


def remove_run(run_dir: Path, confirm: Callable[[Path, str], bool]) -> str:
    """Delete `run_dir` once `confirm(run_dir, what it holds: '9 files, 0.3 MB')` says yes (the lock taken
    first: refused, one line, while a run holds it); its experiment's folder goes too when that leaves it empty.
    What was removed, or that nothing was, in one line."""
    lock = RunFolder(run_dir).lock().acquire()
    try:
        files = [path for path in run_dir.rglob("*") if path.is_file() and not path.is_symlink()]
        holds = f"{len(files)} files, {_size(sum(path.stat().st_size for path in files))}"
        if not confirm(run_dir, holds):
            return f"kept: {run_dir}"
        shutil.rmtree(run_dir)
    except OSError as e:
        raise BnbenchError(f"{run_dir}: cannot remove ({e.strerror or e}); check its permissions") from None
    finally:
        lock.release()
    with suppress(OSError):  # only an empty folder goes
        run_dir.parent.rmdir()
    return f"removed: {run_dir} ({holds})"


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
