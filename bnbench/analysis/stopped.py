"""The estimate of a comparison that a sequential run stopped, adjusted for the stop.

A run that stops at the first look whose interval excludes 0 stops sooner when its first seeds happened to show a
large difference, so the mean where it stops overstates the effect (benchmarks/stopped.py measures by how much).
The repeated confidence interval still covers; the point estimate is what needs adjusting.

The adjustment is the median-unbiased estimate under the sample-mean ordering (Emerson & Fleming 1990; Jennison &
Turnbull 2000, ch. 8): the outcomes of the design are ranked by the mean where it stops, and the chance
P_delta(that mean >= the observed one) grows with the true standardized difference delta = mu / sigma; the
estimate is the delta where it is 1/2, the interval's ends those where it is level/2 and 1 - level/2 (the
comparison's own level, alpha / m, as its repeated interval's). The stage-wise ordering, which J&T prefer for
known sigma, ranks every stop at an earlier look above every later outcome; with the spread estimated, a stop
depends on it too, and that ordering then lands above the truth less often than half the time (0.43 and 0.45 at
d = 1, over 600 and 1,000 simulated sequences, when this was chosen); the sample-mean ordering keeps nearer 1/2
(0.47 to 0.50 at d = 0.5 to 1.5, benchmarks/stopped.py), and halves the mean bias of the naive estimate. Neither
undoes the bias of a stop at the first look that decides, given that it stopped there (docs/sequential.md).

It is computed by simulating the whole design under normal differences, with the sequence's own missing pairs so
far and none after, through the library's own `decide` (its boundaries and intervals, the skew correction
included). `decide`'s interval at a look is the mean plus the sd times a function of the standardized
differences, so shifting a sequence by delta shifts its means and intervals by delta: one call on SEQUENCES fixed
draws (common random numbers, a fixed seed) gives every delta's stops, and a bisection finds each end. The spread
is not known: each simulated sequence's sigma is the observed sd times sqrt(nu / chi^2_nu), nu = pairs - 1 (its
fiducial law), so that with a single look the interval is exactly the t-interval (tests/analysis/test_stopped.py);
with the observed sd alone it would be the narrower normal one, covering 0.93 at d = 1.5 where 0.95 is promised.
"""

import math
from functools import lru_cache
from typing import Optional

import numpy as np

from bnbench.analysis.sequential import Design, Looks, decide

SEQUENCES = 2**13  # about 0.05 s an estimate; the estimate moves by ~0.005 sd against 2**14
SEED = 20261207
STEPS = 40  # bisection steps: the bracket shrinks 2^40-fold


def median_unbiased(
    d: np.ndarray, design: Design, stop: int, sequences: int = SEQUENCES
) -> Optional[tuple[float, float, float]]:
    """(estimate, low, high) of the mean difference for the paired differences d [N] (NaN: a missing pair) of a
    comparison that `design` stopped at look index `stop` (or took to its last look). None where the differences
    up to the stop have no spread to scale by."""
    seen = np.asarray(d, dtype=float)[: design.looks[stop]]
    pairs = seen[~np.isnan(seen)]
    if len(pairs) < 2 or not np.std(pairs, ddof=1) > 0:
        return None
    sd = float(np.std(pairs, ddof=1))
    looks = _simulated(tuple(np.isnan(seen)), design, sequences)
    spread = np.sqrt((len(pairs) - 1) / np.random.default_rng(SEED).chisquare(len(pairs) - 1, sequences))[:, None]
    margin = math.inf if design.effect is None else design.effect / sd / spread
    observed, rows = float(pairs.mean()) / sd, np.arange(sequences)

    def above(delta: float) -> float:
        """P_delta(the mean where the design stops >= the observed one), delta and the mean in units of the
        observed sd, from the draws shifted by delta (by delta / spread in their own sigma's units)."""
        low, high = looks.low + delta / spread, looks.high + delta / spread
        stopped = (low > 0) | (high < 0) | ((low > -margin) & (high < margin))
        stopped[:, -1] = True
        return float(np.mean(delta + spread[:, 0] * looks.mean[rows, stopped.argmax(axis=1)] >= observed))

    estimate, low, high = (_solved(above, p, observed) for p in (0.5, design.level / 2, 1 - design.level / 2))
    return sd * estimate, sd * low, sd * high


@lru_cache(maxsize=16)
def _simulated(missing: tuple[bool, ...], design: Design, sequences: int) -> Looks:
    """The design's looks on `sequences` standard normal sequences (no true difference), with the given pairs
    missing and none after: the same for every comparison with the same missing pairs."""
    z = np.random.default_rng(SEED).standard_normal((sequences, design.looks[-1]))
    z[:, : len(missing)][:, np.array(missing, dtype=bool)] = np.nan
    return decide(z, design)


def _solved(above, target: float, start: float) -> float:
    """The delta where the increasing step function `above` reaches `target`: a bracket doubled out from `start`,
    then bisected."""
    width = 1.0
    while above(start - width) > target:
        width *= 2
    low, width = start - width, 1.0
    while above(start + width) < target:
        width *= 2
    high = start + width
    for _ in range(STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if above(middle) < target else (low, middle)
    return (low + high) / 2
