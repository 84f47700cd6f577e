"""Outcomes that are not a number to subtract: a trial that diverged, and a variant that learned nothing.

A diverged trial has no test accuracy, but it is an outcome, and often the one a comparison is about: comparing
only the pairs where neither diverged compares what divergence left over (2 seeds of 10 where the baseline
diverged on 8), not the variants, and calls a variant that survives where the baseline diverges "no difference".
So, where some pair of seeds has a diverged trial (either side), the primary measure is decided on every pair
where both trials ended (finished the compared epoch, or diverged) by a rank rule: a diverged trial ranks below
every trial that finished, two diverged trials tie, two finished ones compare by their value (ties within
rounding, as in `paired`); the decision is the exact sign test of the variant's wins against its losses (ties
dropped), in the same Holm family as the paired test it replaces. The paired difference on the pairs where neither
diverged is kept, as a description of those pairs only.

A variant learned nothing when no seed of it ended above chance: every finished seed's final test accuracy is
within 5% of the way from chance (100/classes %, guessing uniformly) to 100% (a Cohen's kappa against uniform
guessing below 0.05: 14.5% at 10 classes, 5.95% at 100), a diverged seed counting as at chance. When neither the
variant nor the baseline learned, their steps to a target compare noise on flat curves: the verdict says so
instead of a speed. Data sets whose class count bnbench does not know without loading them (an image folder)
get no such judgement.
"""

from typing import Optional

import numpy as np

from bnbench.analysis import inference
from bnbench.analysis.columns import PRIMARY, col

RULE = "a diverged trial counts as the worst; sign test"
CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
KAPPA = 0.05  # a trial whose accuracy is less than this fraction of the way from chance to 100% learned nothing


def ranked(name: str, m: dict, v: int, b: int, higher: bool) -> dict:
    """The rank rule's columns for measure `name` of variant v against baseline b (see the module docstring), and
    the decision's p replaced by the sign test's; {} where no pair where both ended has a diverged trial (the
    paired test stands)."""
    diverged = ~np.isnan(m["diverged_step"])
    both = ~np.isnan(m["steps"][:, v]) & ~np.isnan(m["steps"][:, b])  # both ended: finished E, or diverged
    gone_v, gone_b = diverged[both, v], diverged[both, b]
    if not (gone_v | gone_b).any():
        return {}
    x_v, x_b = m[name][both, v], m[name][both, b]
    finished = ~gone_v & ~gone_b
    tie = (gone_v & gone_b) | (finished & np.isclose(x_v, x_b, rtol=1e-7, atol=1e-12))
    better = np.where(finished, (x_v > x_b) if higher else (x_v < x_b), gone_b)
    wins, losses = int((better & ~tie).sum()), int((~better & ~tie).sum())
    return {
        col(name, "rule"): RULE,
        col(name, "ranked"): int(both.sum()),
        col(name, "ranked_wins"): wins,
        col(name, "ranked_losses"): losses,
        col(name, "p"): inference.sign_test_p(wins, losses),
    }


def chance(dataset: str) -> Optional[float]:
    """Test accuracy (%) of guessing uniformly among the data set's classes; None where the count is unknown."""
    return 100.0 / CLASSES[dataset] if dataset in CLASSES else None


def learned_nothing(acc: np.ndarray, ended: int, level: Optional[float]) -> Optional[bool]:
    """Whether a variant with `ended` trials (finished or diverged) and the finished ones' final test accuracies
    `acc` (%) learned nothing: every one at most KAPPA of the way from chance `level` to 100; None where
    `level` is unknown or no trial ended."""
    if level is None or not ended:
        return None
    return bool((acc <= level + KAPPA * (100 - level)).all())


def ranked_claim(row: dict, name: str, label: str) -> str:
    """The verdict's claim on a measure decided by the rank rule: 'better test acc: 9/10 seeds better, 0 worse
    (a diverged trial counts as the worst; sign test, Holm p=0.0039)', then what the sign test could decide
    where it could not, and the pairs where neither diverged, described as such."""
    wins, losses, n = (row[col(name, s)] for s in ("ranked_wins", "ranked_losses", "ranked"))
    p, tests = row[col(name, "p_holm")], row[col(name, "tests")]
    counts = f"{wins}/{n} seeds better, {losses} worse ({RULE}, Holm p{inference.p_is(p)})"
    if p < inference.ALPHA:
        return f"{'better' if wins > losses else 'worse'} {label}: {counts}"
    text = f"no difference shown in {label}: {counts}"
    level, smallest = inference.ALPHA / tests, 2 / 2 ** (wins + losses)
    if smallest > level:
        text += (
            f"; the sign test cannot decide with {wins + losses} untied pairs (its smallest p, "
            f"{inference.format_p(smallest, level)}, is above the level it is held to, {level:.3g})"
        )
    return text


def survivors(row: dict, name: str, unit: str) -> str:
    """The paired difference on the pairs where neither diverged, described as only those pairs' (no test)."""
    pairs = row["pairs"]
    if not pairs:
        return ""
    low, high = row[col(name, "ci_low")], row[col(name, "ci_high")]
    interval = "" if np.isnan(low) else f", unadjusted 95% CI [{low:+.2f}, {high:+.2f}]"
    unit = f" {unit}" if unit else ""
    return (
        f"on the {pairs} pair{'s' * (pairs != 1)} where neither diverged: {row[col(name, 'delta')]:+.2f}{unit}"
        f"{interval}, {row[col(name, 'wins')]}/{pairs} better"
    )


def by_rank(row: dict, name: str) -> bool:
    """Whether the rank rule decided measure `name` on this row (only the primary one has it; a table's missing
    value is NaN, not "")."""
    rule = row.get(col(name, "rule")) if name == PRIMARY else None
    return isinstance(rule, str) and bool(rule)


def decided_better(row: dict, name: str) -> bool:
    """Under the rank rule, the direction of a decided claim: more wins than losses."""
    return row[col(name, "ranked_wins")] > row[col(name, "ranked_losses")]
