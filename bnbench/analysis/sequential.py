"""Deciding while seeds are added: a group-sequential design on paired differences, with repeated confidence
intervals.

Looking at a fixed-n test after every round of seeds and stopping when it says "better" inflates false positives
(five looks at the 0.05 level reject a true null about 14 % of the time: Armitage, McPherson & Rowe 1969). The
clinical-trials answer is a group-sequential design, used here as Jennison & Turnbull ("Group Sequential Methods
with Applications to Clinical Trials", 2000) describe it:

- Looks at n_1 < n_2 < ... < n_K = N pairs (seeds), planned before the first one.
- A Lan–DeMets spending function says how much of each comparison's error rate a look may use, by its
  information fraction n_k / N: Pocock-type alpha * ln(1 + (e - 1) t), which spends early and stops early on a
  large effect, or O'Brien–Fleming-type 2 - 2 Phi(z_{1-alpha/4} / sqrt t) on each side, which keeps almost all of it
  for the last look (Lan & DeMets 1983; each side spends alpha/2, as gsDesign's sfLDOF and sfLDPocock do).
- The two-sided boundaries b_k on the paired t-statistics are set so that, with no true difference, the chance
  of first crossing at look k is exactly what the spending function allots to it. With a known spread they
  would come from the joint normal law of the Z_k (J&T ch. 19; gsDesign). The spread is estimated here, from
  as few as 5 seeds, where using the normal boundaries on Student's t at the same nominal level (J&T section
  11.4) rejects a true null a little too often (benchmarks/sequential.py). The joint law
  of the t-statistics under no difference does not depend on the spread, so the boundaries are calibrated on
  it by simulation (a fixed seed: the same boundaries everywhere): exact for normal differences, and checked by
  simulation for symmetric heavy-tailed ones (tests/analysis/test_sequential.py).
- Skewed differences (real seeds give them: a rare bad seed, variants that differ in spread) make the t-statistic
  itself skewed, so one side's boundary is crossed too often. Each look's interval is therefore the hull of the
  t-interval and the skewness-corrected one at the same boundary (`inference.skew_corrected`, Hall 1992): a
  decision needs both to exclude 0. benchmarks/sequential.py measures what that holds, and docs/statistics.md
  states it.
- Each look gives a repeated confidence interval, for normal differences mean ± b_k s / sqrt(n_k) (J&T ch. 9),
  widened as above where the differences are skewed: the intervals of every
  look cover the true mean difference together with probability >= 1 - alpha. A comparison is decided at the
  first look whose interval excludes 0 (better or worse) or, given a margin X, lies inside (-X, X) (equivalent);
  a wrong decision needs an interval that misses, so every kind of wrong decision is bounded by alpha at once.
- Across comparisons (variants x sweep points) each gets alpha / m (Bonferroni): the intervals then hold
  simultaneously for all of them, which Holm's step-down does not give.

Arrays: `d` is [sequences, N], the paired differences of one comparison per row in seed order (NaN: a missing
pair, e.g. a diverged trial); every function here is vectorised over the rows, so the simulations and a real run
go through the same code.
"""

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from bnbench.analysis.inference import FEWEST, SPREAD_TOLERANCE, skew_corrected, skewness

SPENDING = ("pocock", "obf")
UNDECIDED, BETTER, WORSE, EQUIVALENT = "undecided", "better", "worse", "equivalent"
CALIBRATION = 2**20  # simulated null sequences per set of boundaries
CALIBRATION_SEED = 20261129
FEW = 100  # a look expected to stop fewer of them is not simulated


@dataclass(frozen=True)
class Design:
    """A planned sequence of looks: `looks` the pairs at each (n_1 < ... < n_K, the last is the cap), `alpha` the
    family-wise error rate over all `comparisons` and looks, `spending` pocock or obf, `effect` the equivalence
    margin X (None: no equivalence decisions), `higher` whether a larger difference is better."""

    looks: tuple[int, ...]
    alpha: float = 0.05
    comparisons: int = 1
    spending: str = "pocock"
    effect: Optional[float] = None
    higher: bool = True

    def __post_init__(self):
        if not self.looks or list(self.looks) != sorted(set(self.looks)) or self.looks[0] < 2:
            raise ValueError(f"looks must increase from at least 2 pairs: {self.looks}")
        if not 0 < self.alpha < 1 or self.spending not in SPENDING or self.comparisons < 1:
            raise ValueError(f"bad design: alpha {self.alpha}, spending {self.spending}, m {self.comparisons}")

    @property
    def level(self) -> float:
        """Each comparison's share of alpha (Bonferroni)."""
        return self.alpha / self.comparisons


