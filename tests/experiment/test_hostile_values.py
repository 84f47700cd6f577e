"""Values a hostile or careless user gives that must be refused in one line before anything is written, and stored
values that must not reach the terminal raw (issue 34: booleans and non-finite numbers as numbers, a probe batch
larger than the data, sweeps that make one trial twice, control characters in tags and notes, a header-only
probes.csv)."""

import json
import shutil

import pytest
import yaml
from support.cli_calls import invoke, ok, refused
from support.configs import tiny_config

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.loading import load_config, validate
from bnbench.experiment.trials import expand, refuse_large_probe_batch
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta

DIGITS = tiny_config("hostile", [0], training={"epochs": 1, "batch_size": 64, "log_every": 0})
DIGITS_TRAIN = 1437  # examples in the digits training split


def write(tmp_path, raw=DIGITS):
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ---- numbers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, field",
    [
        ("optimizer.lr=true", "optimizer.lr"),
        ("optimizer.momentum=true", "optimizer.momentum"),
        ("optimizer.weight_decay=false", "optimizer.weight_decay"),
        ("training.epochs=true", "training.epochs"),
        ("training.batch_size=true", "training.batch_size"),
        ("training.probe_every=true", "training.probe_every"),
        ("training.eval_every=true", "training.eval_every"),
        ("training.log_every=false", "training.log_every"),
        ("training.probe_batch=true", "training.probe_batch"),
        ("model.hidden=[64, true]", "model.hidden.1"),
        ("seeds=[true]", "seeds.0"),
    ],
)
def test_a_boolean_is_no_number(tmp_path, override, field):
    """YAML's true read as 1 (`epochs: true` trained one epoch, `lr: true` at 1.0)."""
    line = refused("run", write(tmp_path), "--set", override, "--out", tmp_path / "r")
    value = "false" if override.endswith("false") else "true"
    assert line.startswith(f"error: {tmp_path / 'hostile.yaml'}: {field}: Input should be a number, not {value}")
    assert not (tmp_path / "r").exists()


def test_numbers_as_yaml_spells_them_still_pass():
    """'1e-3' is a string to YAML (1.1 needs a dot): it stays a number for pydantic, as before."""
    config = Config(name="x", optimizer={"lr": "1e-3", "momentum": 0, "weight_decay": 0}, training={"epochs": "2"})
    assert (config.optimizer.lr, config.optimizer.momentum, config.training.epochs) == (1e-3, 0.0, 2)


@pytest.mark.parametrize(
    "override, field",
    [("optimizer.momentum=.nan", "optimizer.momentum"), ("optimizer.lr=.inf", "optimizer.lr")],
)
def test_a_float_field_is_finite(tmp_path, override, field):
    line = refused("run", write(tmp_path), "--set", override, "--out", tmp_path / "r")
    assert f": {field}: Input should be a finite number" in line


@pytest.mark.parametrize("kwargs", ["{w: .inf}", "{a: [1, {b: .nan}]}"])
def test_model_kwargs_hold_finite_numbers(tmp_path, kwargs):
    """An infinite one was stored as null in config.yaml (JSON has none), so a resumed run would pass None."""
    raw = DIGITS | {"model": {"kind": "factory", "factory": "nets:make"}}
    line = refused("run", write(tmp_path, raw), "--set", f"model.kwargs={kwargs}", "--out", tmp_path / "r")
    where = "w: inf" if "w" in kwargs else "a.1.b: nan"
    assert line.startswith(f"error: {tmp_path / 'hostile.yaml'}: model.kwargs: {where} is not a finite number")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--backend", "ray", "--gpus-per-trial", "inf"], "error: --gpus-per-trial inf: expected a finite 0 or more"),
        (["--until-decided", "--effect", "inf"], "error: --effect inf: the equivalence margin must be a finite number"),
        (["--until-decided", "--alpha", "nan"], "error: --alpha nan: must lie in (0, 0.5]"),
    ],
)
def test_run_options_are_finite(tmp_path, args, expected):
    assert refused("run", write(tmp_path), "--out", tmp_path / "r", *args).startswith(expected)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("effect", ["inf", "1e400"])
