"""The parts of a data set a run uses (GitHub issue 32): dataset.limit, dataset.test_limit and the validation
split, drawn stratified from streams of the data set alone, recorded for meta.json, and refused in one line where
they cannot be drawn."""

import pytest
import torch

from bnbench.errors import BnbenchError
from bnbench.experiment import subsets
from bnbench.experiment.config import Config, DatasetConfig, dump
from bnbench.experiment.data import Dataset, load_dataset
from bnbench.experiment.loading import validate


@pytest.fixture(scope="module")
def whole():
    return load_dataset(DatasetConfig(name="digits"))


def digits(**fields) -> Dataset:
    return load_dataset(DatasetConfig(name="digits", **fields))


def test_shares_round_fairly_and_sum_exactly():
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    assert subsets.shares(labels, 5, 3) == [3, 1, 1]  # 2.5, 1.5, 1.0: the tie of remainders to the lower class
    assert subsets.shares(labels, 7, 3) == [4, 2, 1]  # 3.5, 2.1, 1.4
    for count in range(1, 10):
        assert sum(subsets.shares(labels, count, 3)) == count


def test_the_validation_split_is_stratified_disjoint_and_fixed(whole):
    data = digits(validation=0.1)
    n = len(whole.train.y)
    assert len(data.val.y) == round(0.1 * n) == 144 and len(data.train.y) == n - 144
    counts = torch.bincount(data.val.y, minlength=10).tolist()
    assert counts == subsets.shares(whole.train.y, 144, 10) and max(counts) - min(counts) <= 1
    # the same examples in every load (every seed, variant, sweep point and process loads it alike)
    again = digits(validation=0.1)
    assert torch.equal(again.val.x, data.val.x) and torch.equal(again.train.x, data.train.x)
    # disjoint, together the training split, each part in its original order
    drawn = subsets.draw(whole.train.y, 144, 10, "validation")
    rest = subsets.rest(n, drawn)
    assert set(drawn.picked.tolist()).isdisjoint(rest.tolist()) and len(drawn.picked) + len(rest) == n
    assert torch.equal(drawn.picked, drawn.picked.sort().values) and torch.equal(rest, rest.sort().values)
    assert torch.equal(whole.train.x[drawn.picked], data.val.x) and torch.equal(whole.train.x[rest], data.train.x)
    assert torch.equal(whole.train.y[rest], data.train.y)
    assert torch.equal(data.test.x, whole.test.x)  # the test split is untouched


def test_a_count_holds_out_that_many(whole):
    data = digits(validation=200)
    assert len(data.val.y) == 200 and len(data.train.y) == len(whole.train.y) - 200


def test_an_integer_is_a_count_a_float_a_fraction_as_yaml_spells_them():
    assert [DatasetConfig(validation=v).validation for v in (1, 0.5, "1e-1", "30")] == [1, 0.5, 0.1, 30]
    assert isinstance(DatasetConfig(validation="30").validation, int)


def test_normalisation_uses_the_remaining_training_examples():
    data = digits(validation=0.25, normalize=True)
    x = data.train.x.float().div(255)
    torch.testing.assert_close(data.mean, x.mean(dim=(0, 2, 3)), rtol=0, atol=0)
    assert not torch.equal(data.mean, digits(normalize=True).mean)


def test_limit_then_validation_then_test_limit_and_their_record(whole):
    data = digits(limit=500, validation=50, test_limit=100)
    assert (len(data.train.y), len(data.val.y), len(data.test.y)) == (450, 50, 100)
    assert torch.bincount(data.test.y, minlength=10).tolist() == [10] * 10
    kept = whole.train.x[subsets.draw(whole.train.y, 500, 10, "limit").picked]  # the limit first, then the split
    assert torch.equal(torch.cat([data.train.x, data.val.x]).sort(0).values, kept.sort(0).values)
    record = data.drawn
    assert list(record) == ["limit", "validation", "test_limit"]
    assert record["validation"]["count"] == 50 and sum(record["validation"]["per_class"]) == 50
    assert len(record["validation"]["sha256"]) == 32
    assert digits(limit=500, validation=50, test_limit=100).drawn == record  # the same draw every time
    assert digits(validation=50).drawn["validation"]["sha256"] != record["validation"]["sha256"]


