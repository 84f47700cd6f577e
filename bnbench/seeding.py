"""Independent random streams derived from a trial's seed.

Every random draw a trial makes (each layer's initial weights, each epoch's batch order) comes from its own
generator seeded by (seed, stream name, index). No draw shifts another stream, so variants that differ in layers
or RNG use still get identical shared weights and identical batch sequences, in any order and in any process.
"""
import zlib

import numpy as np
import torch


def derive_seed(seed: int, stream: str, *index: int) -> int:
    """A 63-bit seed for `stream` (e.g. "init", layer 2) of experiment seed `seed`."""
    words = [int(seed), zlib.crc32(stream.encode()), *map(int, index)]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, stream: str, *index: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, stream, *index))