def test_compare_effect_is_finite(tmp_path, effect):
    result = invoke("compare", tmp_path, "--effect", effect)
    assert result.exit_code == 2 and "Invalid value for '--effect': Input should be less than or equal to 100" in (
        result.output
    )


def test_meta_json_is_never_written_with_nan_or_infinity(tmp_path):
    """Python's json writes them as NaN and Infinity, which no JSON reader takes: a bug, never a bad file."""
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        RunFolder(tmp_path).write_meta(Meta({"effect": float("inf")}))
    assert list(tmp_path.iterdir()) == []


def test_a_probe_batch_larger_than_the_training_set_is_refused(tmp_path):
    raw = DIGITS | {"training": DIGITS["training"] | {"probe_every": 5, "probe_batch": DIGITS_TRAIN + 1}}
    assert refused("run", write(tmp_path, raw), "--out", tmp_path / "r") == (
        f"error: training.probe_batch: {DIGITS_TRAIN + 1} is more examples than the training set's {DIGITS_TRAIN}; "
        f"use at most {DIGITS_TRAIN}"
    )
    assert not (tmp_path / "r").exists()
    refuse_large_probe_batch(expand(Config.model_validate(raw)), DIGITS_TRAIN + 1)  # as large as the data: taken
    unprobed = raw | {"training": raw["training"] | {"probe_every": None}}
    refuse_large_probe_batch(expand(Config.model_validate(unprobed)), 10)  # no probes, no probe batch


# ---- sweeps that make one trial twice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sweep, expected",
    [
        (
            "optimizer.weight_decay=-0.0,0.0",
            "optimizer.weight_decay=-0.0 and optimizer.weight_decay=0.0 make the same trials (equal values)",
        ),
        (
            "model.channels=[16],[32]",
            "model.channels=[16] and model.channels=[32] make the same trials (model.kind mlp does not use "
            "model.channels)",
        ),
        (
            "optimizer.momentum=0.5,0.9",
            "optimizer.momentum=0.5 and optimizer.momentum=0.9 make the same trials (optimizer.name adam does not "
            "use optimizer.momentum)",
        ),
    ],
)
def test_a_sweep_that_makes_one_trial_twice_is_refused(tmp_path, sweep, expected):
    line = refused("run", write(tmp_path), "--sweep", sweep, "--out", tmp_path / "r")
    assert line == f"error: --sweep {sweep}: sweep: {expected}; sweep only values that change a trial"
    assert not (tmp_path / "r").exists()


def test_a_sweep_of_what_the_model_uses_is_taken(tmp_path):
    cnn = DIGITS | {"model": {"kind": "cnn"}}
    config, _ = load_config(str(write(tmp_path, cnn)), sweeps=("model.channels=[16],[32]",))
    assert len(expand(config)) == 4
    sgd = DIGITS | {"optimizer": {"name": "sgd", "lr": 0.1}}
    config, _ = load_config(str(write(tmp_path, sgd)), sweeps=("optimizer.momentum=0.5,0.9",))
    assert len(expand(config)) == 4
    with pytest.raises(BnbenchError, match="optimizer.name=adam, optimizer.momentum=0.5 and optimizer.name=adam"):
        load_config(str(write(tmp_path, sgd)), sweeps=("optimizer.name=sgd,adam", "optimizer.momentum=0.5,0.9"))


def test_a_stored_run_with_such_a_sweep_is_still_read():
    """Refused for new runs only: a run made before is read as it was made (show, compare, resume)."""
    raw = DIGITS | {"sweep": {"optimizer.momentum": [0.5, 0.9]}}
    assert len(expand(validate(raw, "config.yaml"))) == 4  # 2 variants x 2 points
    with pytest.raises(BnbenchError, match="config.yaml: sweep: optimizer.momentum=0.5 and optimizer.momentum=0.9"):
        validate(raw, "config.yaml", new=True)


# ---- tags and notes --------------------------------------------------------------------------------------------

CONTROLS = ["\x1b[2J", "\x1b]0;owned\x07", "\x07", "ab\x08\x08", "\x7f", "\x9b31m", "\u202eevil", "a\tb"]


