"""Rutland, the real case: one import command from the files as they lie in ../shared, then KPIs and a plan."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.store.regions import load_region


@pytest.fixture(scope="module")
def rutland_data_dir(rutland_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with Rutland imported by the CLI."""
    data_dir = tmp_path_factory.mktemp("var")
    result = CliRunner().invoke(
        app,
        [
            "region",
            "import",
            "rutland",
            "--osm",
            str(rutland_dir / "rutland-latest.osm.pbf"),
            "--population",
            str(rutland_dir / "rutland_lsoa21_boundaries.geojson"),
            "--population-table",
            str(rutland_dir / "rutland_lsoa21_population.csv"),
            "--branches",
            str(rutland_dir / "rutland_libraries.geojson"),
            "--settlements",
            str(rutland_dir / "geonames_cities500_rutland_bbox.csv"),
        ],
        env={"BRANCHNET_DATA_DIR": str(data_dir)},
    )
    assert result.exit_code == 0, result.output
    return data_dir


def test_population_sums_and_per_lsoa_totals(rutland_data_dir: Path, rutland_dir: Path) -> None:
    region = load_region("rutland", rutland_data_dir / "regions")
    assert region.demand["population"].sum() == 41_151
    census = pd.read_csv(rutland_dir / "rutland_lsoa21_population.csv").set_index("lsoacd")["population"]
    got = region.demand.groupby("area_id")["population"].sum()
    assert got.sort_index().to_dict() == census.sort_index().to_dict()
    assert len(region.areas) == 26


def test_all_branches_snapped_and_drive_graph_excludes_footways(rutland_data_dir: Path) -> None:
    region = load_region("rutland", rutland_data_dir / "regions")
    assert sorted(region.branches["branch_id"]) == ["Ketton", "Oakham", "Ryhall", "Uppingham"]
    assert (region.branches["snap_m"] < 100).all()
    highways = {h for _, _, h in region.drive.edges(data="highway")}
    assert highways.isdisjoint({"footway", "path", "steps", "cycleway", "bridleway", "track", "pedestrian"})
    assert {"trunk", "residential"} <= highways
    walk_highways = {h for _, _, h in region.walk.edges(data="highway")}
    assert "footway" in walk_highways
    assert region.time_s.shape == (len(region.demand), 4)
    assert region.settlements is not None and "Oakham" in set(region.settlements["name"])


def test_region_show_prints_the_kpis(rutland_data_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["region", "show", "rutland"],
        env={"BRANCHNET_DATA_DIR": str(rutland_data_dir), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for head in ("≤5 min", "≤10 min", "≤15 min", "≤20 min", "≤2 mi road", "mean min", "41,151", "E01013787"):
        assert head in result.output


def test_plan_writes_outputs(rutland_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        app,
        ["plan", "rutland", "--out", str(out), "--budget-share", "0.75"],
        env={"BRANCHNET_DATA_DIR": str(rutland_data_dir)},
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "plan.json").read_text())
    assert plan["solver"]["status"] == "optimal"
    assert plan["study"] == "branches" and plan["location"]["model"] == "max_coverage"
    assert plan["costs"]["plan"]["total"] <= 0.75 * plan["costs"]["today"]["total"] + 1e-6
    assert plan["kpis"]["today"]["today"]["population"] == 41_151
    kept = gpd.read_file(out / "layers.gpkg", layer="branches")
    assert set(kept["decision"]) <= {"keep", "close"}
    assert "OpenStreetMap contributors" in (out / "map.html").read_text()
