"""Data augmentation of the training split (`dataset.augment`): the standard CIFAR recipe's random crop (zero
padding of PAD pixels on each side, then a crop of the original size: a shift of up to PAD pixels each way) and
horizontal flip, applied to each batch's uint8 images on the device, as one gather, with no per-example Python.

Every example's shift and flip for an epoch are drawn at the epoch's start, in batch order, from the stream
(seed, "augment", epoch) of the trial's seed (`draws`): the draws depend on nothing but the seed, the epoch and the
batch order (itself the seed's), so every variant of a seed sees the same augmented batches, on any engine, in any
process, after a resume or a grow from an epoch's end. The draws are kept by example (the batch order is a
permutation), so a batch's are gathered with its example indices. Both kinds are always drawn, and the unused one
set to "none", so that `[flip]` flips the examples that `[crop, flip]` flips.

Crop needs images of at least MIN_SIDE pixels a side: a shift of PAD pixels keeps at least half of each side in
view, while on smaller images a crop could show nothing but padding. Flip is allowed on any data, digits
included, where mirrored digits are a worse recipe (a mirrored 2 is no 2): bnbench compares variants under one
recipe, the same batches for each, and whether the recipe suits the data is the user's question, not a fairness
one; refusing it would also keep recipes off the small data sets their tests run on.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from bnbench.errors import BnbenchError
from bnbench.experiment.seeding import generator

PAD = 4
MIN_SIDE = 2 * PAD


def check(kinds: list[str], shape: tuple[int, ...]) -> None:
    """Refuse, in one line, a crop of images too small for it (`shape`: [C, H, W])."""
    if "crop" in kinds and min(shape[1:]) < MIN_SIDE:
        raise BnbenchError(
            f"dataset.augment: crop shifts images by up to {PAD} pixels, which on {shape[2]}x{shape[1]} images "
            f"can leave none of the image in view; use it on images of {MIN_SIDE} pixels a side or more, or drop crop"
        )


def draws(kinds: list[str], order: torch.Tensor, seed: int, epoch: int) -> Optional[torch.Tensor]:
    """Each example's (row shift, column shift, flip) for epoch `epoch` (1-based) of a trial of `seed` whose batch
    order is `order`, as int64 [examples, 3] on `order`'s device, by example index; None without augmentation.
    A shift is the crop's offset into the padded image (PAD: none), flip 1 mirrors the crop."""
    if not kinds:
        return None
    rng = generator(seed, "augment", epoch)
    n = len(order)
    drawn = torch.cat(
        [torch.randint(0, 2 * PAD + 1, (n, 2), generator=rng), torch.randint(0, 2, (n, 1), generator=rng)], 1
    )
    if "crop" not in kinds:
        drawn[:, :2] = PAD
    if "flip" not in kinds:
        drawn[:, 2] = 0
    by_example = torch.empty_like(drawn)
    by_example[order.cpu()] = drawn
    return by_example.to(order.device)


def apply(x: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """The uint8 images x [B, C, H, W], each shifted and flipped as its row of `drawn` [B, 3] says: one gather
    from the zero-padded batch. Integer indexing only, so every engine and device gives the same bytes."""
    b, c, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    rows = drawn[:, :1] + torch.arange(h, device=x.device)  # [B, H]
    cols = torch.arange(w, device=x.device)
    cols = torch.where(drawn[:, 2:].bool(), w - 1 - cols, cols) + drawn[:, 1:2]  # [B, W]
    index = (rows[:, :, None] * (w + 2 * PAD) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.flatten(2).gather(2, index).view(b, c, h, w)
