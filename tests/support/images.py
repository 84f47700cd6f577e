"""Image folders written for the tests that load them (experiment/test_data, views/test_progress)."""

import numpy as np
from PIL import Image


def write_folder(root, classes=("cat", "airplane", "dog"), per_class=3, size=(6, 5), mode="RGB"):
    """An image folder (train/ and test/, a folder of PNGs per class) of random pixels; the pixels by
    (split, class, index)."""
    rng = np.random.default_rng(0)
    pixels = {}
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                array = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(array, mode).save(root / split / c / f"{i}.png")
                pixels[(split, c, i)] = array
    return pixels
