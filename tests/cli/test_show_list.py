"""`bnbench show` and `bnbench list` on real digits runs (1 and 2 epochs of seed 0), trained once for this file."""

import json
import shutil

import pandas as pd
import pytest
import yaml
from support.cli_calls import invoke


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    for epochs in (1, 2):
        result = invoke("run", "quick", "--set", f"training.epochs={epochs}", "--seeds", "0", "--out", out, "-q")
        assert result.exit_code == 0, result.output
    return out


def runs(out):
    return sorted((out / "quick-digits").iterdir())  # oldest (1 epoch) first


def test_show_json_holds_the_run_and_its_numbers(out):
    run_dir = runs(out)[0]
    result = invoke("show", run_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert (s["status"], s["engine"], s["device"], s["overrides"]) == (
        "complete",
        "eager",
        "cpu",
        "--set training.epochs=1 --seeds 0",
    )
    assert s["from_source"] == ["seeds: [0, 1, 2, 3, 4] -> [0]", "training.epochs: 5 -> 1"]
    assert s["source_state"] == "unchanged" and s["edited"] == [] and s["problem"] is None
    epochs = pd.read_csv(run_dir / "epochs.csv").set_index("variant")
    batches = pd.read_csv(run_dir / "batches.csv")
    assert [(t["variant"], t["seed"], t["status"], t["epochs"], t["epochs_total"]) for t in s["trials"]] == [
        ("batchnorm", 0, "complete", 1, 1),
        ("plain", 0, "complete", 1, 1),
    ]
    for t in s["trials"]:
        assert t["steps"] == batches[batches.variant == t["variant"]].step.max() == 144
        assert t["test_acc"] == pytest.approx(100 * epochs.test_acc[t["variant"]])
        assert t["train_loss"] == pytest.approx(epochs.train_loss[t["variant"]])
        assert t["seconds"] == pytest.approx(epochs.seconds[t["variant"]])
    verdict = json.loads(invoke("compare", run_dir, "--format", "json").stdout)[0]["verdict"]
    # one seed: one pair, whose exact p is 1 (no t-test): no difference can be shown
    assert s["verdicts"] == [verdict]
    assert verdict.startswith("batchnorm vs plain: no difference shown in test acc: ")


def test_show_text_by_run_id(out):
    run_dir = runs(out)[1]
    result = invoke("show", f"quick-digits/{run_dir.name}", "--results", out)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith(f"quick-digits · run {run_dir}\nstatus: complete (started ")
    for line in (
        "engine: eager · device: cpu (",
        "overrides: --set training.epochs=2 --seeds 0\n",
        "differs from the config file: seeds: [0, 1, 2, 3, 4] -> [0]; training.epochs: 5 -> 2\n",
        "verdict: batchnorm vs plain: no difference shown in test acc: ",
        "variant    seed  status    epochs  steps",
    ):
        assert line in text, line
    trial = next(line for line in text.splitlines() if line.startswith("plain "))
    assert trial.split()[:5] == ["plain", "0", "complete", "2/2", "288"]  # a trial a line


def test_show_says_when_the_source_changed_or_is_gone(out, tmp_path):
    run_dir = shutil.copytree(runs(out)[0], tmp_path / "quick-digits" / "copy")
    source = tmp_path / "quick.yaml"
    meta = json.loads((run_dir / "meta.json").read_text())
    shutil.copy(meta["source"], source)
    (run_dir / "meta.json").write_text(json.dumps(meta | {"source": str(source)}))
    source.write_text(source.read_text().replace("lr: 1.0e-3", "lr: 1.0e-2"))
    s = json.loads(invoke("show", run_dir, "-f", "json").stdout)
    assert s["source_state"] == "changed since the run began (optimizer.lr: 0.001 -> 0.01; run -> file now)"
    source.unlink()
    s = json.loads(invoke("show", run_dir, "-f", "json").stdout)
    assert s["source_state"] == f"missing: {source} no longer exists"
    result = invoke("show", "nope", "--results", tmp_path)
    assert result.exit_code == 2 and result.stderr.startswith("error: nope: not a run folder, nor the id of a run")


def test_list_tells_runs_apart_and_gives_json(out):
    result = invoke("list", "--results", out, "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert "quick.yaml" in [c["file"] for c in listed["configs"]]
    assert [(r["run"], r["status"], r["seeds"], r["epochs"], r["overrides"]) for r in listed["runs"]] == [
        (runs(out)[1].name, "complete", "0", 2, "--set training.epochs=2 --seeds 0"),
        (runs(out)[0].name, "complete", "0", 1, "--set training.epochs=1 --seeds 0"),
    ]
    text = invoke("list", "--results", out).stdout
    assert "--set training.epochs=1 --seeds 0" in text and "--set training.epochs=2 --seeds 0" in text
    assert invoke("list", "--format", "yaml").exit_code == 2


def test_a_run_grown_twice_shows_each_set_path_once(out, tmp_path):
    """Growing by epochs twice records `--set training.epochs` each time; only the last counts, as with the CLI."""
    run_dir = shutil.copytree(runs(out)[0], tmp_path / "res" / "quick-digits" / "grown")
    for epochs in (2, 3):
        result = invoke("run", "--resume", run_dir, "--set", f"training.epochs={epochs}", "-q")
        assert result.exit_code == 0, result.output
    (listed,) = json.loads(invoke("list", "--results", tmp_path / "res", "-f", "json").stdout)["runs"]
    assert listed["overrides"] == "--set training.epochs=3 --seeds 0" and listed["epochs"] == 3
    assert json.loads(invoke("show", run_dir, "-f", "json").stdout)["overrides"] == "--set training.epochs=3 --seeds 0"


@pytest.mark.parametrize(
    "field, value, overrides",
    [
        ("overrides", "x", "(damaged in meta.json)"),
        ("overrides", {"set": "training.epochs=1"}, "(damaged in meta.json)"),
        ("overrides", {"set": ["training.epochs=1"], "seeds": "0"}, "(damaged in meta.json)"),
        ("resumed", 5, "--set training.epochs=1 --seeds 0"),
        ("source", 5, "--set training.epochs=1 --seeds 0"),
    ],
)
def test_a_damaged_meta_field_neither_stops_show_nor_list(out, tmp_path, field, value, overrides):
    """A hand-edited meta.json field is shown as damaged or left out: it stopped `show`, and `list` for the whole
    results folder, with a traceback."""
    shutil.copytree(runs(out)[1], tmp_path / "res" / "quick-digits" / "good")
    run_dir = shutil.copytree(runs(out)[0], tmp_path / "res" / "quick-digits" / "damaged")
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps(meta | {field: value}))
    shown = invoke("show", run_dir)
    assert shown.exit_code == 0 and f"\noverrides: {overrides}\n" in shown.stdout, shown.output
    assert json.loads(invoke("show", run_dir, "-f", "json").stdout)["overrides"] == overrides
    listed = invoke("list", "--results", tmp_path / "res", "-f", "json")
    assert listed.exit_code == 0, listed.output
    assert [(r["run"], r["overrides"]) for r in json.loads(listed.stdout)["runs"]] == [
        ("good", "--set training.epochs=2 --seeds 0"),
        ("damaged", overrides),
    ]


@pytest.mark.parametrize("damage", [{"seeds": 5}, {"training": 5}])
def test_a_damaged_config_field_does_not_stop_list(out, tmp_path, damage):
    run_dir = shutil.copytree(runs(out)[0], tmp_path / "res" / "quick-digits" / "damaged")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config | damage))
    listed = invoke("list", "--results", tmp_path / "res", "-f", "json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)["runs"]
    assert (row["seeds"], row["epochs"]) == (("?", 1) if "seeds" in damage else ("0", "?"))
