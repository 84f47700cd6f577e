"""Data loading: digits, image folders (decoded once, cached), ToTensor scaling, batch order."""

import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image
from support.images import write_folder

from bnbench.errors import BnbenchError
from bnbench.experiment.config import DatasetConfig
from bnbench.experiment.data import batch_order, load_dataset


def test_imagefolder_decodes_labels_by_sorted_class_name(tmp_path):
    pixels = write_folder(tmp_path / "imgs")
    data = load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")))
    assert data.classes == ["airplane", "cat", "dog"]
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape == (9, 3, 5, 6)
    assert data.train.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert torch.equal(data.train.x[3], torch.from_numpy(pixels[("train", "cat", 0)]).permute(2, 0, 1))
    assert data.input_shape == (3, 5, 6) and data.num_classes == 3


def test_hidden_folders_are_skipped_in_both_splits(tmp_path):
    """A notebook's .ipynb_checkpoints in test/ was an error, while the same folder in train/ was skipped."""
    write_folder(tmp_path / "imgs")
    for split in ("train", "test"):
        (tmp_path / "imgs" / split / ".ipynb_checkpoints").mkdir()
    data = load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")))
    assert data.classes == ["airplane", "cat", "dog"] and len(data.test.y) == 9


def test_inputs_match_torchvision_to_tensor(tmp_path):
    from torchvision.transforms import ToTensor

    write_folder(tmp_path / "imgs")
    data = load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")))
    expected = ToTensor()(Image.open(tmp_path / "imgs" / "train" / "dog" / "1.png"))
    assert torch.equal(data.inputs(data.train.x[7:8])[0], expected)


def test_grayscale_folder_has_one_channel(tmp_path):
    write_folder(tmp_path / "g", mode="L")
    assert load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "g"))).input_shape == (1, 5, 6)


def test_decoded_folder_is_cached_and_invalidated_on_change(tmp_path):
    root = tmp_path / "imgs"
    write_folder(root)
    load_dataset(DatasetConfig(name="imagefolder", root=str(root)))
    caches = sorted((root / ".bnbench-cache").iterdir())
    assert len(caches) == 2  # train and test
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(root / "train" / "dog" / "0.png")
    os.utime(root / "train" / "dog" / "0.png", ns=(1, 1))
    data = load_dataset(DatasetConfig(name="imagefolder", root=str(root)))
    assert int(data.train.x[6].sum()) == 0  # the changed image, not the cached one
    assert len(list((root / ".bnbench-cache").iterdir())) == 3


def test_a_damaged_folder_cache_is_rebuilt_not_trusted(tmp_path):
    root = tmp_path / "imgs"
    write_folder(root)
    fresh = load_dataset(DatasetConfig(name="imagefolder", root=str(root)))
    for cache in (root / ".bnbench-cache").iterdir():
        cache.write_bytes(b"not a tensor file")
    rebuilt = load_dataset(DatasetConfig(name="imagefolder", root=str(root)))
    assert torch.equal(rebuilt.train.x, fresh.train.x) and torch.equal(rebuilt.test.y, fresh.test.y)
    assert all(cache.stat().st_size > 100 for cache in (root / ".bnbench-cache").iterdir())


def test_mixed_sizes_and_missing_root_are_user_errors(tmp_path):
    root = tmp_path / "imgs"
    write_folder(root)
    Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(root / "train" / "cat" / "9.png")
    with pytest.raises(BnbenchError, match="all images must share one size"):
        load_dataset(DatasetConfig(name="imagefolder", root=str(root)))
    with pytest.raises(BnbenchError, match=r"dataset.root: '.*nowhere/train' does not exist"):
        load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "nowhere")))


def test_absent_torchvision_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(BnbenchError, match=r"dataset.root: cifar10 not found under .*download is false"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path), download=False))


def test_digits_split_is_fixed_and_scaled_to_uint8():
    a, b = load_dataset(DatasetConfig(name="digits")), load_dataset(DatasetConfig(name="digits"))
    assert a.train.x.shape == (1437, 1, 8, 8) and a.test.x.shape == (360, 1, 8, 8)
    assert torch.equal(a.train.x, b.train.x) and int(a.train.x.max()) == 255


def test_shipped_digits_are_the_values_every_digits_result_was_made_with():
    """The digest of the tensors that scikit-learn's load_digits and stratified split gave before digits.npz was
    shipped: a digits number can only change if this does."""
    data = load_dataset(DatasetConfig(name="digits"))
    digest = hashlib.sha256()
    for tensor in (data.train.x, data.train.y, data.test.x, data.test.y):
        digest.update(tensor.numpy().tobytes())
    assert digest.hexdigest() == "3616d13d9b8a0a7a70107bddfd1b1572ec4785e7884f0571b848e039b01e1a3f"
    assert data.train.y.dtype == torch.int64 and data.classes == [str(c) for c in range(10)]


def test_shipped_digits_equal_scikit_learns_digits_and_split():
    """digits.npz against its source (scikit-learn is in the test extra for this check only; bnbench itself loads
    the file without it)."""
    datasets = pytest.importorskip("sklearn.datasets")
    selection = pytest.importorskip("sklearn.model_selection")
    bunch = datasets.load_digits()
    x = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    x_tr, x_te, y_tr, y_te = selection.train_test_split(
        x, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    data = load_dataset(DatasetConfig(name="digits"))
    for split, x, y in [(data.train, x_tr, y_tr), (data.test, x_te, y_te)]:
        assert split.x.dtype == torch.uint8 and torch.equal(split.x, torch.from_numpy(x))
        assert torch.equal(split.y, torch.from_numpy(y).long())
    assert data.classes == [str(c) for c in bunch.target_names]


def test_normalize_standardises_with_train_statistics():
    data = load_dataset(DatasetConfig(name="digits", normalize=True))
    x = data.inputs(data.train.x)
    assert abs(x.mean().item()) < 1e-5 and abs(x.std().item() - 1) < 1e-3


def test_batch_order_depends_only_on_seed_and_epoch():
    assert torch.equal(batch_order(100, 7, 1, True), batch_order(100, 7, 1, True))
    assert not torch.equal(batch_order(100, 7, 1, True), batch_order(100, 7, 2, True))
    assert not torch.equal(batch_order(100, 7, 1, True), batch_order(100, 8, 1, True))
    assert torch.equal(batch_order(5, 7, 1, False), torch.arange(5))
