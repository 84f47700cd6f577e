"""Data sets, decoded once into uint8 tensors, and the seeded batch order.

Images are held as uint8 [N, C, H, W] (CIFAR-10: 150 MB) and scaled like `ToTensor()` (x / 255) one batch at a
time, so the training loop does no per-sample PIL work and worker processes can share one uint8 copy.
Decoding an image folder is cached next to the data (invalidated when any file's name, size or mtime changes);
the digits come with the package (digits.npz, see digits-provenance.txt).
"""

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from bnbench.errors import BnbenchError
from bnbench.experiment import augment, subsets
from bnbench.experiment.config import DatasetConfig
from bnbench.experiment.seeding import generator

TORCHVISION = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GREY_MODES = ("L", "1", "I;16")
Loading = Callable[[str, int, int], None]
DECODER = "2"  # part of the cache fingerprint: version 1 decoded a split in its first file's mode
DIGITS = resources.files("bnbench.experiment") / "digits.npz"  # the 8x8 digits and their split


@dataclass
class Split:
    x: torch.Tensor  # uint8 [N, C, H, W]
    y: torch.Tensor  # int64 [N]


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: list[str]
    mean: Optional[torch.Tensor] = None  # [C], set when the config asks for normalisation
    std: Optional[torch.Tensor] = None
    val: Optional[Split] = None  # held out of train (dataset.validation; bnbench.experiment.subsets)
    drawn: dict = field(default_factory=dict)  # meta.json's record of the subsets drawn: limit, validation, ...

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device) -> "Dataset":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        split = lambda s: None if s is None else Split(move(s.x), move(s.y))  # noqa: E731
        return Dataset(
            self.name,
            split(self.train),
            split(self.test),
            self.classes,
            move(self.mean),
            move(self.std),
            split(self.val),
            self.drawn,
        )

    def save(self, path: Path) -> Path:
        torch.save(
            {
                "name": self.name,
                "classes": self.classes,
                "mean": self.mean,
                "std": self.std,
                "train": (self.train.x, self.train.y),
                "test": (self.test.x, self.test.y),
                "val": None if self.val is None else (self.val.x, self.val.y),
                "drawn": self.drawn,
            },
            path,
        )
        return path

    @staticmethod
    def load(path: Path) -> "Dataset":
        """Memory-map a saved data set: processes that load one file share its pages."""
        d = torch.load(path, mmap=True, weights_only=True)
        val = None if d["val"] is None else Split(*d["val"])
        return Dataset(
            d["name"], Split(*d["train"]), Split(*d["test"]), d["classes"], d["mean"], d["std"], val, d["drawn"]
        )

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float model inputs, exactly as ToTensor() (and Normalize, when configured)."""
        x = x.float().div_(255)
        if self.mean is not None:
            x = x.sub_(self.mean[:, None, None]).div_(self.std[:, None, None])
        return x


def batch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The order of the training examples in `epoch` (1-based): a function of (seed, epoch) only."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=generator(seed, "batches", epoch))


def load_dataset(cfg: DatasetConfig, loading: Optional[Loading] = None) -> Dataset:
    """The data set of `cfg`; `loading(what, done, total)` hears how a first decode of an image folder goes."""
    if cfg.name == "imagefolder":
        data = _imagefolder(cfg, loading or (lambda *_: None))
    else:
        data = (_digits if cfg.name == "digits" else _torchvision)(cfg)
    augment.check(cfg.augment, data.input_shape)
    _draw_subsets(cfg, data)
    if cfg.normalize:
        x = data.train.x.float().div_(255)
        data.mean, data.std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return data


def _draw_subsets(cfg: DatasetConfig, data: Dataset) -> None:
    """The training examples `dataset.limit` keeps, then the validation split held out of them, and the test
    examples `dataset.test_limit` keeps (bnbench.experiment.subsets); `data.drawn` records each, with indices into
    the split as loaded. Before normalisation: its mean and std are the remaining training examples'."""
    classes = data.num_classes
    kept = subsets.limited("limit", data.train.y, cfg.limit, classes, "training")
    if kept is not None:
        data.train, data.drawn["limit"] = _rows(data.train, kept.picked), kept.record()
    origin = kept.picked if kept is not None else torch.arange(len(data.train.y))  # into the split as loaded
    val = subsets.held_out(cfg.validation, data.train.y, classes)
    if val is not None:
        data.val, data.train = _rows(data.train, val.picked), _rows(data.train, subsets.rest(len(data.train.y), val))
        data.drawn["validation"] = subsets.Drawn(origin[val.picked], val.per_class).record()
    test = subsets.limited("test_limit", data.test.y, cfg.test_limit, classes, "test")
    if test is not None:
        data.test, data.drawn["test_limit"] = _rows(data.test, test.picked), test.record()


