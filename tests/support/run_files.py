"""What the tests read back from a run folder: its one run under an experiment folder, meta.json, the seeds of its
config.yaml and its row files."""

import json

import yaml

from bnbench.rundir.schema import ROW_FILES


def only_run(out, name):
    """The run folder of `out/name`, which must hold exactly one."""
    (run_dir,) = (out / name).iterdir()
    return run_dir


def meta(run_dir):
    return json.loads((run_dir / "meta.json").read_text())


def seeds(run_dir):
    return yaml.safe_load((run_dir / "config.yaml").read_text())["seeds"]


def rows(run_dir):
    """The row files' lines, without epochs.csv's wall-clock seconds."""
    texts = {name: (run_dir / name).read_text().splitlines() for name in ROW_FILES}
    texts["epochs.csv"] = [line.rsplit(",", 1)[0] for line in texts["epochs.csv"]]
    return texts
