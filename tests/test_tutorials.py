"""The tutorial notebooks in docs/tutorials/ run, top to bottom, without an error.

Each notebook checks its own claims in ``assert`` cells, so a change to the model that makes a
tutorial's text wrong fails here. They run in a scratch directory (the third writes ``my_rules.py``),
on the kernel of this interpreter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "docs" / "tutorials").glob("*.ipynb"))


def test_the_four_tutorials_are_there():
    assert [path.stem for path in TUTORIALS] == [
        "01_first_spiral",
        "02_two_margin_rules",
        "03_your_own_margin_rule",
        "04_contagion",
    ]


def test_the_notebooks_are_stored_without_outputs():
    # Outputs are what the test produces; stored ones would go stale and bloat the repository.
    for path in TUTORIALS:
        notebook = nbformat.read(path, as_version=4)
        stale = [
            i for i, cell in enumerate(notebook.cells) if cell.get("outputs") or cell.get("execution_count")
        ]
        assert stale == [], f"{path.name}: cells {stale} hold outputs (clear them before committing)"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.stem)
def test_a_tutorial_runs_top_to_bottom(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    # "python3" is the kernel of the running interpreter (jupyter_client's native kernel) when
    # ipykernel is importable, as it is with the test extra.
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
