"""The parts of a data set a run uses: a stratified subset of the training split (`dataset.limit`) and of the test
split (`dataset.test_limit`), and the validation split held out of training (`dataset.validation`).

Each is drawn from a stream fixed by the data set alone (`generator(0, "limit")`, ...), never from a trial's
seed: every variant, seed and sweep point of a run, and every run of the same data set and settings, trains and
evaluates on the same examples, so a tuning decision made on the validation split of one run holds for another.
Stratified: each class gets its share of the count (largest remainders, ties to the lower class), and within a
class the examples are a random draw; the examples a split keeps stay in their original order. meta.json records
what was drawn (`record`): the counts per class and a digest of the indices, into the split as loaded.
"""

import hashlib
from dataclasses import dataclass
from typing import Optional

import torch

from bnbench.errors import BnbenchError
from bnbench.experiment.seeding import generator

STREAM_SEED = 0  # the seed of the data set's own streams: fixed, so that no trial seed moves them


@dataclass(frozen=True)
class Drawn:
    """A stratified draw from a split: the indices picked (sorted) and, for meta.json, what they are."""

    picked: torch.Tensor  # int64, sorted
    per_class: list[int]

    def record(self) -> dict:
        text = ",".join(map(str, self.picked.tolist()))
        return {
            "count": len(self.picked),
            "per_class": self.per_class,
            "sha256": hashlib.sha256(text.encode()).hexdigest()[:32],
        }


def shares(labels: torch.Tensor, count: int, classes: int) -> list[int]:
    """Per class, its share of `count` examples: floor(count * n_c / n), the rest one each to the classes with the
    largest remainders (ties: the lower class first), so that the shares sum to `count` exactly."""
    sizes = torch.bincount(labels, minlength=classes).tolist()
    total = sum(sizes)
    share = [count * n // total for n in sizes]
    by_remainder = sorted(range(classes), key=lambda c: (-(count * sizes[c] % total), c))
    for c in by_remainder[: count - sum(share)]:
        share[c] += 1
    return share


def draw(labels: torch.Tensor, count: int, classes: int, stream: str) -> Drawn:
    """`count` examples of the split with `labels`, stratified, from the data set's stream `stream`."""
    rng = generator(STREAM_SEED, stream)
    per_class = shares(labels, count, classes)
    picked = []
    for c, k in enumerate(per_class):
        members = (labels == c).nonzero().flatten()
        picked.append(members[torch.randperm(len(members), generator=rng)[:k]])
    return Drawn(torch.cat(picked).sort().values, per_class)


def limited(field: str, labels: torch.Tensor, limit: Optional[int], classes: int, split: str) -> Optional[Drawn]:
    """The examples `dataset.<field>: limit` keeps of `split` (None: all); each class the split has keeps one."""
    if limit is None:
        return None
    n = len(labels)
    if limit >= n:
        raise BnbenchError(
            f"dataset.{field}: {limit} keeps every one of the {n} {split} examples; use fewer, or remove it"
        )
    kept = draw(labels, limit, classes, field)
    present = torch.bincount(labels, minlength=classes).tolist()
    lost = [c for c in range(classes) if present[c] and not kept.per_class[c]]
    if lost:
        raise BnbenchError(
            f"dataset.{field}: {limit} keeps no {split} example of class {lost[0]} ({len(lost)} classes go "
            f"empty); keep more (e.g. {min(n - 1, _covering(present))} keeps every class), or remove it"
        )
    return kept


def held_out(value: "int | float | None", labels: torch.Tensor, classes: int) -> Optional[Drawn]:
    """The validation examples `dataset.validation` holds out of the training split (None: none): a count, or a
    fraction rounded to the nearest count; every class keeps at least one training example."""
    if value is None:
        return None
    n = len(labels)
    count = int(value * n + 0.5) if isinstance(value, float) else value
    fix = "use a smaller value, or remove it"
    if count < 1:
        raise BnbenchError(f"dataset.validation: {value} of {n} training examples holds out none; use a larger value")
    if count >= n:
        raise BnbenchError(f"dataset.validation: {value} holds out all {n} training examples, leaving none; {fix}")
    drawn = draw(labels, count, classes, "validation")
    present = torch.bincount(labels, minlength=classes).tolist()
    emptied = [c for c in range(classes) if present[c] and drawn.per_class[c] == present[c]]
    if emptied:
        raise BnbenchError(
            f"dataset.validation: {value} holds out every training example of class {emptied[0]} "
            f"({present[emptied[0]]}), leaving it none to train on; {fix}"
        )
    return drawn


def rest(n: int, drawn: Drawn) -> torch.Tensor:
    """The indices of a split of `n` examples that `drawn` did not pick, in order."""
    keep = torch.ones(n, dtype=torch.bool)
    keep[drawn.picked] = False
    return keep.nonzero().flatten()


def _covering(present: list[int]) -> int:
    """The smallest count whose stratified shares give each present class at least one example."""
    total = sum(present)
    return max(-(-total // n) for n in present if n)
