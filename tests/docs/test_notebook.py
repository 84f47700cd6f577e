"""docs/notebook.ipynb runs: every cell executed in a fresh kernel (nbclient), in a temporary folder so that its
run folder is not written into the repository; a cell that raises fails the test. Stored outputs play no part."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebook.ipynb"


@pytest.mark.slow
def test_the_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the test extra: pip install -e '.[test]'")
    nbclient = pytest.importorskip("nbclient", reason="the test extra: pip install -e '.[test]'")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # a cell's error raises CellExecutionError, naming the cell
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "stream" and out.name == "stderr"]  # no warning
    shown = "".join(str(out.get("data", {}).get("text/html", "")) for out in outputs)
    assert "batchnorm vs plain: " in shown and "<table" in shown  # the comparison rendered as Jupyter shows it
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the figure drawn inline
    (run,) = (tmp_path / "results" / "quick-digits").iterdir()  # written in the kernel's working folder
    assert (run / "batches.csv").exists()
