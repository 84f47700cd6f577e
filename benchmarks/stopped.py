"""How biased the estimate printed at a sequential stop is, and how the adjusted one (bnbench/analysis/stopped.py)
does, by simulation.

For each true effect d = delta / sd (normal differences, sd 1) and spending kind: --sequences sequences of 20
paired differences go through sequential.decide (looks after 5, 10, 15, 20 seeds, alpha 0.05, one comparison);
each is estimated where it stopped (its last look when undecided), naively (the mean there) and by
stopped.median_unbiased (--draws simulated sequences each). Printed per cell: the mean bias of each as a share of
d, the share of estimates above d (1/2 for a median-unbiased one), the adjusted interval's coverage, and the same
bias among the sequences that stopped at the earliest look that decided any.

Run: python benchmarks/stopped.py [--sequences 1000] [--draws 4096] [--seed 1]

Measured on the 2-core Intel Xeon VM (--sequences 2000, seed 1), 2026-12-06, shared with other work:
looks (5, 10, 15, 20), alpha 0.05, 2000 sequences a cell, 4096 draws an estimate
                    naive          adjusted (median-unbiased)   earliest stop: bias
spending    d    bias  >d share    bias  >d share  cover     share at  naive  adjusted
pocock    0.5   +5.7%  0.526   +2.6%  0.502  0.978  0.18 at 10 +70.7% +68.1%
pocock    1.0   +2.4%  0.512   +0.9%  0.490  0.974  0.65 at 10 +12.1% +10.6%
pocock    1.5   -0.5%  0.490   -1.6%  0.473  0.958  0.94 at 10  +0.5%  -0.5%
obf       0.5   +2.0%  0.505   -1.1%  0.479  0.981  0.02 at 10 +92.1% +90.2%
obf       1.0   +1.9%  0.512   +0.3%  0.488  0.978  0.22 at 10 +26.2% +25.0%
obf       1.5   +0.3%  0.495   -0.7%  0.475  0.964  0.60 at 10  +6.5%  +5.6%
184 s
"""

import argparse
import time

import numpy as np

from bnbench.analysis import sequential, stopped

LOOKS = (5, 10, 15, 20)


def cell(effect: float, spending: str, sequences: int, draws: int, seed: int) -> str:
    design = sequential.Design(LOOKS, spending=spending)
    d = np.random.default_rng(seed).normal(effect, 1.0, (sequences, LOOKS[-1]))
    looks = sequential.decide(d, design)
    stop = np.where(looks.decided_at >= 0, looks.decided_at, len(LOOKS) - 1)
    naive = looks.mean[np.arange(sequences), stop]
    adjusted = np.array([stopped.median_unbiased(d[i], design, int(stop[i]), draws) for i in range(sequences)])
    covered = np.mean((adjusted[:, 1] < effect) & (effect < adjusted[:, 2]))
    early = stop == stop[looks.decided_at >= 0].min() if (looks.decided_at >= 0).any() else stop < 0
    share = f"{early.mean():.2f} at {LOOKS[stop[early][0]]}" if early.any() else "none"
    return (
        f"{spending:8} {effect:4.1f}  {np.mean(naive) / effect - 1:+6.1%} {np.mean(naive > effect):6.3f}  "
        f"{np.mean(adjusted[:, 0]) / effect - 1:+6.1%} {np.mean(adjusted[:, 0] > effect):6.3f} {covered:6.3f}  "
        f"{share:>10} {np.mean(naive[early]) / effect - 1:+6.1%} {np.mean(adjusted[early, 0]) / effect - 1:+6.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"looks {LOOKS}, alpha 0.05, {args.sequences} sequences a cell, {args.draws} draws an estimate")
    print("                    naive          adjusted (median-unbiased)   earliest stop: bias")
    print("spending    d    bias  >d share    bias  >d share  cover     share at  naive  adjusted")
    for spending in ("pocock", "obf"):
        for effect in (0.5, 1.0, 1.5):
            print(cell(effect, spending, args.sequences, args.draws, args.seed), flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
