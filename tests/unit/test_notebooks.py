"""Every notebook in notebooks/ runs headless (nbclient) against the sample lake, so they never rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from claims_shared.settings import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_for_each_topic() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_claim_360", "02_claim_history", "03_telematics_around_loss", "04_fraud_alerts"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_against_the_sample_lake(path: Path, sample_lake, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: the notebooks read the lake from CLAIMS_LAKE_URI like claimsctl sql.
    monkeypatch.setenv("CLAIMS_LAKE_URI", sample_lake.root)
    monkeypatch.delenv("CLAIMS_NOTEBOOK_CLAIM", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                     for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "CLM-2026-" in text  # it showed real rows of the lake
    assert os.environ["CLAIMS_LAKE_URI"] == sample_lake.root