def spent(t: np.ndarray, alpha: float, spending: str) -> np.ndarray:
    """The two-sided error rate a Lan–DeMets spending function allows by information fraction t (0 < t <= 1)."""
    t = np.minimum(np.asarray(t, dtype=float), 1.0)
    if spending == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    return 4 * ndtr(-ndtri(1 - alpha / 4) / np.sqrt(t))  # each side's alpha/2, as gsDesign's sfLDOF


@lru_cache(maxsize=1024)
def boundaries(ns: tuple[int, ...], cap: int, alpha: float, spending: str, final: bool = False) -> tuple[float, ...]:
    """Two-sided boundaries b_k on the paired t-statistics at looks with ns[k] pairs (n_1 >= 2) out of `cap`
    planned, such that for normal differences with no mean difference
    P(|t_j| < b_j for j < k, |t_k| >= b_k) = spent(n_k / cap) - spent(n_{k-1} / cap).
    The `final` look (and any at or past the cap) spends what is left; a look that may spend nothing: inf.

    The t-statistics' joint law under the null does not depend on the unknown spread, so it is simulated:
    CALIBRATION sequences from a fixed seed (the same boundaries everywhere), each look's boundary the quantile
    of |t_k| among those not stopped yet. A look whose share is too small to simulate (fewer than FEW crossings)
    uses the t quantile of its share alone, which can only spend less than allotted."""
    fractions = np.minimum(np.array(ns, dtype=float) / cap, 1.0)
    fractions[-1] = 1.0 if final else fractions[-1]
    budget = np.diff(np.concatenate([[0.0], spent(fractions, alpha, spending)]))
    rng = np.random.default_rng(CALIBRATION_SEED)
    total, squares = np.zeros(CALIBRATION), np.zeros(CALIBRATION)
    going = np.ones(CALIBRATION, dtype=bool)
    bounds, before = [], 0
    for n, share in zip(ns, budget):
        total, squares = _add_pairs(rng, total, squares, n - before)
        before = n
        t = np.abs(total / n) / np.sqrt((squares - total**2 / n) / (n - 1) / n)
        crossings = share * CALIBRATION
        if share <= 1e-15:
            b = math.inf
        elif crossings < FEW:
            b = float(stdtrit(n - 1, 1 - share / 2))
        else:
            alive = t[going]
            b = float(np.partition(alive, len(alive) - int(round(crossings)))[len(alive) - int(round(crossings))])
        bounds.append(b)
        going &= t < b
    return tuple(bounds)


