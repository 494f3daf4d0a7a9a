"""Reading input files (geodata._io): text that is not UTF-8 names its line and byte, empty files say so, and an
invalid polygon is repaired when the repair keeps its area (with a warning naming the feature) and refused when it
would not (a bow-tie)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geodata._io import read_spatial, read_table
from geodata.errors import DataRepairWarning, InputFileError, InvalidValueError

# a ring that touches itself at (1, 0): invalid, but make_valid keeps its area (two triangles, 2 square units)
TOUCHING = shapely.Polygon([(0, 0), (2, 0), (2, 2), (1, 0), (0, 2)])
BOWTIE = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # crosses itself: area 0 as drawn, 2 once repaired
SQUARE = shapely.box(3, 3, 4, 4)


def write(tmp_path: Path, *geoms: shapely.Geometry) -> Path:
    path = tmp_path / "areas.geojson"
    gpd.GeoDataFrame({"code": [f"A{i}" for i in range(len(geoms))]}, geometry=list(geoms),
                     crs="EPSG:27700").to_file(path)  # fmt: skip
    return path


def test_a_polygon_whose_repair_keeps_its_area_is_repaired_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, SQUARE, TOUCHING)
    assert not TOUCHING.is_valid
    with pytest.warns(DataRepairWarning, match=r"1 invalid polygon\(s\) repaired without changing their area: "
                      r"feature 2 \(Ring Self-intersection"):  # fmt: skip
        gdf = read_spatial(path)
    assert gdf.geometry.is_valid.all()
    assert gdf.geometry.iloc[1].area == pytest.approx(TOUCHING.area) and gdf.geometry.iloc[0].equals(SQUARE)


def test_a_polygon_whose_repair_changes_its_area_is_refused_naming_the_feature(tmp_path: Path) -> None:
    path = write(tmp_path, SQUARE, SQUARE, BOWTIE)
    with pytest.raises(InvalidValueError, match=r"1 polygon\(s\) are invalid and cannot be repaired without changing "
                       r"their area \(feature 3: Self-intersection\[1 1\]\)"):  # fmt: skip
        read_spatial(path)


def test_text_that_is_not_utf8_names_its_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes("code,name\nA1,North\nA2,Caf\xe9\n".encode("cp1252"))
    with pytest.raises(InputFileError, match=r"table.csv: line 3: byte 0xe9 is not UTF-8 \(it looks like Latin-1"):
        read_table(path)
    path.write_bytes("\ufeffcode,name\nA1,Café\n".encode())  # UTF-8 with a BOM reads
    assert read_table(path)["name"].tolist() == ["Café"]


@pytest.mark.parametrize("name", ["empty.csv", "empty.geojson"])
def test_an_empty_file_says_so(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match=r"the file is empty \(0 bytes\)"):
        read_spatial(path) if name.endswith(".geojson") else read_table(path)
