"""The bad-input matrix: each mistake gives one clear line naming the file/field, exit 2, no traceback, and leaves
what was already written untouched. Plus a property test: random YAML never crashes the config loader."""

import hashlib
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.cli import app
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.loading import load_config

runner = CliRunner()
GOOD = tiny_config("good", [0], optimizer=None, training={"epochs": 1, "batch_size": 32, "log_every": 0})


def config_with(**changes):
    raw = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        node, *parts = path.split("__")
        target = raw
        for part in [node, *parts][:-1]:
            target = target.setdefault(part, {})
        target[[node, *parts][-1]] = value
    return raw


# (id, config file content (dict, str, or None for none), extra CLI args, expected text in the message)
RUN_CASES = [
    ("missing-file", None, [], "no such config file or shipped config"),
    ("malformed-yaml", "name: good\ntraining: {epochs: 1", [], "malformed YAML: line 2, column 21"),
    ("tabs-yaml", "name: good\n\tseeds: [1]\n", [], "malformed YAML"),
    ("top-level-list", "[1, 2]", [], "expected a mapping of config fields"),
    ("empty-file", "", [], "expected a mapping of config fields at the top level, got NoneType"),
    ("unknown-top-key", config_with(epochs=3), [], "unknown key 'epochs'"),
    ("unknown-nested-key", config_with(training__epoch=3), [], "did you mean 'epochs'?"),
    ("wrong-type-epochs", config_with(training__epochs="five"), [], "training.epochs: Input should be a valid integer"),
    ("zero-epochs", config_with(training__epochs=0), [], "training.epochs: Input should be greater than 0"),
    ("negative-lr", config_with(optimizer__lr=-0.1), [], "optimizer.lr: Input should be greater than 0"),
    ("zero-batch", config_with(training__batch_size=0), [], "training.batch_size: Input should be greater than 0"),
    ("empty-variants", config_with(variants=[]), [], "variants: List should have at least 1 item"),
    ("duplicate-variants", config_with(variants=[{"name": "a"}, {"name": "a"}]), [], "variant names must be unique"),
    ("unknown-dataset", config_with(dataset__name="imagenet"), [], "dataset.name: Input should be"),
    (
        "unknown-model",
        config_with(model__kind="vit"),
        [],
        "model.kind: Input should be 'mlp', 'cnn', 'torchvision', 'timm' or 'factory'",
    ),
    ("unknown-optimizer", config_with(optimizer__name="lion"), [], "optimizer.name: Input should be"),
    ("unknown-norm", config_with(variants=[{"name": "a", "norm": "weightnorm"}]), [], "variants.0.norm"),
    ("bad-placement", config_with(variants=[{"name": "a", "placement": "middle"}]), [], "variants.0.placement"),
    ("bad-variant-name", config_with(variants=[{"name": "a/b"}]), [], "variants.0.name: String should match"),
    ("baseline-not-variant", config_with(baseline="nobn"), [], "baseline 'nobn' is not a variant"),
    (
        "batch-of-one-with-bn",
        config_with(training__batch_size=1),
        [],
        "training.batch_size: BatchNorm cannot train on batches of 1 example; use 2 or more",
    ),
    ("sweep-batch-of-one", config_with(sweep={"training.batch_size": [4, 1]}), [], "BatchNorm cannot train on batches"),
    ("duplicate-seeds", config_with(seeds=[1, 1]), [], "seeds must be unique"),
    ("negative-seed", config_with(seeds=[-1]), [], "seeds.0: Input should be greater than or equal to 0"),
    ("missing-name", {"seeds": [1]}, [], "name: is required"),
    ("sweep-bad-path", config_with(sweep={"optimizer.lrr": [1]}), [], "unknown key 'lrr'; did you mean 'lr'?"),
    ("sweep-empty", config_with(sweep={"optimizer.lr": []}), [], "'optimizer.lr' has no values"),
    ("sweep-seeds", config_with(sweep={"seeds": [[1]]}), [], "'seeds' cannot be swept"),
    ("sweep-bad-value", config_with(sweep={"training.epochs": [1, 0]}), [], "training.epochs: Input should be"),
    ("set-bad-path", GOOD, ["--set", "optimizer.rate=1"], "--set optimizer.rate=1: --set path"),
    ("set-no-equals", GOOD, ["--set", "training.epochs"], "expected PATH=VALUE"),
    ("set-bad-yaml", GOOD, ["--set", "model.hidden=[1,"], "value is not valid YAML"),
    ("set-bad-value", GOOD, ["--set", "training.shuffle=maybe"], "training.shuffle: Input should be a valid boolean"),
    ("seeds-garbage", GOOD, ["--seeds", "1,two"], "'two' is not a seed or a range"),
    ("seeds-arabic-digit", GOOD, ["--seeds", "\u0663"], "'\u0663' is not a seed or a range"),  # int() reads it as 3
    ("seeds-underscore", GOOD, ["--seeds", "1_0"], "'1_0' is not a seed or a range"),  # int() reads it as 10
    (
        "seeds-huge-range",
        GOOD,
        ["--seeds", "0-99999999999999"],  # was a list of 10^14 seeds: MemoryError
        "--seeds 0-99999999999999: 100,000,000,000,000 seeds, more than the 10,000 trials one run may hold",
    ),
    ("device-unknown", GOOD, ["--device", "tpu"], "device: String should match pattern"),
    ("device-absent", GOOD, ["--device", "mps"], "device: 'mps' is not available on this machine"),
    (
        "data-root-missing",
        config_with(dataset={"name": "imagefolder", "root": "/nonexistent/x"}),
        [],
        "dataset.root: '/nonexistent/x/train' does not exist",
    ),
    (
        "dataset-absent-no-download",
        config_with(dataset={"name": "mnist", "root": "/nonexistent/m", "download": False}),
        [],
        "dataset.root: mnist not found under '/nonexistent/m' (dataset.download is false)",
    ),
    (
        "cnn-too-deep",
        config_with(model={"kind": "cnn", "channels": [4, 4, 4, 4]}),
        [],
        "model.channels: 4 pooling stages shrink the 8x8 input to nothing",
    ),
    ("out-not-writable", GOOD, ["--out", "/proc/bnbench-results"], "--out: cannot create '/proc/bnbench-results/good'"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder holding one complete run, which no failing command may change."""
    out = tmp_path_factory.mktemp("results")
    path = out.parent / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def snapshot(folder):
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_clear_line(result, expected):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("case, content, args, expected", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_bad_run_input(tmp_path, results, case, content, args, expected):
    path = tmp_path / f"{case}.yaml"
    if content is not None:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    before = snapshot(results)
    out = [] if "--out" in args else ["--out", str(results)]
    result = runner.invoke(app, ["run", str(path), *out, *args])
    assert_one_clear_line(result, expected)
    if content is not None and case != "missing-file":
        assert path.name in result.output or case.startswith(
            ("set-", "seeds-", "device-", "data-", "dataset-", "cnn-", "out-")
        )
    assert snapshot(results) == before


def run_dir(results):
    (folder,) = (results / "good").iterdir()
    return folder


def damage(results, tmp_path, what):
    """Copy the good run and break one thing in the copy."""
    import shutil

    copy = tmp_path / "broken"
    shutil.copytree(run_dir(results), copy)
    what(copy)
    return copy


RESUME_CASES = [
    ("meta-not-json", lambda d: (d / "meta.json").write_text("{not json"), "meta.json: not readable JSON"),
    ("meta-not-object", lambda d: (d / "meta.json").write_text("[1]"), "meta.json: expected a JSON object"),
    ("config-missing", lambda d: (d / "config.yaml").unlink(), "config.yaml: missing"),
    ("config-garbled", lambda d: (d / "config.yaml").write_text("name: [x"), "config.yaml: not readable YAML"),
    (
        "config-invalid",
        lambda d: (d / "config.yaml").write_text("name: x\ntraining: {epochs: -1}"),
        "config.yaml: training.epochs: Input should be greater than 0",
    ),
]


@pytest.mark.parametrize("case, breaks, expected", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_bad_run_folder_on_resume(tmp_path, results, case, breaks, expected):
    folder = damage(results, tmp_path, breaks)
    before = snapshot(folder)
    assert_one_clear_line(runner.invoke(app, ["run", str(folder), "--resume"]), expected)
    assert snapshot(folder) == before


def test_seeds_to_add_are_counted_before_they_are_listed(tmp_path, results):
    folder = damage(results, tmp_path, lambda d: None)
    before = snapshot(folder)
    result = runner.invoke(app, ["run", "--resume", str(folder), "--seeds", "5,0-99999999999999"])
    assert_one_clear_line(result, "100,000,000,000,001 seeds, more than the 10,000 trials one run may hold")
    assert snapshot(folder) == before


def test_resume_without_a_partial_run(tmp_path, results):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    result = runner.invoke(app, ["run", str(good), "--resume", "--out", str(results)])
    assert_one_clear_line(result, "--resume: no partial run of 'good' with this config under")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--configs", "/nonexistent"], "--configs: '/nonexistent' is not a folder"),
    ],
)
def test_bad_list_input(args, expected):
    assert_one_clear_line(runner.invoke(app, ["list", *args]), expected)


def test_list_reports_a_broken_run_and_lists_the_rest(tmp_path, results):
    damage(results, tmp_path / "res" / "good", lambda d: (d / "meta.json").write_text("{"))
    import shutil

    shutil.copytree(run_dir(results), tmp_path / "res" / "good" / "ok")
    result = runner.invoke(app, ["list", "--results", str(tmp_path / "res")])
    assert result.exit_code == 0
    assert "not readable JSON" in result.output and "complete" in result.output


# ---- property: the loader returns a valid Config or raises BnbenchError, for any YAML document ---------------------

FIELDS = [
    "name",
    "seeds",
    "dataset",
    "model",
    "variants",
    "baseline",
    "optimizer",
    "training",
    "sweep",
    "device",
    "epochs",
    "lr",
    "kind",
    "norm",
    "hidden",
    "placement",
    "batch_size",
    "optimizer.lr",
    "root",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["mlp", "cnn", "adam", "digits", "batchnorm", "none", "auto"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.one_of(
        documents, st.fixed_dictionaries({"name": st.just("x")}, optional={f: documents for f in FIELDS if f != "name"})
    ),
    raw_text=st.one_of(st.none(), st.text(max_size=40)),
)
def test_random_yaml_gives_a_config_or_our_error(tmp_path, doc, raw_text):
    path = tmp_path / "random.yaml"
    path.write_text(raw_text if raw_text is not None else yaml.safe_dump(doc))
    try:
        config, _ = load_config(str(path))
    except BnbenchError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
    else:
        assert isinstance(config, Config)
