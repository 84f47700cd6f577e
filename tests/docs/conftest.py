"""The docs' own scripts (docs/examples.py, docs/generate_cli.py), loaded as modules: docs/ is not a package."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def docs_script():
    def load(name):
        if name not in sys.modules:  # a dataclass needs its module registered while it is made
            spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return sys.modules[name]

    return load
