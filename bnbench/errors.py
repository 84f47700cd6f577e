"""The one error type a user can cause (bad config, missing data, bad results folder).

The CLI prints its message as a single line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class BnbenchError(Exception):
    """A mistake the user can fix; the message names the file or field and says how."""


class Interrupted(BnbenchError):
    """Ctrl-C or SIGTERM: the run was stopped cleanly and can be resumed. `code` is the exit status (128 + the
    signal's number, as a shell reports a process killed by it)."""

    def __init__(self, message: str, code: int = 130):
        super().__init__(message)
        self.code = code


class OutputRefused(OSError):
    """Standard output refused a line (`> /dev/full`, a full disk under a redirect): an OSError that names no file,
    as one from a run folder's row file does not either, told apart so that the message blames the output."""
