"""The estimate of a comparison that a sequential run decided, adjusted for the stop.

A run that stops at the first look whose interval excludes 0 stops sooner when its first seeds happened to show a
large difference, so the mean at the stop overstates the effect: by 8-12 % of it at d <= 1 on average, and by
about 40 % when it stops at the first look at d = 1 (benchmarks/stopped.py). The repeated confidence interval
still covers; the point estimate does not centre.

The stage-wise ordering (Jennison & Turnbull 2000, section 8.4; Tsiatis, Rosner & Mehta 1984) ranks the outcomes
of the design: a stop above 0 at an earlier look above every later outcome, a stop below 0 below them, and at the
same look by the t-statistic (an equivalence stop, by its mean). The chance P_delta(an outcome at least as high as
the observed one) increases with the true standardized difference delta = mu / sigma: the median-unbiased
estimate is the delta where it is 1/2, and the interval's ends those where it is level/2 and 1 - level/2 (the
comparison's own level, alpha / m, as its repeated interval's).

It is computed by simulating the design under normal differences, with the sequence's own pairs at each look, and
the library's own `decide` (its boundaries and intervals, the skew correction included). `decide`'s interval at
every look is the mean plus the sd times a function of the standardized differences, so shifting a sequence by
delta shifts its intervals by delta and leaves its t-statistics' spread alone: one call on SEQUENCES fixed draws
(common random numbers, a fixed seed) gives every delta's outcomes, and a bisection finds each end. The stop's
law depends on delta alone (the margin of an equivalence stop is scaled by the observed sd), so the estimate of
delta is median-unbiased up to simulation error; it is turned into the metric's units by the observed sd.
"""

import math
from typing import Optional

import numpy as np

from bnbench.analysis.sequential import Design, decide

SEQUENCES = 2**14
SEED = 20261207
STEPS = 40  # bisection steps: the bracket shrinks 2^40-fold


def median_unbiased(
    d: np.ndarray, design: Design, stop: int, sequences: int = SEQUENCES
) -> Optional[tuple[float, float, float]]:
    """The median-unbiased estimate of the mean difference and its interval, (estimate, low, high), for the
    paired differences d [N] (NaN: a missing pair) of a comparison that `design` stopped at look index `stop`
    (its mean and sd there, the looks before it undecided). None where the stop has no spread to scale by."""
    d = np.asarray(d, dtype=float)
    seen = d[: design.looks[stop]]
    pairs = seen[~np.isnan(seen)]
    if len(pairs) < 2 or not np.std(pairs, ddof=1) > 0:
        return None
    mean, sd = float(pairs.mean()), float(np.std(pairs, ddof=1))
    z = np.random.default_rng(SEED).standard_normal((sequences, len(seen)))
    z[:, np.isnan(seen)] = np.nan  # the same missing pairs: the same n and boundaries at each look
    looks = decide(z, design, stop + 1)
    margin = math.inf if design.effect is None else design.effect / sd
    observed = mean / sd

    def above(delta: float) -> float:
        """P_delta(an outcome at least as high as the observed one), from the draws shifted by delta."""
        low, high = looks.low[:, :-1] + delta, looks.high[:, :-1] + delta
        up, down = low > 0, high < 0
        same = ~up & ~down & (low > -margin) & (high < margin)
        stopped = up | down | same
        first = stopped.argmax(axis=1)[:, None]
        ranked = np.take_along_axis(up | (same & (looks.mean[:, :-1] + delta > observed)), first, axis=1)[:, 0]
        early = stopped.any(axis=1) & ranked
        late = ~stopped.any(axis=1) & (looks.mean[:, -1] + delta >= observed)
        return float(np.mean(early | late))

    ends = [_solved(above, p, observed) for p in (0.5, design.level / 2, 1 - design.level / 2)]
    return sd * ends[0], sd * ends[1], sd * ends[2]


def _solved(above, target: float, start: float) -> float:
    """The delta where the increasing step function `above` reaches `target`: a bracket doubled out from `start`,
    then bisected."""
    width = 1.0
    while above(start - width) > target:
        width *= 2
    low = start - width
    width = 1.0
    while above(start + width) < target:
        width *= 2
    high = start + width
    for _ in range(STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if above(middle) < target else (low, middle)
    return (low + high) / 2
