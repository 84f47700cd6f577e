"""Bounded, checked input ("Reliability, round 2", items 2, 3, 12, 13, 15 and the rough edges): every case is
refused at config time (or, for the model and the image folder, before training) with one line naming the field and
the fix, exit status 2, no traceback, and nothing written."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.experiment.config import Config, DatasetConfig
from bnbench.experiment.data import load_dataset
from bnbench.experiment.loading import load_config

runner = CliRunner()
GOOD = tiny_config("bounds", [0], optimizer=None, training={"epochs": 1, "batch_size": 32, "log_every": 0})
GOOD_TEXT = yaml.safe_dump(GOOD, sort_keys=False)
NEXT = GOOD_TEXT.count("\n") + 1  # the line of text appended to GOOD_TEXT
DEVICE = GOOD_TEXT.splitlines().index("device: cpu") + 1


def good(**changes):
    """GOOD with top-level fields replaced (a dict, written as YAML by the test)."""
    return json.loads(json.dumps(GOOD)) | changes


def laughs(levels: int) -> str:
    """A 'billion laughs' document: each level lists the previous one 10 times (10^levels nodes expanded)."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, levels)]
    return GOOD_TEXT + "\n".join(lines) + "\n"


def run(tmp_path, content, *args):
    path = tmp_path / "exp.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "results"), "-q", *args])


def assert_one_clear_line(result, tmp_path, *expected):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for text in expected:
        assert text in lines[0], lines[0]
    assert not (tmp_path / "results" / "bounds").exists()