def test_the_split_travels_with_the_data_set_to_workers(whole, tmp_path):
    data = digits(validation=0.1, normalize=True)
    loaded = Dataset.load(data.save(tmp_path / "data.pt"))
    assert torch.equal(loaded.val.x, data.val.x) and torch.equal(loaded.val.y, data.val.y)
    assert loaded.drawn == data.drawn and torch.equal(loaded.mean, data.mean)
    moved = data.to(torch.device("cpu"))
    assert torch.equal(moved.val.x, data.val.x) and moved.drawn == data.drawn
    plain = Dataset.load(whole.save(tmp_path / "whole.pt"))
    assert plain.val is None and plain.drawn == {}


def test_configs_without_the_new_fields_dump_as_before():
    config = Config(name="x", dataset={"name": "digits", "normalize": True})
    assert "dataset:\n  name: digits\n  root: ./data\n  download: true\n  normalize: true\nmodel:" in dump(config)
    used = Config(name="x", dataset={"name": "digits", "validation": 0.1, "augment": ["flip", "crop"]})
    assert "  validation: 0.1\n  augment:\n  - crop\n  - flip\n" in dump(used)
    assert "limit" not in dump(used)


@pytest.mark.parametrize(
    "fields, said",
    [
        ({"validation": 0}, "cfg: dataset.validation: 0 holds out no example; use a count >= 1"),
        ({"validation": -3}, "-3 holds out no example"),
        ({"validation": 1.0}, "1.0 is no fraction in (0, 1)"),
        ({"validation": 0.0}, "0.0 is no fraction in (0, 1)"),
        ({"validation": -0.1}, "-0.1 is no fraction in (0, 1)"),
        ({"validation": float("nan")}, "nan is no fraction in (0, 1)"),
        ({"validation": True}, "True is not a number"),
        ({"validation": "ten"}, "'ten' is not a number"),
        ({"limit": 0}, "dataset.limit: Input should be greater than 0 (got 0)"),
        ({"test_limit": -1}, "dataset.test_limit: Input should be greater than 0"),
        ({"augment": ["crop", "crop"]}, "names a kind twice"),
        ({"augment": ["rotate"]}, "dataset.augment.0: Input should be 'crop' or 'flip' (got 'rotate')"),
    ],
)
def test_bad_values_are_refused_by_the_config_in_one_line(fields, said):
    with pytest.raises(BnbenchError) as e:
        validate({"name": "x", "dataset": {"name": "digits", **fields}}, "cfg")
    assert said in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "fields, said",
    [
        ({"validation": 1437}, "dataset.validation: 1437 holds out all 1437 training examples, leaving none; use a"),
        ({"validation": 5000}, "dataset.validation: 5000 holds out all 1437"),
        ({"validation": 0.0001}, "dataset.validation: 0.0001 of 1437 training examples holds out none"),
        ({"validation": 1430}, "holds out every training example of class"),
        ({"limit": 20, "validation": 0.9}, "holds out every training example of class"),
        ({"limit": 1437}, "dataset.limit: 1437 keeps every one of the 1437 training examples; use fewer"),
        ({"limit": 5}, "dataset.limit: 5 keeps no training example of class"),
        ({"test_limit": 360}, "dataset.test_limit: 360 keeps every one of the 360 test examples"),
        ({"test_limit": 9}, "dataset.test_limit: 9 keeps no test example of class"),
    ],
)
def test_subsets_that_cannot_be_drawn_are_one_line(fields, said):
    with pytest.raises(BnbenchError) as e:
        digits(**fields)
    assert said in str(e.value) and "\n" not in str(e.value)
