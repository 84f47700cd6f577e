"""`run --sweep`, `run --tag/--note` with `list --tag`, and `compare --per-seed`, on tiny digits runs."""

import io
import json

import pandas as pd
import pytest
import yaml
from support.cli_calls import invoke
from support.configs import tiny_config

from bnbench.errors import BnbenchError
from bnbench.experiment.loading import load_config, parse_sweep

BASE = tiny_config(
    "sw",
    optimizer={"lr": 1.0e-3},
    training={"epochs": 1, "batch_size": 64, "log_every": 0},
    model={"kind": "mlp", "hidden": [16]},
)
SWEEP = ["--sweep", "optimizer.lr=1e-3,1e-2", "--sweep", "model.hidden=[16],[8,8]"]


def write(folder, raw, name="sw.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def only_run(out, name="sw"):
    (run_dir,) = (out / name).iterdir()
    return run_dir


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A run made with two --sweep axes, tagged and noted."""
    folder = tmp_path_factory.mktemp("swept")
    out = folder / "results"
    args = ["run", write(folder, BASE), "--out", out, "-q", *SWEEP, "--tag", "lr-study", "--tag", "v2"]
    result = invoke(*args, "--note", "first look at rates")
    assert result.exit_code == 0, result.output
    return only_run(out)


def test_a_sweep_option_runs_what_the_same_yaml_sweep_runs(swept, tmp_path):
    raw = BASE | {"sweep": {"optimizer.lr": ["1e-3", "1e-2"], "model.hidden": [[16], [8, 8]]}}
    result = invoke("run", write(tmp_path, raw), "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    from_yaml = only_run(tmp_path / "r")
    assert (swept / "batches.csv").read_bytes() == (from_yaml / "batches.csv").read_bytes()
    batches = pd.read_csv(swept / "batches.csv")
    trials = batches.drop_duplicates(["variant", "seed", "optimizer.lr", "model.hidden"])
    assert len(trials) == 2 * 2 * 2 * 2  # variants x seeds x rates x widths
    assert sorted(trials["optimizer.lr"].unique()) == [0.001, 0.01]
    assert sorted(trials["model.hidden"].unique()) == ["[16]", "[8, 8]"]
    meta = json.loads((swept / "meta.json").read_text())
    assert meta["overrides"]["sweep"] == ["optimizer.lr=1e-3,1e-2", "model.hidden=[16],[8,8]"]
    assert meta["config"]["sweep"] == raw["sweep"]


def test_sweep_values_split_at_commas_outside_brackets():
    assert parse_sweep("optimizer.lr=1e-4, 0.01") == ("optimizer.lr", ["1e-4", 0.01])
    assert parse_sweep("model.hidden=[64,32],[128,64]") == ("model.hidden", [[64, 32], [128, 64]])
    assert parse_sweep("model.hidden=[64,32]") == ("model.hidden", [[64, 32]])  # one value, as --set reads it
    assert parse_sweep("optimizer.name='adam','sgd'") == ("optimizer.name", ["adam", "sgd"])


def test_a_sweep_option_replaces_the_files_axis_in_its_place(tmp_path):
    raw = BASE | {"sweep": {"optimizer.lr": [0.1, 0.2], "training.batch_size": [32, 64]}}
    config, _ = load_config(str(write(tmp_path, raw)), sweeps=("optimizer.lr=0.003", "model.hidden=[4],[8]"))
    assert config.sweep == {"optimizer.lr": [0.003], "training.batch_size": [32, 64], "model.hidden": [[4], [8]]}


@pytest.mark.parametrize(
    "sweep, expected",
    [
        ("optimizer.lrr=1,2", "--sweep optimizer.lrr=1,2: --sweep path 'optimizer.lrr': unknown key 'lrr'; did you "),
        ("optimizer.lr=abc", "--sweep optimizer.lr=abc: optimizer.lr: Input should be a valid number"),
        ("optimizer.lr=1e-3,0.001", "make the same trial (optimizer.lr=0.001); list each value once"),
        ("dataset.name=digits,mnist", "--sweep dataset.name=digits,mnist: sweep: 'dataset.name' cannot be swept: "),
        ("seeds=1,2", "--sweep seeds=1,2: sweep: 'seeds' cannot be swept (sweepable: "),
        ("optimizer.lr=", "--sweep optimizer.lr=: sweep: 'optimizer.lr' has no values"),
        ("optimizer.lr", "--sweep optimizer.lr: expected PATH=V1,V2,..., e.g. --sweep optimizer.lr=1e-4,1e-3"),
        ("model.hidden=[64,32],[128", "--sweep model.hidden=[64,32],[128: values are not comma-separated YAML"),
    ],
)
def test_a_bad_sweep_is_refused_in_one_line(tmp_path, sweep, expected):
    result = invoke("run", write(tmp_path, BASE), "--out", tmp_path / "r", "--sweep", sweep)
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "r").exists()


def test_one_axis_given_twice_is_refused(tmp_path):
    result = invoke("run", write(tmp_path, BASE), "--sweep", "optimizer.lr=1,2", "--sweep", "optimizer.lr=3")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --sweep optimizer.lr=3: optimizer.lr is already swept by --sweep optimizer.lr=1,2; give each path "
        "once\n"
    )


def test_a_file_error_is_the_files_not_the_sweeps(tmp_path):
    with pytest.raises(BnbenchError, match=r"sw\.yaml: optimizer\.lr: Input should be greater than 0"):
        load_config(str(write(tmp_path, BASE | {"optimizer": {"lr": -1}})), sweeps=("model.hidden=[4],[8]",))


def test_a_swept_run_grows_keeps_its_labels_and_shows_how_it_differs(swept, tmp_path):
    import shutil

    run_dir = shutil.copytree(swept, tmp_path / "sw" / swept.name)
    result = invoke("run", "--resume", run_dir, "--seeds", "2", "-q")  # the drift check reloads file + --sweep
    assert result.exit_code == 0, result.output
    meta = json.loads((run_dir / "meta.json").read_text())
    assert (
        meta["config"]["seeds"] == [0, 1, 2]
        and meta["overrides"]["sweep"] == json.loads((swept / "meta.json").read_text())["overrides"]["sweep"]
    )
    assert (meta["tags"], meta["note"]) == (["lr-study", "v2"], "first look at rates")
    s = json.loads(invoke("show", run_dir, "-f", "json").stdout)
    assert s["source_state"] == "unchanged"
    assert s["overrides"] == "--sweep optimizer.lr=1e-3,1e-2 --sweep model.hidden=[16],[8,8] --seeds 0,1,2"
    assert s["from_source"] == [
        "seeds: [0, 1] -> [0, 1, 2]",
        "sweep.model.hidden: None -> [[16], [8, 8]]",
        "sweep.optimizer.lr: None -> ['1e-3', '1e-2']",
    ]
    text = invoke("show", run_dir).stdout
    assert "\ntags: lr-study, v2 · note: first look at rates\n" in text


@pytest.mark.parametrize(
    "option, expected",
    [
        (["--sweep", "optimizer.lr=1,2"], "error: --sweep optimizer.lr=1,2: would change the trials "),
        (["--tag", "more"], "error: --tag: tags and a note are given to a run when it starts; "),
        (["--note", "later"], "error: --note: tags and a note are given to a run when it starts; "),
    ],
)
def test_resume_refuses_sweeps_tags_and_notes(swept, option, expected):
    result = invoke("run", "--resume", swept, *option)
    assert result.exit_code == 2 and result.stderr.startswith(expected), result.output


@pytest.mark.parametrize("tag", ["a b", "a,b", "", "x" * 101])
def test_a_bad_tag_is_refused(tmp_path, tag):
    result = invoke("run", write(tmp_path, BASE), "--out", tmp_path / "r", "--tag", tag)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: --tag {tag!r}: a tag is one word")
    assert not (tmp_path / "r").exists()


def test_a_note_is_one_line(tmp_path):
    result = invoke("run", write(tmp_path, BASE), "--note", "two\nlines")
    assert result.exit_code == 2 and result.stderr.startswith("error: --note: a note is one line of text")


def test_list_shows_and_filters_by_tags(swept, tmp_path):
    results = swept.parent.parent
    other = invoke("run", write(tmp_path, BASE | {"name": "other"}), "--out", results, "-q", "--tag", "v2")
    assert other.exit_code == 0, other.output
    untagged = invoke("run", write(tmp_path, BASE | {"name": "plain"}), "--out", results, "-q")
    assert untagged.exit_code == 0, untagged.output

    def listed(*tags):
        args = [a for tag in tags for a in ("--tag", tag)]
        return json.loads(invoke("list", "--results", results, "-f", "json", *args).stdout)["runs"]

    assert {r["name"]: (r["tags"], r["note"]) for r in listed()} == {
        "sw": (["lr-study", "v2"], "first look at rates"),
        "other": (["v2"], ""),
        "plain": ([], ""),
    }
    assert sorted(r["name"] for r in listed("v2")) == ["other", "sw"]
    assert [r["name"] for r in listed("v2", "lr-study")] == ["sw"]
    assert listed("nope") == []
    text = invoke("list", "--results", results, "--tag", "v2").stdout.split("Runs under")[1].splitlines()
    header = ["run", "status", "trials", "seeds", "epochs", "verdict", "started", "device", "tags", "options"]
    assert text[1].split() == header
    row = next(line for line in text if line.startswith("sw/"))
    options = ["--sweep", "optimizer.lr=1e-3,1e-2", "--sweep", "model.hidden=[16],[8,8]"]
    assert row.split()[-5:] == ["lr-study,v2", *options]
    assert invoke("list", "--results", results, "--tag", "nope").stdout.endswith("(no runs tagged nope)\n")


def test_per_seed_rows_are_the_summarys_inputs(swept):
    result = invoke("compare", swept, "--format", "csv", "--per-seed")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    measures = ["train_loss", "test_loss", "test_acc", "best_acc", "steps", "steps_acc", "seconds"]
    points = ["optimizer.lr", "model.hidden"]
    assert list(rows.columns) == ["experiment", "run", *points, "variant", "seed", "measure", "value", "ok"] + [
        "baseline_value",
        "delta",
    ]
    assert len(rows) == 16 * len(measures) and list(rows.measure[: len(measures)]) == measures
    table = pd.read_csv(io.StringIO(invoke("compare", swept, "--format", "csv").stdout))
    acc = rows[(rows.measure == "test_acc") & rows.ok]
    means = acc.groupby([*points, "variant"]).value.mean()
    deltas = acc[acc.variant == "batchnorm"].groupby(points).delta.mean()
    for _, row in table.iterrows():
        key = (row["optimizer.lr"], row["model.hidden"], row["variant"])
        assert means[key] == pytest.approx(row["test_acc_mean"], rel=1e-12)
        if row["variant"] == "batchnorm":
            assert deltas[key[:2]] == pytest.approx(row["test_acc_delta"], rel=1e-12)
            assert row["test_acc_delta"] != 0
    plain = acc[acc.variant == "plain"]
    assert plain.delta.isna().all() and (plain.value == plain.baseline_value).all()
    only = pd.read_csv(io.StringIO(invoke("compare", swept, "-f", "csv", "--per-seed", "-m", "test_acc").stdout))
    assert set(only.measure) == {"test_acc"} and len(only) == 16
    assert json.loads(invoke("compare", swept, "-f", "json", "--per-seed", "-m", "test_acc").stdout)[0]["seed"] == 0


def test_per_seed_is_for_csv_and_json_rows(swept):
    result = invoke("compare", swept, "--per-seed")
    assert result.exit_code == 2 and result.stderr.startswith("error: --per-seed: --format table has no rows per ")


def test_a_sequential_run_keeps_its_tags_beside_its_plan(tmp_path):
    out = tmp_path / "r"
    result = invoke(
        "run", write(tmp_path, BASE), "--out", out, "-q", "--until-decided", "--max-seeds", "8", "--tag", "seq"
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((only_run(out) / "meta.json").read_text())
    assert meta["tags"] == ["seq"] and meta["sequential"]["plan"]["seeds"] == list(range(8))