# (id, config: dict, YAML text or bytes, texts the one line must hold)
CASES = [
    # 2: duplicate sweep values, and names that would share one checkpoint file
    (
        "sweep-same-float",
        GOOD_TEXT + "sweep: {optimizer.lr: [0.001, 1.0e-3]}\n",
        [
            "exp.yaml: sweep: optimizer.lr: values 1 and 2",
            "make the same trial (optimizer.lr=0.001)",
            "list each value once",
        ],
    ),
    (
        "sweep-same-after-typing",
        good(sweep={"optimizer.lr": ["1e-3", 0.01, 0.001]}),
        ["sweep: optimizer.lr: values 1 and 3 ('1e-3' and 0.001)", "list each value once"],
    ),
    (
        "sweep-same-list",
        good(sweep={"model.hidden": [[8, 4], [16], [8, 4]]}),
        ["sweep: model.hidden: values 1 and 3", "list each value once"],
    ),
    (
        "variants-differ-in-case",
        good(variants=[{"name": "BN"}, {"name": "bn", "norm": "none"}]),
        ["variants: variant names must differ in more than case", "['BN', 'bn']"],
    ),
    # 3: what the runner sets up once per run cannot be swept
    (
        "sweep-dataset-field",
        good(sweep={"dataset.normalize": [False, True]}),
        [
            "sweep: 'dataset.normalize' cannot be swept: the data set is loaded once per run",
            "one run per value instead, e.g. --set dataset.normalize=false",
        ],
    ),
    (
        "sweep-dataset-root",
        good(sweep={"dataset.root": ["a b", "ab"]}),
        ["'dataset.root' cannot be swept", "e.g. --set 'dataset.root=a b'"],
    ),
    ("sweep-dataset-section", good(sweep={"dataset": [{"name": "digits"}]}), ["'dataset' cannot be swept"]),
    ("sweep-nul-in-root", good(sweep={"dataset.root": ["a\0b"]}), ["'dataset.root' cannot be swept"]),
    (
        "sweep-engine",
        good(sweep={"training.engine": ["eager", "stacked"]}),
        [
            "'training.engine' cannot be swept: one engine trains all trials of a run",
            "e.g. --set training.engine=eager",
        ],
    ),
    (
        "sweep-training-section",
        good(sweep={"training": [{"epochs": 1}, {"epochs": 2}]}),
        ["'training' cannot be swept as a whole: it holds training.engine", "sweep the other fields one by one"],
    ),
    (
        "sweep-device",
        good(sweep={"device": ["cpu"]}),
        ["'device' cannot be swept: all trials of a run share one device", "e.g. --device cpu"],
    ),
    # 12: bounded input
    ("file-too-large", GOOD_TEXT + "#" * (300 * 1024) + "\n", ["exp.yaml: larger than 256 KiB"]),
    (
        "billion-laughs",
        laughs(5),
        [
            f"exp.yaml: line {NEXT + 3}, column 63: YAML aliases repeat more than 10,000 nodes in all",
            "write the values out",
        ],
    ),
    (
        "recursive-alias",
        GOOD_TEXT + "sweep: &s {model.hidden: [*s]}\n",
        [f"exp.yaml: line {NEXT}, column 27: YAML alias inside the node it refers to"],
    ),
    (
        "nested-too-deep",
        GOOD_TEXT + "sweep: " + "[" * 1000 + "]" * 1000 + "\n",
        [f"exp.yaml: line {NEXT}, column 27: YAML nested deeper than 20 levels"],
    ),
    (
        "aliases-nest-too-deep",
        GOOD_TEXT + "a: &a " + "[" * 15 + "]" * 15 + "\nb: " + "[" * 5 + "*a" + "]" * 5 + "\n",
        [f"exp.yaml: line {NEXT + 1}, column 9: YAML aliases nest deeper than 20 levels"],
    ),
    (
        "too-many-trials",
        good(
            seeds=list(range(1000)),
            sweep={"optimizer.lr": [(i + 1) * 1e-6 for i in range(1500)]},
            dataset={"name": "imagefolder", "root": "/nonexistent"},
        ),
        [
            "exp.yaml: variants x seeds x sweep points = 2 x 1,000 x 1,500 = 3,000,000 trials, more than the 10,000",
            "split the sweep into several runs",
        ],
    ),
    # 13: unreadable files, huge models, names that cannot be file names
    (
        "latin-1-file",
        (GOOD_TEXT + "# café au lait\n").encode("latin-1"),
        [f"exp.yaml: line {NEXT}: byte 0xe9 is not UTF-8 text", "save the config as UTF-8"],
    ),
    ("binary-file", bytes(range(128, 256)) * 8, ["exp.yaml: line 1: byte 0x80 is not UTF-8 text"]),
    (
        "huge-mlp",
        good(model={"hidden": [1, 10**12]}),
        [
            "model: hidden [1, 1000000000000] on 1x8x8 inputs makes 14,000,000,000,077 parameters",
            "more than the 500,000,000 bnbench builds; use narrower model.hidden",
        ],
    ),
    (
        "huge-cnn",
        good(model={"kind": "cnn", "channels": [100000, 100000], "hidden": [8]}),
        ["parameters, more than the 500,000,000", "use narrower model.hidden or model.channels"],
    ),
    (
        "long-variant-name",
        good(variants=[{"name": "v" * 260}]),
        ["variants.0.name: is 260 characters long; use at most 100"],
    ),
    ("long-experiment-name", good(name="e" * 260), ["name: is 260 characters long; use at most 100"]),
    (
        "long-sweep-value",
        good(sweep={"model.hidden": [[1] * 120]}),
        ["sweep: 'model.hidden=[1, 1, 1, 1, 1...", "makes the checkpoint file name of trial", "more than 200"],
    ),
    ("long-seed", good(seeds=[10**220]), ["seeds.0: Input should be less than 9223372036854775808"]),
    (
        "nul-in-variant-name",
        good(variants=[{"name": "a\0b"}]),
        [
            (
                "variants.0.name: String should match the name rule: only ASCII letters, digits, '_', '.' and '-', "
                "starting with a letter or digit (got 'a\\x00b')"
            )
        ],
    ),
    # rough edges
    ("unicode-variant-name", good(variants=[{"name": "café"}]), ["variants.0.name:", "only ASCII letters, digits"]),
    ("unicode-experiment-name", good(name="réseau"), ["exp.yaml: name:", "only ASCII letters, digits"]),
    ("control-char-in-sweep-path", good(sweep={"optimizer.lr\x1b": [0.1]}), ["unknown key 'lr\\x1b'"]),
    ("infinite-lr", GOOD_TEXT + "optimizer: {lr: .inf}\n", ["optimizer.lr: Input should be a finite number (got inf)"]),
    (
        "infinite-weight-decay",
        GOOD_TEXT + "optimizer: {weight_decay: .inf}\n",
        ["optimizer.weight_decay: Input should be a finite number"],
    ),
    (
        "duplicate-key",
        GOOD_TEXT + "device: cpu\n",
        [f"exp.yaml: malformed YAML: line {NEXT}, column 1: duplicate key 'device' (first on line {DEVICE}); keep one"],
    ),
    (
        "duplicate-nested-key",
        GOOD_TEXT + "optimizer: {lr: 0.1, name: sgd, lr: 0.2}\n",
        [f"line {NEXT}, column 33: duplicate key 'lr' (first on line {NEXT})"],
    ),
    (
        "bn-without-hidden-layer",
        good(model={"hidden": []}),
        [
            (
                "model.hidden: [] leaves the mlp no hidden layer to normalise, so variant 'batchnorm' would be the "
                "plain network; add a width"
            )
        ],
    ),
    ("sweep-bn-without-hidden-layer", good(sweep={"model.hidden": [[8], []]}), ["model.hidden: [] leaves the mlp"]),
    # issue 19: GroupNorm that normalises each value alone, fields a model kind does not use
    (
        "groupnorm-default-groups-on-the-mlp",
        good(variants=[{"name": "gn", "norm": "groupnorm"}]),
        [
            "exp.yaml: variant 'gn': groups 32 (the default) on the 32-wide hidden layer of model.hidden [64, 32] puts "
            "each feature in a group of its own, which GroupNorm normalises to 0; set groups below 32 (e.g. groups: 4)"
        ],
    ),
    (
        "groupnorm-more-groups-than-features",
        good(variants=[{"name": "gn", "norm": "groupnorm", "groups": 1000}]),
        ["variant 'gn': groups 1000 on the 32-wide hidden layer"],
    ),
    (
        "groupnorm-on-a-swept-narrow-head",
        good(
            model={"kind": "cnn", "channels": [8], "hidden": [16]},
            variants=[{"name": "gn", "norm": "groupnorm", "groups": 8}],
            sweep={"model.hidden": [[16], [8]]},
        ),
        ["variant 'gn': groups 8 on the 8-wide hidden layer of model.hidden [8]", "(e.g. groups: 1)"],
    ),
    (
        "groupnorm-groups-true",
        good(variants=[{"name": "gn", "norm": "groupnorm", "groups": True}]),
        ["variants.0.groups: Input should be a valid integer (got True)"],
    ),
    (
        "groupnorm-one-value-a-group-in-resnet",
        good(
            model={"kind": "torchvision", "name": "resnet18", "width": 4},
            variants=[{"name": "gn", "norm": "groupnorm"}],
        ),
        [
            "error: model: layer 'layer4.0.bn1', GroupNorm(32, 32), gets one value per group from features of shape "
            "(32, 1, 1) (variant 'gn'), and normalises each to 0; use fewer groups (e.g. groups: 4) or layernorm"
        ],
    ),
    (
        "hidden-of-a-torchvision-model",
        good(model={"kind": "torchvision", "name": "resnet18", "hidden": [128]}),
        ["exp.yaml: model: model.hidden is for model.kind: mlp or cnn, not torchvision; remove it"],
    ),
    (
        "channels-of-a-factory",
        good(model={"kind": "factory", "factory": "nets:make", "channels": [8]}),
        ["model.channels is for model.kind: mlp or cnn, not factory"],
    ),
    (
        "width-of-a-cnn",
        good(model={"kind": "cnn", "width": 16}),
        ["model.width is for model.kind: torchvision, not cnn"],
    ),
    (
        "stem-of-a-vgg",
        good(model={"kind": "torchvision", "name": "vgg11", "stem": "imagenet"}),
        ["model.stem is for the resnets; vgg11 has no stem to replace"],
    ),
]


