import os

import pytest
import yaml
from support.configs import tiny_config
from typer.testing import CliRunner

from bnbench.cli import app

os.environ["COLUMNS"] = "250"  # rich tables in CliRunner output: wide enough not to truncate cells


@pytest.fixture
def write_config(tmp_path):
    """Write a config dict to a YAML file and return its path."""

    def write(raw, name="exp.yaml"):
        path = tmp_path / name
        path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
        return path

    return write


@pytest.fixture
def digits_config():
    """A small digits experiment: 2 variants x 2 seeds, 2 epochs."""
    return tiny_config()


@pytest.fixture
def run_config(write_config):
    """`bnbench run` of a config dict into OUT, quietly; asserts success, returns (run folder, output)."""

    def run(config, out, *args):
        result = CliRunner().invoke(app, ["run", str(write_config(config)), "--out", str(out), "-q", *args])
        assert result.exit_code == 0, result.output
        (run_dir,) = (out / config["name"]).iterdir()
        return run_dir, result.output

    return run
