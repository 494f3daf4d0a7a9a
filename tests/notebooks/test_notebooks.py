"""The notebooks run from top to bottom on the real data and end with their headline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a copy of the notebook in memory, with the notebook's folder as working directory; never write it back."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def texts(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


@pytest.mark.shared
@pytest.mark.slow
def test_location_models_notebook(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANCHNET_SHARED_DIR", str(shared))
    monkeypatch.setenv("BRANCHNET_DATA_DIR", str(tmp_path / "var"))  # cache and plans out of the repository's var/

    nb = execute(NOTEBOOKS / "location_models.ipynb")

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.get("execution_count") for c in code)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    headline = texts(code[-1])
    assert "Headline for Rutland" in headline
    assert "75% budget: keep" in headline
    plans = tmp_path / "var" / "notebooks" / "location_models"
    for folder in ("budget-100", "budget-75", "budget-50", "p-median-3", "attendance-75"):
        assert (plans / folder / "map.html").is_file(), folder


@pytest.mark.shared
@pytest.mark.slow
def test_rutland_case_study_notebook(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANCHNET_SHARED_DIR", str(shared))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary data directory lands here

    nb = execute(NOTEBOOKS / "rutland_case_study.ipynb")

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.get("execution_count") for c in code)
    assert sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", [])) >= 2  # Pareto and map
    headline = texts(code[-1])
    assert "Recommended plan for Rutland" in headline
    assert "% of today's (saving" in headline
    (work,) = tmp_path.glob("branchnet-rutland-*")
    for folder in ("rutland-min-cost", "rutland-budget-75", "rutland-pareto"):
        assert (work / "plans" / folder / "map.html").is_file(), folder
        assert (work / "plans" / folder / "plan.json").is_file(), folder
    assert (work / "plans" / "rutland-pareto" / "pareto.csv").is_file()


@pytest.mark.shared
@pytest.mark.slow
def test_roadmap_notebook(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANCHNET_SHARED_DIR", str(shared))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's working folder lands here

    nb = execute(NOTEBOOKS / "roadmap.ipynb")

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.get("execution_count") for c in code)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))  # the Gantt chart
    headline = texts(code[-1])
    assert "Roadmap for Rutland 2025-2035" in headline and "below today's" in headline
    (work,) = tmp_path.glob("branchnet-roadmap-*")
    doc = json.loads((work / "rutland-roadmap" / "roadmap.json").read_text(encoding="utf-8"))
    assert [y["year"] for y in doc["years"]] == list(range(2025, 2036))
    running_2030 = next(y for y in doc["years"] if y["year"] == 2030)["costs"]["running"]
    assert running_2030 <= 0.75 * doc["today_cost"] * (1 + 1e-9)  # the savings target, recounted