def _rows(split: Split, rows: torch.Tensor) -> Split:
    return Split(split.x.index_select(0, rows), split.y.index_select(0, rows))


# ---- loaders -----------------------------------------------------------------------------------------------------


def _digits(cfg: DatasetConfig) -> Dataset:
    """The 8x8 digits as scikit-learn bundles them, shipped in digits.npz (no network, no scikit-learn): 0..16
    rescaled to uint8, and the fixed stratified 80/20 split that scikit-learn drew (digits-provenance.txt)."""
    with DIGITS.open("rb") as file, np.load(file) as saved:
        images, target, train, test = (saved[key] for key in ("images", "target", "train", "test"))
    x = np.round(images * (255 / 16)).astype(np.uint8)[:, None]
    split = lambda rows: Split(torch.from_numpy(x[rows]), torch.from_numpy(target[rows]).long())  # noqa: E731
    return Dataset("digits", split(train), split(test), [str(c) for c in range(10)])


def _torchvision(cfg: DatasetConfig) -> Dataset:
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION[cfg.name])
    splits = []
    for train in (True, False):
        try:
            ds = cls(cfg.root, train=train, download=cfg.download)
        except Exception as e:  # torchvision raises RuntimeError, URLError, OSError, ... for missing data
            how = ("download failed: " + str(e).splitlines()[0]) if cfg.download else "dataset.download is false"
            raise BnbenchError(
                f"dataset.root: {cfg.name} not found under '{Path(cfg.root).resolve()}' ({how}); put the "
                f"torchvision files there, allow the download, or use dataset.name=imagefolder"
            ) from None
        x = torch.as_tensor(np.asarray(ds.data))
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)  # CIFAR is NHWC, MNIST NHW
        splits.append(Split(x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.long)))
    return Dataset(cfg.name, splits[0], splits[1], list(ds.classes))


def _imagefolder(cfg: DatasetConfig, loading: Loading) -> Dataset:
    """`root/train/<class>/*` and `root/test/<class>/*`; class index = position of the sorted folder name.

    One channel if every image of both splits is greyscale, else RGB (see `_decode`); train and test images must
    share one size, checked here rather than by the model after a whole epoch."""
    root = Path(cfg.root)
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise BnbenchError(
                f"dataset.root: '{root.resolve() / split}' does not exist; an imagefolder root holds "
                f"train/<class>/* and test/<class>/*"
            )
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise BnbenchError(f"dataset.root: '{root / 'train'}' has no class folders")
    (train, train_file), (test, test_file) = (
        _folder_split(root / split, classes, loading) for split in ("train", "test")
    )
    if train.x.shape[2:] != test.x.shape[2:]:
        raise BnbenchError(
            f"dataset.root: test image '{test_file}' is {_size(test.x)}, but train image "
            f"'{train_file}' is {_size(train.x)}; train and test images must share one size"
        )
    channels = max(train.x.shape[1], test.x.shape[1])
    return Dataset(root.name, _with_channels(train, channels), _with_channels(test, channels), classes)


def _size(x: torch.Tensor) -> str:
    return f"{x.shape[3]}x{x.shape[2]}"


