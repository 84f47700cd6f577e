"""Augmentation of the training split (GitHub issue 32): the CIFAR recipe's padded random crop and horizontal flip,
one gather per batch, drawn per epoch from the trial's seed, the same for every variant of a seed."""

import pytest
import torch
import torch.nn.functional as F
from support.images import write_folder

from bnbench.engines.eager import Trainer
from bnbench.errors import BnbenchError
from bnbench.experiment import augment
from bnbench.experiment.config import Config, DatasetConfig
from bnbench.experiment.data import batch_order, load_dataset
from bnbench.experiment.seeding import generator
from bnbench.experiment.trials import expand

PAD = augment.PAD


def reference(x: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """torchvision's RandomCrop(padding=PAD) then RandomHorizontalFlip, one example at a time."""
    h, w = x.shape[2:]
    out = []
    for image, (dy, dx, flip) in zip(x, drawn.tolist()):
        crop = F.pad(image, (PAD,) * 4)[:, dy : dy + h, dx : dx + w]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 5, 12)])
def test_one_gather_crops_and_flips_as_torchvision_does(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, *shape), dtype=torch.uint8, generator=g)
    drawn = torch.cat(
        [torch.randint(0, 2 * PAD + 1, (64, 2), generator=g), torch.randint(0, 2, (64, 1), generator=g)], 1
    )
    out = augment.apply(x, drawn)
    assert out.dtype == torch.uint8 and torch.equal(out, reference(x, drawn))
    still = torch.tensor([[PAD, PAD, 0]]).expand(64, 3)
    assert torch.equal(augment.apply(x, still), x)  # no shift, no flip: the images themselves


def test_draws_are_the_seed_and_epochs_own_and_kept_by_example():
    order = batch_order(100, 7, 3, True)
    both = augment.draws(["crop", "flip"], order, 7, 3)
    assert torch.equal(both, augment.draws(["crop", "flip"], order, 7, 3))
    assert not torch.equal(both, augment.draws(["crop", "flip"], order, 7, 4))
    assert not torch.equal(both, augment.draws(["crop", "flip"], order, 8, 3))
    # drawn in batch order: position p's draw belongs to example order[p]
    rng = generator(7, "augment", 3)
    shifts, flips = torch.randint(0, 2 * PAD + 1, (100, 2), generator=rng), torch.randint(0, 2, (100, 1), generator=rng)
    assert torch.equal(both[order], torch.cat([shifts, flips], 1))
    assert both[:, :2].min() >= 0 and both[:, :2].max() == 2 * PAD and set(both[:, 2].tolist()) == {0, 1}
    flip = augment.draws(["flip"], order, 7, 3)
    assert torch.equal(flip[:, 2], both[:, 2]) and (flip[:, :2] == PAD).all()  # [flip] flips what [crop, flip] does
    crop = augment.draws(["crop"], order, 7, 3)
    assert torch.equal(crop[:, :2], both[:, :2]) and (crop[:, 2] == 0).all()
    assert augment.draws([], order, 7, 3) is None


def test_every_variant_of_a_seed_sees_the_same_augmented_batches():
    config = Config(
        name="aug",
        seeds=[0, 1],
        dataset={"name": "digits", "augment": ["crop", "flip"]},
        device="cpu",
        training={"batch_size": 16},
    )
    data = load_dataset(config.dataset)
    trainers = [Trainer(t, data, torch.device("cpu")) for t in expand(config)]  # (bn, plain) per seed
    for trainer in trainers:
        trainer.begin(2)
    batches = [t._images(t.epoch_order[:16]) for t in trainers]
    assert [t.variant.norm for t in (tr.trial for tr in trainers)] == ["batchnorm", "none"] * 2
    assert torch.equal(batches[0], batches[1]) and torch.equal(batches[2], batches[3])  # BN and plain of one seed
    assert not torch.equal(batches[0], data.train.x[trainers[0].epoch_order[:16]])  # augmented
    assert not torch.equal(batches[0][:4], batches[2][:4])  # another seed, other batches


def test_crop_is_refused_on_images_too_small_for_it_and_flip_is_not(tmp_path):
    write_folder(tmp_path / "imgs", size=(6, 5))
    with pytest.raises(BnbenchError) as e:
        load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs"), augment=["crop"]))
    assert str(e.value) == (
        "dataset.augment: crop shifts images by up to 4 pixels, which on 6x5 images can leave none of the image in "
        "view; use it on images of 8 pixels a side or more, or drop crop"
    )
    assert load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs"), augment=["flip"])).val is None
    assert load_dataset(DatasetConfig(name="digits", augment=["crop", "flip"])).input_shape == (1, 8, 8)
