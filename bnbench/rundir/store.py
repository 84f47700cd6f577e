"""Storing a run's files: each written whole (a temporary file renamed over it, so a crash never leaves half of
one) and read back only when it is a regular file; a disk that refuses a write is one line that says what to do.
"""

import errno
import os
import re
from contextlib import suppress
from pathlib import Path

import yaml

from bnbench.errors import BnbenchError
from bnbench.experiment.safe_yaml import yaml_problem


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
    """`atomic_write`'s temporary file for `path`: hidden, with the writer's pid (see `TEMPORARY`)."""
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


TEMPORARY = re.compile(r"\..+\.(json|yaml|csv|pt)\.tmp[0-9]+")  # `_temporary`'s names for the run's own files


def read_regular(path: Path) -> bytes:
    """A run file's bytes. Anything else in its place (a named pipe, a device, a folder) is refused in one line
    before it is opened: opening a pipe waits for a writer forever, and reading a device may never end."""
    if path.exists() and not path.is_file():
        raise BnbenchError(f"{path}: not a regular file (a folder, named pipe or device); restore the run's file")
    return path.read_bytes()


def read_mapping(path: Path, parse, kind: str, expected: str) -> dict:
    """A run file read as a mapping by `parse`; missing, unreadable, not parsable or not a mapping: one line."""
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