def _with_channels(split: Split, channels: int) -> Split:
    """A greyscale split as RGB (each grey value in R, G and B, as PIL converts) when the other split is in colour."""
    if split.x.shape[1] == channels:
        return split
    return Split(split.x.expand(-1, channels, -1, -1).contiguous(), split.y)


def _folder_split(folder: Path, classes: list[str], loading: Loading) -> tuple[Split, str]:
    """The decoded split (from the cache when its files are unchanged) and its first file, for messages."""
    unknown = sorted(
        p.name
        for p in folder.iterdir()  # hidden folders (.ipynb_checkpoints) are skipped, as in train/
        if p.is_dir() and p.name not in classes and not p.name.startswith(".")
    )
    if unknown:
        raise BnbenchError(f"dataset.root: '{folder}' has class folders not in train/: {unknown}")
    files, listing = [], []  # os.scandir and plain strings: pathlib is slow here (benchmarks/cpu.py)
    for label, c in enumerate(classes):
        entries = (
            sorted(
                (e for e in os.scandir(folder / c) if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES),
                key=lambda e: e.name,
            )
            if (folder / c).is_dir()
            else []
        )
        for e in entries:
            stat = e.stat()
            files.append((e.path, label))
            listing.append(f"{c}/{e.name}|{stat.st_size}|{stat.st_mtime_ns}")
    if not files:
        raise BnbenchError(f"dataset.root: no images under '{folder}' (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    fingerprint = hashlib.sha1("\n".join([DECODER, *listing]).encode()).hexdigest()[:16]
    for cache in _cache_paths(folder, fingerprint):
        if cache.is_file():
            try:
                saved = torch.load(cache, mmap=True, weights_only=True)  # pages shared with --jobs workers
                return Split(saved["x"], saved["y"]), files[0][0]
            except Exception:  # a damaged cache is rebuilt, never trusted
                pass
    split = _decode(files, lambda done: loading(f"decoding {folder} (once, then cached)", done, len(files)))
    _save_cache(lambda path: torch.save({"x": split.x, "y": split.y}, path), _cache_paths(folder, fingerprint))
    return split, files[0][0]


def _decode(files: list[tuple[str, int]], decoded: Callable[[int], None]) -> Split:
    """Greyscale files (PIL modes L, 1, I;16) decode as one channel, all others as RGB; one colour file makes the
    whole split RGB, its greyscale files each grey value in R, G and B (as PIL's convert("RGB") does)."""
    from PIL import Image

    arrays = []
    for i, (f, _) in enumerate(files):
        if i % 1000 == 0:
            decoded(i)
        try:
            with Image.open(f) as img:
                arrays.append(np.asarray(img.convert("L" if img.mode in GREY_MODES else "RGB")))
        except OSError as e:
            raise BnbenchError(f"dataset.root: cannot read image '{f}' ({e})") from None
        if arrays[-1].shape[:2] != arrays[0].shape[:2]:
            raise BnbenchError(
                f"dataset.root: '{f}' is {arrays[-1].shape[1]}x{arrays[-1].shape[0]}, but "
                f"'{files[0][0]}' is {arrays[0].shape[1]}x{arrays[0].shape[0]}; all images must "
                f"share one size"
            )
    decoded(len(files))
    if any(a.ndim == 3 for a in arrays):
        arrays = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return Split(x.contiguous(), torch.tensor([label for _, label in files], dtype=torch.long))


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bnbench"


def _cache_paths(folder: Path, fingerprint: str) -> list[Path]:
    name = f"{folder.name}-{fingerprint}.pt"
    return [folder.parent / ".bnbench-cache" / name, _cache_home() / name]


def _save_cache(save: Callable[[Path], object], paths: list[Path]) -> None:
    """Write the first cache location that is writable (atomically: `save` writes a temporary file); caching is an
    optimisation, so failures are ignored."""
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save(tmp)
            os.replace(tmp, path)
            return
        except OSError:
            continue
