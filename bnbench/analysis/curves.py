"""Learning curves on plain arrays: smoothing that a diverged run cannot spoil, and where a curve meets a target.

A diverging run logs losses like 1e35 next to ordinary ones. A rolling mean kept as a running sum (add the new
value, subtract the old) loses every ordinary digit once such a value passed through it, and gives wrong means
for the rest of the run; so trailing_mean sums each window from block-wise cumulative sums that never subtract.
A curve is measured at discrete steps, so where it meets a target is known only between two measured steps:
first_crossing returns both ends.
"""

import numpy as np

NEVER = -1  # first_crossing's `at` when the curve never meets the target
UNDEFINED = -2  # first_crossing's `at` when there is no defined point or no target


def _trial_starts(trial: np.ndarray) -> np.ndarray:
    """Row indices where a trial begins, for trial ids trial [n] whose rows are contiguous: shape [trials]."""
    return np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])


def trailing_mean(values: np.ndarray, trial: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values of the same trial, ending at each row: values, trial [n] -> [n].

    values are per-step values of many trials concatenated; trial gives each row's trial id, the rows of a trial
    contiguous and in step order (an id that comes back after another starts a new trial). NaN until a full
    window exists within the trial; a window holding a non-finite value is non-finite, as np.sum makes it.

    Exact: each trial is cut into blocks of `window` rows from its first row; the window ending at row i is the
    suffix, from row i - window + 1, of one block plus the prefix, up to row i, of the next, both cumulative sums
    inside one block (van Herk / Gil-Werman). A huge value thus only enters the sums of windows that hold it.
    """
    values = np.asarray(values, dtype=float)
    trial = np.asarray(trial)
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    if values.shape != trial.shape or values.ndim != 1:
        raise ValueError("values and trial must be 1-d arrays of the same length")
    n = len(values)
    if n == 0:
        return np.zeros(0)
    if window == 1:
        return values.copy()
    starts = _trial_starts(trial)
    lengths = np.diff(np.r_[starts, n])
    counts = -(-lengths // window)  # blocks per trial, its last one padded with zeros
    position = np.arange(n) - np.repeat(starts, lengths)  # each row's step within its trial
    padded = position + np.repeat((np.cumsum(counts) - counts) * window, lengths)  # its place among the blocks
    blocks = np.zeros((int(counts.sum()), window))
    blocks.ravel()[padded] = values
    upto = np.cumsum(blocks, axis=1).ravel()  # upto[k]: the rows of k's block up to k
    beyond = np.zeros_like(blocks)  # beyond[k]: the rows of k's block after k (0 at a block's end)
    beyond[:, :-1] = np.cumsum(blocks[:, :0:-1], axis=1)[:, ::-1]
    # row k's window: the rows after k - window in the block before k's, and k's block up to k (a window that is
    # one whole block takes beyond = 0 at the end of the block before, or at -1, the end of the last block)
    out = (beyond.ravel()[padded - window] + upto[padded]) / window
    out[position < window - 1] = np.nan
    return out


def first_crossing(steps: np.ndarray, values: np.ndarray, target: float, higher: bool) -> tuple[int, int]:
    """Where one curve first meets `target`, as (after, at): the true crossing step T has after < T <= at.

    steps [k] increasing, values [k], NaN values being undefined points (e.g. before a smoothing window is full).
    `at` is the first defined step whose value meets the target (>= if higher, else <=); `after` is the defined
    step before it, 0 when `at` is the first defined one. Never met: (last defined step, NEVER). No defined point
    or a NaN target: (0, UNDEFINED).
    """
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    defined = np.flatnonzero(~np.isnan(values))
    if not len(defined) or np.isnan(target):
        return 0, UNDEFINED
    met = values[defined] >= target if higher else values[defined] <= target
    if not met.any():
        return int(steps[defined[-1]]), NEVER
    first = int(np.argmax(met))
    after = int(steps[defined[first - 1]]) if first else 0
    return after, int(steps[defined[first]])


def level_at(steps: np.ndarray, values: np.ndarray, step: int) -> tuple[int, float]:
    """The curve's last defined measured point at or before `step`, as (its step, its value); (0, NaN) if none.
    steps [k] increasing, values [k] with NaN for undefined points."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    candidates = np.flatnonzero(~np.isnan(values) & (steps <= step))
    if not len(candidates):
        return 0, np.nan
    return int(steps[candidates[-1]]), float(values[candidates[-1]])
