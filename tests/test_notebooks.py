"""The notebooks in notebooks/: stored without outputs, and each runs top to bottom in a fresh
kernel, drawing its figures with legible Chinese (the CJK font newsclf ships draws it, so no
glyph is missing whatever fonts the machine has).

Notebook 01 trains into models/quickstart (git-ignored); 02 and 03 use that model when it is
there, else train a small one on data/sample into models/notebook-sample.
"""

import json

import pytest

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
# the minimum number of figures (image/png outputs) each notebook draws
EXPECTED_FIGURES = {
    "01_quickstart.ipynb": 2,           # class balance (+ lengths), confusion matrix (+ curve)
    # positional encodings (absolute; rotary and relative), attention heatmaps, padding,
    # rollout importance, the three attribution methods, heads under four positional encodings
    "02_inside_the_encoder.ipynb": 7,
    "03_batch_prediction.ipynb": 1,     # share of predicted classes
}


def _stored_notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_notebooks_are_there():
    assert set(EXPECTED_FIGURES) <= {path.name for path in _stored_notebooks()}


@pytest.mark.parametrize("path", _stored_notebooks(), ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {number} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {number} has a count"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_notebook_runs_and_draws_its_figures(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary files (03 keeps its own)

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, naming the cell, if one fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    figures = sum("image/png" in output.get("data", {}) for output in outputs)
    assert figures >= EXPECTED_FIGURES[name], f"{name}: {figures} figures"
    stderr = "".join(output.text for output in outputs
                     if output.output_type == "stream" and output.name == "stderr")
    assert "Traceback" not in stderr
    stdout = "".join(output.text for output in outputs
                     if output.output_type == "stream" and output.name == "stdout")
    assert "No CJK font found" not in stdout, stdout
    # every Chinese label was drawn with a font that has the glyphs: no boxes
    assert "Glyph" not in stderr and "missing from font" not in stderr, stderr
    assert "findfont" not in stderr, stderr
