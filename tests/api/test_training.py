"""`bnbench.run` against `bnbench run`: a config given as a dict trains the same rows as the CLI trains from the
same config in a YAML file, is refused with the CLI's line (as a BnbenchError), prints nothing unless asked, and
takes the CLI's --seeds, --set and --sweep as Python values."""

import pytest
import yaml
from support.cli_calls import ok, refused
from support.configs import tiny_config
from support.run_files import only_run, rows

import bnbench


def written(tmp_path, config: dict):
    """`config` as a user's YAML file."""
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_dict_trains_the_rows_the_cli_trains_from_its_yaml(tmp_path, capfd):
    config = tiny_config("same")
    run = bnbench.run(config, out=tmp_path / "api")
    assert capfd.readouterr() == ("", "")  # nothing printed, by this process or the one it forks
    ok("run", written(tmp_path, config), "--out", tmp_path / "cli", "-q")
    cli = only_run(tmp_path / "cli", "same")
    assert isinstance(run, bnbench.Run) and run.path == only_run(tmp_path / "api", "same")
    assert (run.path / "batches.csv").read_bytes() == (cli / "batches.csv").read_bytes()
    assert rows(run.path) == rows(cli) and run.status == "complete"
    assert run.config == yaml.safe_load((cli / "config.yaml").read_text())
    assert run.meta["source"] is None and run.meta["command"] == []  # no file, no command line: meta.json says so
    assert bnbench.compare(run).verdict == bnbench.compare(cli).verdict


def test_a_mistake_is_the_clis_line(tmp_path):
    config = tiny_config("bad", training={"epochs": 0, "batch_size": 16})
    file = written(tmp_path, config)
    line = refused("run", file, "--out", tmp_path)
    assert line.startswith(f"error: {file}: training.epochs: ")
    with pytest.raises(bnbench.BnbenchError) as given:
        bnbench.run(config, out=tmp_path)
    assert str(given.value) == line.replace(f"error: {file}", "config")  # a dict is named `config`, a file by its path
    with pytest.raises(bnbench.BnbenchError) as given:
        bnbench.run(file, out=tmp_path)
    assert f"error: {given.value}" == line
    file = written(tmp_path, tiny_config("good"))
    for options, cli in [
        ({"seeds": "3-1"}, ["--seeds", "3-1"]),
        ({"set": "training.epochs"}, ["--set", "training.epochs"]),
        ({"sweep": {"name": [1, 2]}}, ["--sweep", "name=1,2"]),
        ({"backend": "mpi"}, ["--backend", "mpi"]),
        ({"alpha": 0.1}, ["--alpha", "0.1"]),
        ({"until_decided": True, "spending": "x"}, ["--until-decided", "--spending", "x"]),
    ]:
        with pytest.raises(bnbench.BnbenchError) as given:
            bnbench.run(file, out=tmp_path, **options)
        assert f"error: {given.value}" == refused("run", file, "--out", tmp_path, *cli), options
    with pytest.raises(bnbench.BnbenchError, match="config: expected a config file, a shipped config's name or a"):
        bnbench.run(3)
    with pytest.raises(bnbench.BnbenchError, match="--jobs 0: expected a number of worker processes, 1 or more"):
        bnbench.run(file, jobs=0)  # the CLI's parser says it its own way
    assert not any(tmp_path.glob("*/*"))  # nothing was trained


def test_seeds_set_and_sweep_reach_the_run(tmp_path):
    config = tiny_config("swept", seeds=[0])
    options = {"seeds": range(3, 5), "set": {"training.epochs": 1}, "sweep": {"optimizer.lr": [0.001, 0.003]}}
    run = bnbench.run(config, out=tmp_path / "api", tags="first", note="from Python", **options)
    args = ["--seeds", "3-4", "--set", "training.epochs=1", "--sweep", "optimizer.lr=0.001,0.003", "--tag", "first"]
    ok("run", written(tmp_path, config), "--out", tmp_path / "cli", "-q", "--note", "from Python", *args)
    cli = only_run(tmp_path / "cli", "swept")
    assert rows(run.path) == rows(cli)
    assert list(run.trials.seed.unique()) == [3, 4] and run.config["training"]["epochs"] == 1
    assert run.config["sweep"] == {"optimizer.lr": [0.001, 0.003]} and run.trials["optimizer.lr"].nunique() == 2
    assert run.meta["overrides"] == bnbench.load(cli).meta["overrides"]
    assert (run.meta["tags"], run.meta["note"]) == (["first"], "from Python")


def test_resume_grows_a_run_and_a_complete_one_is_returned(tmp_path, capsys):
    run = bnbench.run(tiny_config("grown", seeds=[0]), out=tmp_path, set=["training.epochs=1"])
    grown = bnbench.run(run.path, resume=True, seeds=[0, 1], set={"training.epochs": 2})
    assert grown.path == run.path and sorted(grown.trials.seed.unique()) == [0, 1]
    assert set(grown.epochs.epoch) == {1, 2}
    again = bnbench.run(run.path, resume=True)
    assert again.path == run.path and again.status == "complete"
    assert capsys.readouterr().out == ""


def test_progress_shows_what_the_cli_shows(tmp_path, capsys):
    bnbench.run(tiny_config("shown", seeds=[0]), out=tmp_path, progress=True)
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("shown: 2 trials (0 already done) -> ")  # the CLI's lines, as it prints into a pipe
    assert [line.split(":")[0] for line in shown[1:]] == ["batchnorm-s0", "plain-s0", "batchnorm vs plain"]
