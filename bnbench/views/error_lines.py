"""The one line (and exit status) for each error a user can cause: a BnbenchError as 'error: ...', a stopped run as
its own message (status 130, or 128 + the signal's number), a write the disk refused that no step of the command
named (the help or a table to a full standard output, a last meta.json) with the file, why and what to do."""

import errno
from pathlib import Path
from typing import Optional

from bnbench.errors import BnbenchError, Interrupted
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.store import unwritable

DISK_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}  # a disk's refusal, not a bug


def error_line(error: BaseException) -> Optional[tuple[str, int]]:
    """The line and exit status for `error`; None for a bug, which keeps its traceback."""
    if isinstance(error, Interrupted):
        return f"{error}", error.code
    if isinstance(error, BnbenchError):
        return f"error: {error}", 2
    if isinstance(error, OSError) and error.errno in DISK_FAULTS:
        return f"error: {refused_write(error)}", 2
    return None


def refused_write(error: OSError) -> str:
    """The file (a write() to the output names none: bnbench names its own, see store.atomic_write), why, and what
    to do: a file in a run folder (or in one of its folders) is the run's, which resumes."""
    path = Path(error.filename) if error.filename else None
    run = next((p for p in path.parents[:2] if RunFolder(p).has_meta()), None) if path else None
    then = f"resume with: bnbench run --resume {run}" if run else "run the command again"
    return unwritable(path or "standard output", error, then)
