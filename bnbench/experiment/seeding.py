"""Independent random streams derived from a trial's seed.

Every random draw a trial makes (each layer's initial weights, each epoch's batch order) comes from its own
generator seeded by (seed, stream name, index). No draw shifts another stream, so variants that differ in layers
or RNG use still get identical shared weights and identical batch sequences, in any order and in any process.
What a model draws from the global RNGs while it trains (dropout, `random.random()` in a forward) comes from
them seeded by (seed, "train", epoch) at the start of each epoch (`seed_globals`).
"""

import random
import zlib
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def derive_seed(seed: int, stream: str, *index: int) -> int:
    """A 63-bit seed for `stream` (e.g. "init", layer 2) of experiment seed `seed`."""
    words = [int(seed), zlib.crc32(stream.encode()), *map(int, index)]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, stream: str, *index: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, stream, *index))


def seed_globals(seed: int, stream: str, *index: int) -> None:
    """Seed every global RNG a model can draw from (torch's on the CPU and every accelerator, Python's `random`,
    numpy's legacy one) from `stream` of `seed`.

    torch seeds its global RNG alike in every process and Python and numpy from the OS, so without this a model
    that draws while training (dropout, a factory's `random.random()`) would draw numbers that depend on the
    process and on the trials it trained before. The trainer calls this at the start of each epoch with
    (seed, "train", epoch): a trial's draws then depend on its seed and epoch only, in any process, under any
    --jobs, and a trial resumed or grown from its end-of-epoch checkpoint draws what an uninterrupted one does.
    That is also why checkpoints hold no RNG state: it would be overwritten before its first use."""
    value = derive_seed(seed, stream, *index)
    torch.manual_seed(value)
    random.seed(value)
    np.random.seed([value >> 32, value & 0xFFFFFFFF])  # two 32-bit words: the legacy seed takes no larger ones


@contextmanager
def kept_globals(device: torch.device) -> Iterator[None]:
    """The global RNGs (torch's on the CPU and on `device`, Python's, numpy's) are put back as they were on exit,
    so that what runs inside (an evaluation, a graph's warm-up) shifts no draw of the training around it."""
    python, legacy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng([] if device.type == "cpu" else [device], device_type=device.type):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(legacy)
