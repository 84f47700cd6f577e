"""The docs' own scripts (docs/examples.py, docs/generate_cli.py), loaded as modules: docs/ is not a package."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def docs_script():
    def load(name):
        module_name = f"bnbench_docs_{name}"  # docs/NAME.py, under a name no installed module has
        if module_name not in sys.modules:  # a dataclass needs its module registered while it is made
            spec = importlib.util.spec_from_file_location(module_name, ROOT / "docs" / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        return sys.modules[module_name]

    return load
