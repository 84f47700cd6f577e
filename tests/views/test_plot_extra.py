"""matplotlib is the optional `plot` extra: without it `--plot` is one line saying how to install it, said before
any work, and every other module imports (matplotlib's absence simulated: None in sys.modules blocks an import)."""

import subprocess
import sys

import pytest
from support.cli_calls import refused

EXTRA = "drawing needs matplotlib, an optional extra: pip install 'bnbench[plot]'"


@pytest.mark.parametrize("probes", [[], ["--probes"]])
def test_plot_without_matplotlib_is_one_line_naming_the_extra_before_any_work(tmp_path, monkeypatch, probes):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    plot = tmp_path / "figure.png"
    line = refused("compare", tmp_path / "no-such-run", *probes, "--plot", plot)  # the run is not even looked for
    assert line == f"error: --plot {plot}: {EXTRA}"
    assert not plot.exists()


def test_no_module_but_the_plots_imports_matplotlib():
    """Each module of bnbench imported in a fresh interpreter where importing matplotlib fails."""
    script = """
import importlib, pkgutil, sys
import bnbench
sys.modules["matplotlib"] = None
plots = {"bnbench.views.plots", "bnbench.views.probe_plots", "bnbench.__main__"}
for module in pkgutil.walk_packages(bnbench.__path__, "bnbench."):
    if module.name not in plots:
        importlib.import_module(module.name)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