@pytest.mark.parametrize("text", CONTROLS)
def test_control_characters_are_refused_in_tags_and_notes(tmp_path, text):
    tag = refused("run", write(tmp_path), "--tag", f"x{text}", "--out", tmp_path / "r")
    assert tag.startswith(f"error: --tag {f'x{text}'!r}: a tag is one word of at most 100 printable characters")
    note = refused("run", write(tmp_path), "--note", f"a note {text}", "--out", tmp_path / "r")
    assert note.startswith("error: --note: a note is one line of text of at most 1000 characters, without tabs")
    assert not (tmp_path / "r").exists()
    assert tag.isprintable() and note.isprintable()


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A digits run with probes, tagged and noted."""
    tmp_path = tmp_path_factory.mktemp("probed")
    raw = DIGITS | {"seeds": [0, 1], "training": DIGITS["training"] | {"probe_every": 10}}
    ok("run", write(tmp_path, raw), "--out", tmp_path / "r", "-q", "--tag", "mine", "--note", "a plain note")
    (run_dir,) = (tmp_path / "r" / "hostile").iterdir()
    return run_dir


def test_stored_control_characters_are_shown_escaped(probed, tmp_path):
    """A run from before they were refused, or a hand-edited meta.json: `show` and `list` print escapes as text."""
    run_dir = shutil.copytree(probed, tmp_path / "r" / "hostile" / probed.name)
    meta = json.loads((run_dir / "meta.json").read_text())
    meta |= {"tags": ["red\x1b[31m", "bell\x07"], "note": "\x1b]0;owned\x07title\x08\x7f\x9b\u202e"}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    shown, listed = ok("show", run_dir), ok("list", "--results", tmp_path / "r")
    for text in (
        shown,
        listed,
        ok("show", run_dir, "-f", "json"),
        ok("list", "--results", tmp_path / "r", "-f", "json"),
    ):
        assert not any(c in text for c in "\x1b\x07\x08\x7f\x9b\u202e")
    assert "\\x1b]0;owned\\x07title\\x08\\x7f\\x9b\\u202e" in shown and "red\\x1b[31m" in shown
    assert "bell\\x07" in listed
    assert ok("list", "--results", tmp_path / "r", "--tag", "red\x1b[31m").count(run_dir.name) == 1


# ---- compare --probes ------------------------------------------------------------------------------------------


def test_a_header_only_probes_csv_is_one_line_with_its_repair(probed, tmp_path):
    run_dir = shutil.copytree(probed, tmp_path / "r" / "hostile" / probed.name)
    meta = json.loads((run_dir / "meta.json").read_text())
    meta.pop("digests", None)  # a run from before digests: nothing else notices
    (run_dir / "meta.json").write_text(json.dumps(meta))
    header = (run_dir / "probes.csv").read_text().splitlines()[0]
    (run_dir / "probes.csv").write_text(header + "\n")
    assert refused("compare", run_dir, "--probes") == (
        f"error: {run_dir / 'probes.csv'}: no probe rows, only the header; if the run has trained past "
        f"training.probe_every (10 steps), they were lost: repair with: bnbench run --resume {run_dir}"
    )


@pytest.mark.parametrize(
    "damage, said",
    [
        (lambda lines: lines[:-1] + [lines[-1][:-8]], "cut off"),  # a torn last line
        (lambda lines: lines[:5] + [lines[5].rsplit(",", 1)[0] + ",abc"] + lines[6:], "line 6: value is 'abc'"),
        (lambda lines: lines[:5] + [lines[5].replace(",10,", ",ten,", 1)] + lines[6:], "line 6: step is 'ten'"),
    ],
)
def test_a_damaged_probes_csv_is_one_line_naming_the_file(probed, tmp_path, damage, said):
    """Tracebacks before (issue 34); the rows are read as the other row files are (analysis.reading)."""
    run_dir = shutil.copytree(probed, tmp_path / "r" / "hostile" / probed.name)
    lines = (run_dir / "probes.csv").read_text().splitlines()
    (run_dir / "probes.csv").write_text("\n".join(damage(lines)) + ("\n" if said != "cut off" else ""))
    line = refused("compare", run_dir, "--probes")
    assert line.startswith(f"error: {run_dir / 'probes.csv'}: ") and said in line
