"""`--seeds 1,2,5-8`: the seeds a run is asked for, as integers and inclusive ranges, checked before any is listed."""

import re
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.experiment.config import MAX_TRIALS


def seed_list(text: Optional[str]) -> Optional[list[int]]:
    """'1,2,5-8' -> [1, 2, 5, 6, 7, 8], in the given order; None (no --seeds) stays None."""
    if text is None:
        return None
    ranges = [_seed_range(text, part.strip()) for part in text.split(",")]
    _bounded(text, ranges)
    return [seed for r in ranges for seed in r]


def _seed_range(text: str, part: str) -> range:
    """'5-8' -> range(5, 9), '3' -> range(3, 4): ASCII digits only (int() also takes '٣' and '1_0'), at most 19
    (seeds are below 2**63), and a range, not its list, so that a huge one is counted before anything is built."""
    match = re.fullmatch(r"([0-9]{1,19})(?:-([0-9]{1,19}))?", part)
    if not match:
        raise BnbenchError(
            f"--seeds {text}: '{part}' is not a seed or a range; use integers below 2**63 and "
            f"ranges, e.g. --seeds 0-9 or --seeds 1,2,5-8"
        )
    first, last = int(match[1]), int(match[2] or match[1])
    if last < first:
        raise BnbenchError(f"--seeds {text}: the range '{part}' runs backwards; write it low-high")
    return range(first, last + 1)


def _bounded(text: str, ranges: list[range]) -> None:
    """Each seed makes at least one trial: more seeds than a run's trials are refused before they are listed
    (a list of a billion seeds fills the memory)."""
    count = sum(map(len, ranges))
    if count > MAX_TRIALS:
        raise BnbenchError(
            f"--seeds {text}: {count:,} seeds, more than the {MAX_TRIALS:,} trials one run may hold; "
            f"run fewer seeds, or split them into several runs (compare pools them)"
        )