@pytest.mark.parametrize("case, content, expected", CASES, ids=[c[0] for c in CASES])
def test_refused_in_one_line(tmp_path, case, content, expected):
    assert_one_clear_line(run(tmp_path, content), tmp_path, *expected)


def test_trials_are_counted_before_any_sweep_point_is_built(tmp_path, monkeypatch):
    def listed(self):
        raise AssertionError("sweep points listed before the trials were counted")

    monkeypatch.setattr(Config, "sweep_points", listed)
    config = good(sweep={"optimizer.lr": [(i + 1) * 1e-6 for i in range(3000)], "training.epochs": [1, 2]})
    assert_one_clear_line(run(tmp_path, config), tmp_path, "= 12,000 trials, more than the 10,000")


def test_merge_keys_may_override_but_duplicates_are_refused(tmp_path):
    """`<<: *base` followed by a key of the merged mapping is YAML's way to override, not a duplicate key."""
    shared = "variants: [&bn {name: bn, norm: batchnorm, placement: after_activation}, {<<: *bn, name: bn2%s}]\n"
    (tmp_path / "merge.yaml").write_text(GOOD_TEXT + shared % ", placement: before_activation")
    config, _ = load_config(str(tmp_path / "merge.yaml"))
    assert [(v.name, v.placement) for v in config.variants] == [
        ("bn", "after_activation"),
        ("bn2", "before_activation"),
    ]
    assert_one_clear_line(
        run(tmp_path, GOOD_TEXT + shared % ", name: bn3"),
        tmp_path,
        f"line {NEXT}, column 95: duplicate key 'name' (first on line {NEXT})",
    )


