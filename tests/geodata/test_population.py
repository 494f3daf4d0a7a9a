"""Population inputs: exact dasymetric totals, points, joins, age groups, and bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from geodata._osm import read_osm
from geodata.errors import (
    AssumptionWarning,
    InvalidValueError,
    JoinKeyError,
    MissingCRSError,
    MissingFieldError,
)
from geodata.population import AGE_GROUPS, largest_remainder, load_population


@given(total=st.integers(0, 10**7), weights=st.lists(st.floats(0, 1e6), min_size=1, max_size=60))
def test_largest_remainder_is_exact_and_fair(total: int, weights: list[float]) -> None:
    w = np.array(weights)
    got = largest_remainder(total, w)
    assert got.sum() == total and (got >= 0).all()
    quota = total * (w / w.sum() if w.sum() > 0 else np.ones_like(w) / len(w))
    assert (np.abs(got - quota) < 1 + 1e-6).all()


def square(x: float, y: float, size: float = 0.01) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


@pytest.fixture
def areas_file(tmp_path: Path) -> Path:
    """Two census areas over the tiny.osm loop, one holding the only mapped house."""
    gdf = gpd.GeoDataFrame(
        {"code": ["A1", "A2"], "name": ["west", "east"]},
        geometry=[square(9.495, 56.195), square(9.505, 56.195)],
        crs="EPSG:4326",
    )
    path = tmp_path / "areas.geojson"
    gdf.to_file(path)
    return path


def test_polygons_joined_to_a_table_keep_totals_exactly(areas_file: Path, tiny_osm: Path, tmp_path: Path) -> None:
    table = tmp_path / "pop.csv"
    pd.DataFrame({"area_code": ["A1", "A2"], "population": [1001, 57]}).to_csv(table, index=False)
    with pytest.warns(AssumptionWarning, match="default shares"):
        pop = load_population(areas_file, table=table, osm=read_osm(tiny_osm), crs="EPSG:32632")
    sums = pop.points.groupby("area_id")["population"].sum()
    assert sums.to_dict() == {"A1": 1001, "A2": 57}
    assert (pop.points[list(AGE_GROUPS)].sum(axis=1) == pop.points["population"]).all()
    assert pop.areas.set_index("area_id")["method"].to_dict()["A2"] == "area"  # no homes mapped there
    assert "building" in pop.areas.set_index("area_id")["method"]["A1"]
    assert any("default shares" in n for n in pop.notes)


def test_age_columns_are_kept(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"area_id": ["a"], "population": [100], "age_0_17": [30], "age_18_64": [50], "age_65_plus": [20]},
        geometry=[square(9.5, 56.2)],
        crs="EPSG:4326",
    )
    gdf.to_file(tmp_path / "a.gpkg")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AssumptionWarning)
        pop = load_population(tmp_path / "a.gpkg", crs="EPSG:32632")
    assert pop.points[list(AGE_GROUPS)].sum().tolist() == [30, 50, 20]
    assert pop.notes == ()


def test_age_groups_must_add_up(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"area_id": ["a"], "population": [100], "age_0_17": [30], "age_18_64": [50], "age_65_plus": [10]},
        geometry=[square(9.5, 56.2)],
        crs="EPSG:4326",
    )
    gdf.to_file(tmp_path / "a.gpkg")
    with pytest.raises(InvalidValueError, match=r"row 'a'.*sum to 90"):
        load_population(tmp_path / "a.gpkg", crs="EPSG:32632")


def test_point_csv(tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("lon,lat,residents\n9.5,56.2,12.5\n9.51,56.2,3\n")
    with pytest.warns(AssumptionWarning):
        pop = load_population(csv)
    assert pop.total == pytest.approx(15.5)
    assert (pop.points["method"] == "point").all()


def test_no_usable_population_column_names_file_and_columns(tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("lon,lat,label\n9.5,56.2,x\n")
    with pytest.raises(MissingFieldError, match=r"points\.csv: no population column.*label"):
        load_population(csv)
    csv.write_text("lon,lat,population\n9.5,56.2,many\n")
    with pytest.raises(MissingFieldError, match="holds no numbers"):
        load_population(csv)


def test_negative_population_names_the_row(tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("lon,lat,population,area_id\n9.5,56.2,5,p1\n9.5,56.2,-3,p2\n")
    with pytest.raises(InvalidValueError, match=r"row 'p2'.*'population'"):
        load_population(csv, area_field="area_id")


def test_crs_less_file_is_rejected(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"population": [5]}, geometry=[square(9.5, 56.2)])  # no CRS
    path = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        gdf.to_file(path)
    with pytest.raises(MissingCRSError, match=r"nocrs\.gpkg"):
        load_population(path)


def test_join_that_matches_nothing(areas_file: Path, tmp_path: Path) -> None:
    table = tmp_path / "pop.csv"
    pd.DataFrame({"code": ["Z9"], "population": [5]}).to_csv(table, index=False)
    with pytest.raises(JoinKeyError, match=r"pop\.csv to .*areas\.geojson matched no rows"):
        load_population(areas_file, table=table)
    with pytest.raises(JoinKeyError, match="matched no rows"):
        load_population(areas_file, table=table, join_on="code=code")
    with pytest.raises(MissingFieldError, match=r"join field .nope."):
        load_population(areas_file, table=table, join_on="nope=code")


def test_polygon_without_a_row_is_an_error(areas_file: Path, tmp_path: Path) -> None:
    table = tmp_path / "pop.csv"
    pd.DataFrame({"key": ["A1"], "population": [5]}).to_csv(table, index=False)
    with pytest.raises(JoinKeyError, match=r"1 polygon\(s\) have no row"):
        load_population(areas_file, table=table)


def test_toy_region_totals_are_exact_per_area(toy_region, toy_sources) -> None:  # type: ignore[no-untyped-def]
    areas = gpd.read_file(toy_sources["areas"]).astype({"area_id": str})
    got = toy_region.demand.groupby("area_id")["population"].sum()
    want = areas.set_index("area_id")["population"]
    assert (got.reindex(want.index).fillna(0) == want).all()
    for g in AGE_GROUPS:
        assert (
            toy_region.demand.groupby("area_id")[g].sum().reindex(want.index).fillna(0) == areas.set_index("area_id")[g]
        ).all()
