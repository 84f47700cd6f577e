"""`bnbench init`: a config and a model factory to start "my own network" from, written side by side (a factory's
module is imported from its config's folder, see `models.load_factory`). As written they run on the bundled
digits set in seconds; the comments say what to change for real data."""

from pathlib import Path

from bnbench.errors import BnbenchError

MODULE = "my_net"

CONFIG = f"""\
# My own network, with BatchNorm and without: `model.factory` names the function in {MODULE}.py (beside this file)
# that builds it. Runs as written on scikit-learn's bundled 8x8 digits in seconds:
#   bnbench run {MODULE}.yaml, then bnbench compare results/{MODULE}-digits
# For real data set `dataset: {{name: cifar10, root: ./data, download: true}}` (the run folder is then named
# {MODULE}-cifar10), and more epochs.
name: {MODULE}-digits
seeds: [0, 1, 2, 3, 4]
dataset: {{name: digits}}
model: {{kind: factory, factory: "{MODULE}:make_net", kwargs: {{width: 16}}}}
variants:
  - {{name: batchnorm, norm: batchnorm}}
  - {{name: plain, norm: none}}
baseline: plain
optimizer: {{name: adam, lr: 1.0e-3}}
training: {{epochs: 5, batch_size: 32, shuffle: true, log_every: 0, eval_every: 20}}
device: cpu
"""

FACTORY = '''\
"""My network for bnbench: `make_net` is called once per variant and seed (see the config beside this file)."""

from torch import nn


def make_net(num_classes, in_shape, norm_layer, width=16):
    """A network for images of shape `in_shape` (channels, height, width) and `num_classes` classes. Put
    `norm_layer(channels)` where the normalization goes: bnbench passes BatchNorm2d for the batchnorm variant and
    an identity for plain, so both variants are this same network. Keyword arguments come from the config's
    `model.kwargs`."""
    channels = in_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False),
        norm_layer(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        norm_layer(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )
'''


def init(folder: Path) -> list[Path]:
    """Write FOLDER/my_net.yaml and FOLDER/my_net.py (FOLDER made if need be); a file already there is never
    overwritten: it is refused before anything is written."""
    files = {folder / f"{MODULE}.yaml": CONFIG, folder / f"{MODULE}.py": FACTORY}
    there = [str(path) for path in files if path.exists() or path.is_symlink()]
    if there:
        raise BnbenchError(
            f"{', '.join(there)}: already there; bnbench init writes new files only: pass another FOLDER"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            with open(path, "x", encoding="utf-8") as file:
                file.write(text)
    except OSError as e:
        raise BnbenchError(f"{folder}: cannot write ({e.strerror or e}); pass another FOLDER") from None
    return list(files)
