"""The one error type a user can cause (bad config, missing data, bad results folder).

The CLI prints its message as a single line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class BnbenchError(Exception):
    """A mistake the user can fix; the message names the file or field and says how."""


class Interrupted(BnbenchError):
    """Ctrl-C: the run was stopped cleanly and can be resumed."""