# ---- 15: image folders --------------------------------------------------------------------------------------------


def write_images(root, modes, size=(8, 8), suffix=".png"):
    """root/<class>/<i><suffix>, one file per mode; returns {path: pixels as written}."""
    rng = np.random.default_rng(0)
    written = {}
    for i, mode in enumerate(modes):
        folder = root / ("a" if i % 2 == 0 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(pixels, mode).save(folder / f"{i}{suffix}")
        written[folder / f"{i}{suffix}"] = pixels
    return written


def test_one_colour_image_makes_the_split_rgb(tmp_path):
    """The first file is greyscale; the split used to be decoded as one channel, colour files included."""
    train = write_images(tmp_path / "imgs" / "train", ["L", "L", "RGB", "L"])
    write_images(tmp_path / "imgs" / "test", ["L", "L"])
    data = load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")))
    assert data.input_shape == (3, 8, 8) and data.test.x.shape == (2, 3, 8, 8)
    folder = tmp_path / "imgs" / "train" / "a"
    grey, colour = train[folder / "0.png"], train[folder / "2.png"]
    assert np.array_equal(data.train.x[0].permute(1, 2, 0).numpy(), np.repeat(grey[:, :, None], 3, axis=2))
    assert np.array_equal(data.train.x[1].permute(1, 2, 0).numpy(), colour)  # class a: files 0 and 2, sorted


def test_colour_test_images_make_a_greyscale_train_split_rgb(tmp_path):
    write_images(tmp_path / "imgs" / "train", ["L", "L"], suffix=".jpg")
    write_images(tmp_path / "imgs" / "test", ["RGB", "L"], suffix=".jpg")
    data = load_dataset(DatasetConfig(name="imagefolder", root=str(tmp_path / "imgs")))
    assert data.train.x.shape == (2, 3, 8, 8) and data.test.x.shape == (2, 3, 8, 8)
    assert all(bool((image == image[:1]).all()) for image in data.train.x)  # grey: R = G = B


def test_test_images_of_another_size_fail_before_training(tmp_path):
    write_images(tmp_path / "imgs" / "train", ["RGB", "RGB"])
    write_images(tmp_path / "imgs" / "test", ["RGB", "RGB"], size=(7, 6))
    config = good(dataset={"name": "imagefolder", "root": str(tmp_path / "imgs")})
    assert_one_clear_line(
        run(tmp_path, config),
        tmp_path,
        f"dataset.root: test image '{tmp_path / 'imgs' / 'test' / 'a' / '0.png'}' is 7x6, but train "
        f"image '{tmp_path / 'imgs' / 'train' / 'a' / '0.png'}' is 8x8; train and test images must "
        f"share one size",
    )


@pytest.mark.parametrize(
    "override, field",
    [
        ("training.epochs=9223372036854775808", "training.epochs"),
        ("training.batch_size=9223372036854775808", "training.batch_size"),
        ("training.eval_every=1e30", "training.eval_every"),
        ("seeds=[9223372036854775808]", "seeds.0"),
    ],
)
def test_counts_that_would_overflow_are_refused(tmp_path, override, field):
    """A 2**63 epoch count ran on and printed itself as -9223372036854775808 where a 64-bit integer wrapped."""
    result = CliRunner().invoke(app, ["run", "quick", "--out", str(tmp_path), "-q", "--set", override])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert field in result.output and not (tmp_path / "quick-digits").exists()