def _add_pairs(rng, total: np.ndarray, squares: np.ndarray, more: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares of standard normal draws, `more` draws added to each: the new draws' sum is
    N(0, more) and their squares add (sum)^2 / more + chi^2(more - 1), independently (Cochran), so that a step
    costs two draws a sequence whatever its size."""
    step = rng.standard_normal(len(total)) * math.sqrt(more)
    rest = rng.chisquare(more - 1, len(total)) if more > 1 else 0.0
    return total + step, squares + step**2 / more + rest


@dataclass
class Looks:
    """Every look of every sequence, arrays [sequences, K]: pairs `n`, `mean`, `sd` of the differences, the
    repeated confidence interval `low`..`high`, the t-scale `bound` used, `status` there; and per sequence the
    `decision` (the status of the first decided look, else undecided) and `decided_at` (its look index, -1 if
    none)."""

    n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    low: np.ndarray
    high: np.ndarray
    bound: np.ndarray
    status: np.ndarray
    decision: np.ndarray = field(init=False)
    decided_at: np.ndarray = field(init=False)

    def __post_init__(self):
        decided = self.status != UNDECIDED
        self.decided_at = np.where(decided.any(axis=1), decided.argmax(axis=1), -1)
        rows = np.arange(len(self.status))
        self.decision = np.where(self.decided_at >= 0, self.status[rows, self.decided_at], UNDECIDED)


def decide(d: np.ndarray, design: Design, looks: Optional[int] = None) -> Looks:
    """Run `design` over the paired differences d [sequences, N] (N >= the seeds of the looks taken), taking its
    first `looks` looks (default: all). A look's n counts the non-NaN differences among its first n_k seeds; its
    boundary comes from the sequence's own n history, so a missing pair costs information, not validity."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    planned = design.looks[: looks or len(design.looks)]
    counts = np.stack([(~np.isnan(d[:, :k])).sum(axis=1) for k in planned], axis=1)
    sums = np.stack([np.nansum(d[:, :k], axis=1) for k in planned], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        sd = np.stack([np.sqrt(np.nansum((d[:, :k] - mean[:, [j]]) ** 2, axis=1)) for j, k in enumerate(planned)], 1)
        sd /= np.sqrt(counts - 1)
        skew = np.stack([skewness(d[:, :k], mean[:, j], sd[:, j]) for j, k in enumerate(planned)], axis=1)
        bound = _bounds(counts, design)
        half = bound * sd / np.sqrt(counts)
        skew_low, skew_high = skew_corrected(mean, sd, skew, counts, bound)
    shut = np.isinf(bound)  # fewer than FEWEST pairs, or no new pair: the look takes no decision
    low = np.where(shut, -np.inf, np.fmin(mean - half, skew_low))
    high = np.where(shut, np.inf, np.fmax(mean + half, skew_high))
    return Looks(counts, mean, sd, low, high, bound, _status(low, high, design))


def _bounds(counts: np.ndarray, design: Design) -> np.ndarray:
    """The t-scale boundary of each look, [sequences, K], from each sequence's own n history."""
    out = np.empty(counts.shape)
    cap = design.looks[-1]
    for history in {tuple(row) for row in counts.tolist()}:
        rows = np.all(counts == history, axis=1)
        usable = [k for k, n in enumerate(history) if n >= FEWEST and (k == 0 or n > history[k - 1])]
        c = np.full(len(history), np.inf)
        if usable:
            final = usable[-1] == len(design.looks) - 1
            c[usable] = boundaries(tuple(history[k] for k in usable), cap, design.level, design.spending, final)
        out[rows] = c
    return out


def _status(low: np.ndarray, high: np.ndarray, design: Design) -> np.ndarray:
    """What an interval decides: better/worse when it excludes 0, equivalent when it lies inside (-X, X)."""
    up, down = (BETTER, WORSE) if design.higher else (WORSE, BETTER)
    status = np.full(low.shape, UNDECIDED, dtype=object)
    status[low > 0] = up
    status[high < 0] = down
    if design.effect is not None:
        status[(low > -design.effect) & (high < design.effect) & (status == UNDECIDED)] = EQUIVALENT
    return status


def exact_when_constant(d: np.ndarray, looks: Looks, design: Design) -> Looks:
    """`looks` of d [sequences, N] where a look whose differences are constant (inference.zero_spread: rounding,
    not spread) takes the exact sign-flip test's confidence set in place of its zero-width t-interval, as
    `compare` decides such differences. With every difference c, the test of a mean mu != c sees n signs that
    agree: p = 2 / 2^n. At the look's level, the two-sided level of its t boundary 2 P(T_{n-1} >= b_k), the set
    is the point c when 2 / 2^n reaches it, else every value: 1/360 on every seed is undecided at 5 pairs
    (0.0625) and decided once 2 / 2^n is small enough; a zero difference is never better or worse. Its sd is 0."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    size = np.where(np.isnan(d), 0.0, np.abs(d))
    largest = np.stack([size[:, :k].max(axis=1) for k in design.looks[: looks.n.shape[1]]], axis=1)
    constant = (looks.n >= 2) & (looks.sd <= SPREAD_TOLERANCE * np.maximum(largest, 1e-12))
    reached = 2.0 / 2.0 ** np.where(constant, looks.n, 0) <= 2 * stdtr(np.maximum(looks.n - 1, 1), -looks.bound)
    low = np.where(constant, np.where(reached, looks.mean, -np.inf), looks.low)
    high = np.where(constant, np.where(reached, looks.mean, np.inf), looks.high)
    sd = np.where(constant, 0.0, looks.sd)
    return Looks(looks.n, looks.mean, sd, low, high, looks.bound, _status(low, high, design))


def schedule(first: int, cap: int, step: int) -> tuple[int, ...]:
    """The looks: `first` pairs (at least 2), then `step` more a round, the last at `cap`."""
    looks = list(range(max(first, 2), cap, step)) + [cap]
    return tuple(sorted(set(looks)))
