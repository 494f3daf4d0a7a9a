"""Bad input through the CLI: a clear message naming the file or field, exit code 2, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def write_inputs(tmp: Path, tiny_osm: Path) -> dict[str, str]:
    areas = gpd.GeoDataFrame(
        {"code": ["A1"], "population": [120]},
        geometry=[shapely.box(9.499, 56.199, 9.519, 56.211)],
        crs="EPSG:4326",
    )
    areas.to_file(tmp / "areas.geojson")
    (tmp / "branches.csv").write_text("branch_id,lon,lat\nmain,9.501,56.2005\n")
    return {
        "--osm": str(tiny_osm),
        "--population": str(tmp / "areas.geojson"),
        "--branches": str(tmp / "branches.csv"),
    }


def invoke(args: dict[str, str], data_dir: Path, name: str = "tiny") -> tuple[int, str]:
    flat = ["region", "import", name] + [x for kv in args.items() for x in kv]
    r = runner.invoke(app, flat, env={"BRANCHNET_DATA_DIR": str(data_dir), "COLUMNS": "250"})
    return r.exit_code, r.output


def test_good_import_then_failed_reimport_keeps_the_old_region(tmp_path: Path, tiny_osm: Path) -> None:
    args = write_inputs(tmp_path, tiny_osm)
    code, out = invoke(args, tmp_path / "var")
    assert code == 0, out
    before = sorted(p.name for p in (tmp_path / "var" / "regions" / "tiny").iterdir())
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"garbage")
    code, out = invoke({**args, "--osm": str(bad)}, tmp_path / "var")
    assert code == 2 and "bad.osm.pbf" in out
    regions = tmp_path / "var" / "regions"
    assert sorted(p.name for p in (regions / "tiny").iterdir()) == before
    assert [p.name for p in regions.iterdir()] == ["tiny"]  # no temp folders left behind


def test_each_bad_input_names_the_file_and_field(tmp_path: Path, tiny_osm: Path) -> None:
    args = write_inputs(tmp_path, tiny_osm)
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    (tmp_path / "dups.csv").write_text("branch_id,lon,lat\nmain,9.501,56.2\nmain,9.51,56.2\n")
    (tmp_path / "far.csv").write_text("branch_id,lon,lat\nmain,9.501,56.2\nmoon,12.0,57.0\n")
    (tmp_path / "pop.csv").write_text("other,population\nZZ,5\n")
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        gpd.GeoDataFrame({"population": [1]}, geometry=[shapely.box(9.5, 56.2, 9.51, 56.21)]).to_file(
            tmp_path / "nocrs.gpkg"
        )
    pd.DataFrame({"lon": [9.5], "lat": [56.2], "name": ["x"]}).to_csv(tmp_path / "nopop.csv", index=False)
    cases = [
        ({"--osm": str(empty)}, "empty.osm.pbf"),
        ({"--branches": str(tmp_path / "dups.csv")}, "branch id 'main' in field 'branch_id' repeats"),
        ({"--branches": str(tmp_path / "far.csv")}, "'moon'"),
        ({"--population-table": str(tmp_path / "pop.csv")}, "matched no rows"),
        ({"--population": str(tmp_path / "nocrs.gpkg")}, "no coordinate reference system"),
        ({"--population": str(tmp_path / "nopop.csv")}, "no population column"),
    ]
    for override, message in cases:
        code, out = invoke({**args, **override}, tmp_path / "var2")
        assert code == 2, (override, out)
        assert message in out.replace("\n", ""), (override, out)
        assert not (tmp_path / "var2" / "regions" / "tiny").exists()


def test_unknown_region_is_explained(tmp_path: Path) -> None:
    r = runner.invoke(app, ["region", "show", "nowhere"], env={"BRANCHNET_DATA_DIR": str(tmp_path)})
    assert r.exit_code == 2 and "has not been imported" in r.output
